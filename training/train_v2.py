#!/usr/bin/env python3
"""Train the v2 model (config `skip: "pca"`, issue 9) in one process, on CPU or CUDA.

  1. PCA of the training crops initialises the skip path (the ordered linear code).
  2. Stage 1: encoder + decoder end to end on continuous latents, nested dropout (dropped
     positions get 0 = the mean image's coefficients), EMA of the weights.
  3. Per-position k-means (36 tables of K codes) on the EMA encoder's training latents.
  4. Stage 2: quantization-aware fine-tune of encoder and decoder: straight-through
     estimator, commitment loss, EMA (k-means style) codebook updates, nested dropout kept.

Budgets are in seconds (`--stage1-seconds`) or steps (`--stage1-steps`); the learning
rate follows the fraction of the budget used, so a GPU run can be given a wall-clock
slot. Structured records (one JSON object per line) go to <run>/log.jsonl; the result is
<run>/final.pt ({config, model, codebook, prefix_fill, history}), which `export.py
--checkpoint` turns into a package. Data: the crops of training/data/ (`--data npy`) or a
JPEG pack made by `training/gpu/pack_data.py` (`--data pack:DIR`) for the GPU machine.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch

from styled_vq.config import PRESETS, preset  # noqa: E402
from styled_vq.jsonlog import JsonLog  # noqa: E402
from styled_vq.losses import psnr, ssim, to_unit  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402
from styled_vq.pca_skip import fit_pca  # noqa: E402

PREFIX_KS = (0, 1, 2, 4, 8, 16, 24, 36)
EVAL_LIMIT = 100000


# ---------------------------------------------------------------- data

def load_data(spec: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    if spec == "npy":
        from styled_vq.data import load_crops
        return np.asarray(load_crops("train", image_size)), np.asarray(load_crops("val", image_size))
    if spec.startswith("pack:"):
        folder = spec[5:]
        return read_pack(folder, "train"), read_pack(folder, "val")
    raise SystemExit(f"--data must be 'npy' or 'pack:DIR', not {spec!r}")


def read_pack(folder: str, split: str) -> np.ndarray:
    """A JPEG pack: <split>.bin (concatenated JPEG files) + <split>.idx.npy (offsets)."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image
    blob = open(os.path.join(folder, f"{split}.bin"), "rb").read()
    offs = np.load(os.path.join(folder, f"{split}.idx.npy"))

    def one(i):
        return np.asarray(Image.open(io.BytesIO(blob[offs[i]:offs[i + 1]])).convert("RGB"))

    with ThreadPoolExecutor(16) as ex:
        return np.stack(list(ex.map(one, range(len(offs) - 1))))


def to_float(u8: torch.Tensor) -> torch.Tensor:
    return u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class DeviceBatches:
    """Shuffled batches with horizontal flips, drawn from a uint8 array held on the device."""

    def __init__(self, arr: torch.Tensor, batch: int, seed: int):
        self.arr, self.batch = arr, batch
        self.g = torch.Generator(device="cpu").manual_seed(seed)
        self.perm, self.pos, self.epoch = torch.randperm(len(arr), generator=self.g), 0, 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > len(self.perm):
            self.perm, self.pos, self.epoch = torch.randperm(len(self.arr), generator=self.g), 0, self.epoch + 1
        idx = self.perm[self.pos:self.pos + self.batch].to(self.arr.device)
        self.pos += self.batch
        x = to_float(self.arr[idx])
        flip = (torch.rand(len(idx), generator=self.g) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)


# ---------------------------------------------------------------- pieces

def nested_dropout(z: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Keep a random prefix (k uniform in 0..T-1) of `prob` of the samples; the rest of
    their positions become 0 (the mean image in PCA coordinates): the prefix fill."""
    if prob <= 0:
        return z
    b, t, _ = z.shape
    chosen = torch.rand(b, generator=gen) < prob
    k = torch.randint(0, t, (b,), generator=gen)
    k = torch.where(chosen, k, torch.full_like(k, t)).to(z.device)
    keep = (torch.arange(t, device=z.device)[None] < k[:, None]).unsqueeze(-1)
    return z * keep


def loss_fn(out, x, ssim_weight: float):
    out, x = out.float(), x.float()
    mse = ((out - x) ** 2).mean()
    loss = mse + (ssim_weight * (1 - ssim(to_unit(out), to_unit(x))).mean() if ssim_weight > 0 else 0)
    return loss, mse


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up, then cosine to 5 % of the peak."""
    if progress < warmup:
        return progress / warmup
    p = (progress - warmup) / max(1e-9, 1 - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


class Budget:
    def __init__(self, seconds: float | None, steps: int | None):
        self.seconds, self.steps, self.t0, self.step = seconds, steps, time.time(), 0

    def progress(self) -> float:
        if self.steps:
            return self.step / self.steps
        return (time.time() - self.t0) / self.seconds

    def done(self) -> bool:
        return self.progress() >= 1.0


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


@torch.no_grad()
def encode_all(model: StyledVQ, arr: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    model.eval()
    out = torch.cat([model.encode(to_float(arr[i:i + batch])).float() for i in range(0, len(arr), batch)])
    model.train()
    return out


@torch.no_grad()
def kmeans_per_position(lat: torch.Tensor, k: int, iters: int, gen: torch.Generator, log) -> torch.Tensor:
    """lat [N, T, D] -> codebooks [T, K, D]; Lloyd iterations for all positions at once,
    seeded from distinct random latents, dead codes re-seeded at the worst-served points."""
    n, t, d = lat.shape
    x = lat.transpose(0, 1).contiguous()  # [T, N, D]
    idx = torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(t)]).to(x.device)
    c = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, d)).clone()
    for it in range(iters):
        ids, dist = assign(x, c)
        counts = torch.zeros(t, k, device=x.device).scatter_add_(1, ids, torch.ones_like(dist))
        sums = torch.zeros_like(c).scatter_add_(1, ids.unsqueeze(-1).expand(-1, -1, d), x)
        alive = counts > 0
        c = torch.where(alive.unsqueeze(-1), sums / counts.clamp_min(1).unsqueeze(-1), c)
        dead = int((~alive).sum())
        if dead:
            for j in range(t):
                nd = int((~alive[j]).sum())
                if nd:
                    worst = dist[j].topk(nd).indices
                    c[j, ~alive[j]] = x[j, worst]
        if it % 5 == 0 or it == iters - 1:
            log("kmeans", iter=it, mean_distance=float(dist.mean()), dead=dead)
    return c


def assign(x: torch.Tensor, c: torch.Tensor, chunk: int = 2048):
    """x [T, N, D], c [T, K, D] -> (ids [T, N], squared distance [T, N])."""
    cn = (c * c).sum(-1).unsqueeze(1)
    ids, ds = [], []
    for i in range(0, x.shape[1], chunk):
        xb = x[:, i:i + chunk]
        dall = cn - 2 * xb @ c.transpose(1, 2)
        d, j = dall.min(-1)
        ids.append(j)
        ds.append(d + (xb * xb).sum(-1))
    return torch.cat(ids, 1), torch.cat(ds, 1)


@torch.no_grad()
def evaluate(model: StyledVQ, val: torch.Tensor, quantized: bool, ks=PREFIX_KS, limit: int = 100000) -> dict:
    limit = min(limit, EVAL_LIMIT)
    model.eval()
    out = {}
    for k in ks:
        ps, ss = [], []
        n = min(len(val), limit)
        for i in range(0, n, 256):
            x = to_float(val[i:min(i + 256, n)])
            z = model.encode(x).float()
            if quantized:
                z = model.codebook.dequantize(model.codebook.quantize(z))
            z = z.clone()
            z[:, k:] = 0
            y = model.decode(z).float()
            ps.append(psnr(to_unit(y), to_unit(x)))
            ss.append(ssim(to_unit(y), to_unit(x)))
        out[k] = {"psnr": round(torch.cat(ps).mean().item(), 3), "ssim": round(torch.cat(ss).mean().item(), 4)}
    model.train()
    return out


# ---------------------------------------------------------------- stages

def make_model(a, train: torch.Tensor, log) -> StyledVQ:
    cfg = preset(a.preset, **(json.loads(a.override) if a.override else {}))
    torch.manual_seed(a.seed)
    model = StyledVQ(cfg)
    t0 = time.time()
    sub = train[: a.pca_images]
    mean, comps, std = fit_pca(to_float(sub), cfg.num_tokens * cfg.latent_dim, seed=a.seed)
    model.skip.init_from(mean.cpu(), comps.cpu(), std.cpu())
    # Start exactly at the PCA code: both network outputs begin at zero.
    torch.nn.init.zeros_(model.encoder.to_latent.weight)
    torch.nn.init.zeros_(model.encoder.to_latent.bias)
    torch.nn.init.zeros_(model.decoder.conv_out.weight)
    torch.nn.init.zeros_(model.decoder.conv_out.bias)
    n = sum(p.numel() for p in model.parameters())
    log("model", config=cfg.to_dict(), parameters=n, pca_seconds=round(time.time() - t0, 1),
        pca_std_first=float(std[0]), pca_std_last=float(std[-1]))
    return model


def optimizer(model: StyledVQ, lr: float, skip_lr_ratio: float):
    skip = [p for n, p in model.named_parameters() if n.startswith("skip.")]
    net = [p for n, p in model.named_parameters() if not n.startswith("skip.")]
    return torch.optim.AdamW([{"params": net, "lr": lr, "weight_decay": 0.01, "base": lr},
                              {"params": skip, "lr": lr * skip_lr_ratio, "weight_decay": 0.0,
                               "base": lr * skip_lr_ratio}], betas=(0.9, 0.98))


def autocast(a):
    if a.bf16:
        return torch.autocast(device_type="cuda" if a.device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def stage1(a, model: StyledVQ, train: torch.Tensor, val: torch.Tensor, log) -> StyledVQ:
    ema = copy.deepcopy(model).eval()
    opt = optimizer(model, a.lr, a.skip_lr_ratio)
    batches = DeviceBatches(train, a.batch, a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    budget = Budget(a.stage1_seconds, a.stage1_steps)
    t_last, seen_last = time.time(), 0
    while not budget.done():
        f = lr_factor(budget.progress(), a.warmup)
        for g in opt.param_groups:
            g["lr"] = g["base"] * f
        x = batches.next()
        with autocast(a):
            z = model.encode(x)
            out = model.decode(nested_dropout(z.float(), a.nested, gen))
        loss, mse = loss_fn(out, x, a.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        budget.step += 1
        ema_update(ema, model, a.ema if budget.step > 100 else 0.0)
        if budget.step % a.log_every == 0:
            now = time.time()
            rate = (budget.step * a.batch - seen_last) / (now - t_last)
            t_last, seen_last = now, budget.step * a.batch
            log("stage1", step=budget.step, progress=round(budget.progress(), 4), loss=round(loss.item(), 5),
                mse=round(mse.item(), 5), gnorm=round(float(gnorm), 3), lr=opt.param_groups[0]["lr"],
                img_s=round(rate, 1), epoch=batches.epoch)
        if a.eval_every and budget.step % a.eval_every == 0:
            log("stage1_val", step=budget.step, curve=evaluate(ema, val, False, ks=(1, 8, 36), limit=512))
    log("stage1_done", steps=budget.step, images=budget.step * a.batch, seconds=round(time.time() - budget.t0, 1),
        val_continuous=evaluate(ema, val, False))
    return ema


def stage2(a, model: StyledVQ, train: torch.Tensor, val: torch.Tensor, log) -> StyledVQ:
    cfg = model.cfg
    t0 = time.time()
    lat = encode_all(model, train)
    gen = torch.Generator().manual_seed(a.seed + 2)
    cb = kmeans_per_position(lat, a.codebook_size, a.kmeans_iters, gen, log)
    q = StyledVQ(cfg, codebook_size=a.codebook_size, codebook_per_position=True).to(lat.device)
    sd = model.state_dict()
    sd["codebook.embedding"] = cb
    q.load_state_dict(sd)
    log("kmeans_done", seconds=round(time.time() - t0, 1), val_quantized=evaluate(q, val, True))
    if not (a.stage2_seconds or a.stage2_steps):
        return q
    ema = copy.deepcopy(q).eval()
    opt = optimizer(q, a.lr2, a.skip_lr_ratio)
    batches = DeviceBatches(train, a.batch, a.seed + 3)
    budget = Budget(a.stage2_seconds, a.stage2_steps)
    t, k, d = q.codebook.embedding.shape
    ema_count = torch.full((t, k), float(len(train)) / k, device=lat.device)
    ema_sum = q.codebook.embedding.clone() * ema_count.unsqueeze(-1)
    scale = q.skip.scale
    while not budget.done():
        f = lr_factor(budget.progress(), 0.05)
        for g in opt.param_groups:
            g["lr"] = g["base"] * f
        x = batches.next()
        with autocast(a):
            z = q.encode(x).float()
        # Token ids in float32 outside autocast: bf16 distances would pick wrong codes.
        ids = q.codebook.quantize(z.detach())
        zq = q.codebook.dequantize(ids)
        z_st = z + (zq - z).detach()
        with autocast(a):
            out = q.decode(nested_dropout(z_st, a.nested, gen))
        loss, mse = loss_fn(out, x, a.ssim_weight)
        commit = (((z - zq.detach()) / scale) ** 2).mean()
        total = loss + a.commit * commit
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(q.parameters(), 1.0)
        opt.step()
        budget.step += 1
        with torch.no_grad():  # EMA k-means update of each position's table
            zt = z.detach().transpose(0, 1)  # [T, B, D]
            it = ids.transpose(0, 1)
            cnt = torch.zeros(t, k, device=z.device).scatter_add_(1, it, torch.ones_like(it, dtype=torch.float))
            sm = torch.zeros(t, k, d, device=z.device).scatter_add_(1, it.unsqueeze(-1).expand(-1, -1, d), zt)
            ema_count.mul_(a.cb_decay).add_(cnt, alpha=1 - a.cb_decay)
            ema_sum.mul_(a.cb_decay).add_(sm, alpha=1 - a.cb_decay)
            q.codebook.embedding.copy_(ema_sum / ema_count.clamp_min(1e-6).unsqueeze(-1))
        ema_update(ema, q, a.ema2)
        if budget.step % a.log_every == 0:
            log("stage2", step=budget.step, progress=round(budget.progress(), 4), loss=round(loss.item(), 5),
                mse=round(mse.item(), 5), commit=round(commit.item(), 5), lr=opt.param_groups[0]["lr"],
                epoch=batches.epoch)
        if a.eval_every and budget.step % a.eval_every == 0:
            log("stage2_val", step=budget.step, curve=evaluate(ema, val, True, ks=(1, 8, 36), limit=512))
    # The EMA weights and the (already averaged) codebook; one last k-means refresh of
    # the codebook on the final encoder's latents keeps codes and latents matched.
    ema.codebook.embedding.copy_(q.codebook.embedding)
    lat = encode_all(ema, train)
    ema.codebook.embedding.copy_(refine(lat, ema.codebook.embedding.clone(), a.refine_iters, log))
    log("stage2_done", steps=budget.step, images=budget.step * a.batch, seconds=round(time.time() - budget.t0, 1),
        val_quantized=evaluate(ema, val, True), val_continuous=evaluate(ema, val, False, ks=(36,)))
    return ema


@torch.no_grad()
def refine(lat: torch.Tensor, c: torch.Tensor, iters: int, log) -> torch.Tensor:
    x = lat.transpose(0, 1).contiguous()
    t, k, d = c.shape
    for it in range(iters):
        ids, dist = assign(x, c)
        counts = torch.zeros(t, k, device=x.device).scatter_add_(1, ids, torch.ones_like(dist))
        sums = torch.zeros_like(c).scatter_add_(1, ids.unsqueeze(-1).expand(-1, -1, d), x)
        alive = counts > 0
        c = torch.where(alive.unsqueeze(-1), sums / counts.clamp_min(1).unsqueeze(-1), c)
        log("refine", iter=it, mean_distance=float(dist.mean()), used=float(alive.float().mean()))
    return c


def save_final(a, model: StyledVQ, log) -> str:
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    path = os.path.join(a.run, "final.pt")
    torch.save({"config": model.cfg.to_dict(), "model": sd, "codebook_metric": "l2",
                "prefix_fill": {"kind": "zero", "values": torch.zeros(model.cfg.num_tokens, model.cfg.latent_dim)},
                "args": vars(a)}, path + ".tmp")
    os.replace(path + ".tmp", path)
    log("saved", path=path, bytes=os.path.getsize(path))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="npy", help="'npy' (training/data/ crops) or 'pack:DIR' (JPEG pack)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default="skip64", choices=sorted(PRESETS))
    ap.add_argument("--override", help="JSON of config fields to change")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr2", type=float, default=3e-4)
    ap.add_argument("--skip-lr-ratio", type=float, default=0.02)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--ssim-weight", type=float, default=0.1)
    ap.add_argument("--nested", type=float, default=0.5, help="fraction of samples truncated to a random prefix")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--ema2", type=float, default=0.998)
    ap.add_argument("--stage1-seconds", type=float)
    ap.add_argument("--stage1-steps", type=int)
    ap.add_argument("--stage2-seconds", type=float)
    ap.add_argument("--stage2-steps", type=int)
    ap.add_argument("--codebook-size", type=int, default=4096)
    ap.add_argument("--kmeans-iters", type=int, default=20)
    ap.add_argument("--refine-iters", type=int, default=3)
    ap.add_argument("--commit", type=float, default=0.25)
    ap.add_argument("--cb-decay", type=float, default=0.99)
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training crops (smoke tests)")
    ap.add_argument("--pca-images", type=int, default=100000)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--eval-limit", type=int, default=100000, help="validation crops per evaluation (all by default)")
    a = ap.parse_args(argv)
    global EVAL_LIMIT
    EVAL_LIMIT = a.eval_limit
    if not (a.stage1_seconds or a.stage1_steps):
        ap.error("give --stage1-seconds or --stage1-steps")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        # No TF32: the network runs in bf16 autocast anyway, and the float32 parts are the
        # codebook distances, where a 10-bit mantissa would pick wrong codes.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    os.makedirs(a.run, exist_ok=True)
    log = JsonLog(os.path.join(a.run, "log.jsonl"))
    log("args", **vars(a), torch=torch.__version__,
        gpu=torch.cuda.get_device_name(0) if a.device.startswith("cuda") else None)
    t0 = time.time()
    train_np, val_np = load_data(a.data, 64)
    train_np = train_np[: a.train_limit]
    train = torch.from_numpy(np.array(train_np)).to(a.device)
    val = torch.from_numpy(np.ascontiguousarray(val_np)).to(a.device)
    log("data", train=len(train), val=len(val), seconds=round(time.time() - t0, 1))
    model = make_model(a, train, log).to(a.device)
    log("pca_only", val_continuous=evaluate(model, val, False))
    model = stage1(a, model, train, val, log)
    model = stage2(a, model, train, val, log)
    save_final(a, model, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
