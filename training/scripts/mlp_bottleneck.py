#!/usr/bin/env python3
"""Would a non-linear bottleneck on the PCA coefficients carry more in few dimensions than
the first N coefficients do? (The route to requirement 3 of issue 9 with better images: a
latent of N <= ~72 dimensions is quantized almost losslessly by 36 tokens of 12 bits.)

Encoder  y = z[:N] + MLP_e(z / s)     (z: the package's 320 PCA coefficients, s their std)
Decoder  z' = [y, 0] + MLP_d(y / s[:N])
Both MLPs end in a zero-initialised layer, so step 0 is exactly "keep the first N
coefficients". MSE on the coefficients is the pixel MSE inside the PCA subspace (the rows are
orthonormal), so validation PSNR is computed in pixels through the package's PCA decode.

  /usr/bin/python3 -m training.scripts.mlp_bottleneck --dims 72 --seconds 1800
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from styled_vq.data import to_batch  # noqa: E402
from styled_vq.losses import psnr, to_unit  # noqa: E402
from styled_vq.paths import REPO  # noqa: E402
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
    models = os.path.join(REPO, "models")
    pkg = a.package or os.path.join(models, open(os.path.join(models, "DEFAULT")).read().strip())
    base, _ = load_base(pkg)
    enc, dec, mean = base.skip.enc.detach(), base.skip.dec.detach(), base.skip.mean.detach().reshape(1, -1)
    gram = dec @ dec.t()  # pixel MSE of a coefficient error e is e G e^T / pixels (G = I when orthonormal)

    def coeffs(u8: np.ndarray) -> torch.Tensor:
        return torch.cat([(to_batch(u8[i:i + 2048]).reshape(len(u8[i:i + 2048]), -1) - mean) @ enc.t()
                          for i in range(0, len(u8), 2048)])

    train, val = load_data("npy", base.cfg.image_size)
    if a.images:
        train = np.load(a.images, mmap_mode="r")
    else:
        train = np.concatenate([train, train[:, :, ::-1]])
    z = coeffs(np.asarray(train))
    zv, xv = coeffs(np.asarray(val)), to_batch(np.asarray(val))
    s = z.std(0).clamp_min(1e-6)
    n = a.dims
    e_net, d_net = mlp(z.shape[1], a.width, n), mlp(n, a.width, z.shape[1])
    params = list(e_net.parameters()) + list(d_net.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)

    def encode(zz):
        return zz[:, :n] + e_net(zz / s)

    def decode(y):
        return torch.cat([y, torch.zeros(len(y), zz_dims - n)], 1) + d_net(y / s[:n])

    zz_dims = z.shape[1]

    def image(c: torch.Tensor) -> torch.Tensor:
        return (c @ dec + mean).reshape(xv.shape[0], *xv.shape[1:])

    @torch.no_grad()
    def val_psnr(c: torch.Tensor | None = None) -> float:
        c = decode(encode(zv)) if c is None else c
        return round(psnr(to_unit(image(c)), to_unit(xv)).mean().item(), 3)

    print(json.dumps({"what": "start", "train": len(z), "val": len(zv), "dims": n,
                      "params": sum(p.numel() for p in params), "val_psnr_first_n": val_psnr(),
                      "val_psnr_all_320": val_psnr(zv),
                      "gram_off_identity": round(float((gram - torch.eye(len(gram))).abs().max()), 5)}), flush=True)
    t0 = last = time.time()
    step = 0
    while time.time() - t0 < a.seconds:
        idx = torch.randint(0, len(z), (a.batch,))
        frac = (time.time() - t0) / a.seconds
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + np.cos(np.pi * frac))
        e = decode(encode(z[idx])) - z[idx]
        loss = ((e @ gram) * e).sum(1).mean()
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
