#!/usr/bin/env python3
"""Would a non-linear bottleneck on the PCA coefficients carry more in few dimensions than
the first N coefficients do? (The route to requirement 3 of issue 9 with better images: a
latent of N <= ~72 dimensions is quantized almost losslessly by 36 tokens of 12 bits.)

Encoder  y = z[:N] + MLP_e(z / s)     (z: the package's 320 PCA coefficients, s their std)
Decoder  z' = [y, 0] + MLP_d(y / s[:N])
Both MLPs end in a zero-initialised layer, so step 0 is exactly "keep the first N
coefficients". MSE on the coefficients is the pixel MSE inside the PCA subspace (the rows are
orthonormal; checked), so validation PSNR is computed in pixels through the package's PCA decode.

  /usr/bin/python3 -m training.scripts.mlp_bottleneck --dims 72 --seconds 1800
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from styled_vq.data import to_batch  # noqa: E402
from styled_vq.losses import psnr, to_unit  # noqa: E402
from styled_vq.paths import default_package  # noqa: E402
from train_refiner import load_base  # noqa: E402
from train_v2 import load_data  # noqa: E402


def mlp(n_in: int, width: int, n_out: int) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(n_in, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_out))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="default: models/DEFAULT")
    ap.add_argument("--images", default=None, help="uint8 [N,64,64,3] .npy of training images (default: crops + mirrors)")
    ap.add_argument("--dims", type=int, default=72)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--eval-every", type=float, default=300)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base, _ = load_base(a.package or default_package())
    skip = base.skip
    dec, mean = skip.dec.detach(), skip.mean.detach()
    # MSE on the coefficients is the pixel MSE inside the subspace only if the rows are orthonormal.
    if not torch.allclose(dec @ dec.t(), torch.eye(len(dec)), atol=1e-4):
        raise SystemExit("the package's PCA directions are not orthonormal: coefficient MSE would not be pixel MSE")

    @torch.no_grad()
    def coefficients(u8: np.ndarray) -> torch.Tensor:
        return torch.cat([skip.coefficients(to_batch(u8[i:i + 2048])) for i in range(0, len(u8), 2048)])

    train, val = load_data("npy", base.cfg.image_size)
    train = np.load(a.images, mmap_mode="r") if a.images else np.concatenate([train, train[:, :, ::-1]])
    z = coefficients(np.asarray(train))
    zv, xv = coefficients(np.asarray(val)), to_batch(np.asarray(val))
    s = z.std(0).clamp_min(1e-6)
    n, total = a.dims, z.shape[1]
    e_net, d_net = mlp(total, a.width, n), mlp(n, a.width, total)
    params = list(e_net.parameters()) + list(d_net.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)

    def encode(c: torch.Tensor) -> torch.Tensor:
        return c[:, :n] + e_net(c / s)

    def decode(y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y, y.new_zeros(len(y), total - n)], 1) + d_net(y / s[:n])

    @torch.no_grad()
    def val_psnr(c: torch.Tensor | None = None) -> float:
        c = decode(encode(zv)) if c is None else c
        return round(psnr(to_unit((c @ dec + mean).reshape(xv.shape)), to_unit(xv)).mean().item(), 3)

    print(json.dumps({"what": "start", "train": len(z), "val": len(zv), "dims": n,
                      "params": sum(p.numel() for p in params), "val_psnr_first_n": val_psnr(),
                      "val_psnr_all": val_psnr(zv)}), flush=True)
    t0 = last = time.time()
    step = 0
    while time.time() - t0 < a.seconds:
        idx = torch.randint(0, len(z), (a.batch,))
        frac = (time.time() - t0) / a.seconds
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + np.cos(np.pi * frac))
        loss = (decode(encode(z[idx])) - z[idx]).square().sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if time.time() - last > a.eval_every:
            last = time.time()
            print(json.dumps({"what": "eval", "step": step, "seconds": round(last - t0), "loss": round(loss.item(), 3),
                              "val_psnr": val_psnr()}), flush=True)
    print(json.dumps({"what": "end", "step": step, "val_psnr": val_psnr()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
