#!/usr/bin/env python3
"""Train the refiner of a v3 model (config refiner_blocks, styled_vq/refiner.py; issue 9).

The PCA code and the codebooks stay as train_pca_code.py fitted them, so the tokens do not
change: only the decoder learns, on what it will be given, the dequantized tokens.

  1. The training images (crops, mirrors, --aug-rounds rounds of random resized crops of
     the 128 px crops, as the k-means saw) and their token ids, cached in <run>/data/.
  2. MSE training of image = r(PCA decode(dequantized ids)) on CPU (bf16 autocast: the
     Xeon's AMX runs the convolutions ~2.5x faster than fp32) or CUDA, nested dropout on
     --nested of the samples (positions after a random k filled with the prefix fill, 0) so
     that prefixes decode well too, EMA of the weights. The learning rate follows the
     fraction of the --seconds budget used.
  3. <run>/refiner.ckpt every --checkpoint-every seconds (a stopped run resumes), JSON-lines
     records in <run>/log.jsonl, validation PSNR of the EMA weights every --eval-every
     seconds, and at the end <run>/final.pt (train_v2.py's format: export.py --checkpoint
     and evaluate.py --final read it).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time

import numpy as np
import torch

from styled_vq.checkpoint import model_from_state_dict  # noqa: E402
from styled_vq.config import ModelConfig  # noqa: E402
from styled_vq.data import DATA_ROOT, to_batch  # noqa: E402
from styled_vq.jsonlog import JsonLog  # noqa: E402
from styled_vq.losses import psnr, to_unit  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402
from styled_vq.refiner import Refiner, grow_refiner, refiner_shape  # noqa: E402
from train_pca_code import augmented_crops  # noqa: E402
from train_v2 import load_data  # noqa: E402

EVAL_KS = (1, 4, 8, 16, 36)


def load_base(path: str) -> tuple[StyledVQ, dict]:
    """A train_pca_code.py final.pt, or a model package (its own weights rebuilt from the
    ONNX graphs, as the bench does): refining a shipped package keeps its tokens, so token
    files made with it decode with the new decoder."""
    if os.path.isdir(path):
        from bench_torch import load_from_package
        m = load_from_package(path)
        manifest = json.load(open(os.path.join(path, "model.json")))
        fill = manifest.get("prefix_fill") or {}
        if fill.get("kind") not in (None, "zero"):
            raise SystemExit(f"{path}: prefix fill {fill.get('kind')!r}; the refiner trains with the zero fill")
        ck = {"config": m.cfg.to_dict(), "model": m.state_dict(), "codebook_metric": m.codebook.metric,
              "prefix_fill": {"kind": "zero", "values": torch.zeros(m.cfg.num_tokens, m.cfg.latent_dim)},
              "base_package": {"name": manifest["name"], "fingerprint": manifest["fingerprint"],
                               "training": manifest.get("training", {})}}
    else:
        ck = torch.load(path, map_location="cpu")
    cfg = ModelConfig.from_dict(ck["config"])
    if cfg.residual:
        raise SystemExit(f"{path}: the refiner goes on the PCA code alone (residual: false)")
    sd = {k: v for k, v in ck["model"].items() if not k.startswith("refiner.")}
    base = model_from_state_dict(sd, dataclasses.replace(cfg, refiner_blocks=0), ck.get("codebook_metric", "l2"))
    return base.eval(), ck


@torch.no_grad()
def tokenize_u8(model: StyledVQ, u8: np.ndarray) -> np.ndarray:
    return torch.cat([model.tokenize(to_batch(u8[i:i + 2048])) for i in range(0, len(u8), 2048)]).short().numpy()


def build_data(model: StyledVQ, train: np.ndarray, folder: str, aug_rounds: int, seed: int, log,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,64,64,3], ids int16 [N,36]), cached in folder (the augmentation and
    tokenization take a few minutes; a resumed run reuses them)."""
    paths = [os.path.join(folder, f) for f in ("images.npy", "ids.npy")]
    if all(os.path.exists(p) for p in paths):
        return np.load(paths[0], mmap_mode="r"), np.load(paths[1])
    t0 = time.time()
    train = train[:limit]
    parts = [train, train[:, :, ::-1]]
    if aug_rounds:
        arr128 = np.load(os.path.join(DATA_ROOT, "crops128", "train.npy"), mmap_mode="r")[:limit]
        for x in augmented_crops(arr128, aug_rounds, seed + 1):
            parts.append(((x + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    images = np.ascontiguousarray(np.concatenate(parts))
    ids = tokenize_u8(model, images)
    os.makedirs(folder, exist_ok=True)
    for p, arr in zip(paths, (images, ids)):
        np.save(p + ".tmp.npy", arr)
        os.replace(p + ".tmp.npy", p)
    log("data", images=len(images), aug_rounds=aug_rounds, seconds=round(time.time() - t0, 1))
    return images, ids


def pca_images(base: StyledVQ, ids: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """ids [B,36] -> the PCA decode [B,3,64,64]; keep [B] (prefix lengths) fills the
    positions from keep[b] on with 0, the package's prefix fill."""
    z = base.codebook.dequantize(ids.long())
    if keep is not None:
        z = z * (torch.arange(z.shape[1], device=z.device)[None, :] < keep[:, None]).unsqueeze(-1).to(z)
    return base.skip.decode(z)


@torch.no_grad()
def val_psnr(base: StyledVQ, refiner: Refiner | None, ids: torch.Tensor, target: torch.Tensor, ks=EVAL_KS) -> dict:
    out, dev = {}, base.skip.enc.device
    for k in ks:
        ps = []
        for i in range(0, len(ids), 256):
            keep = torch.full((len(ids[i:i + 256]),), k, device=dev)
            y = pca_images(base, ids[i:i + 256].to(dev), keep)
            if refiner is not None:
                y = refiner(y)
            ps.append(psnr(to_unit(y.float()), to_unit(target[i:i + 256].to(dev))).cpu())
        out[k] = round(torch.cat(ps).mean().item(), 3)
    return out


@torch.no_grad()
def val_continuous(base: StyledVQ, refiner: Refiner | None, target: torch.Tensor) -> float:
    """PSNR of the decode of the unquantized latents (all 36): with val_psnr's k = 36, the
    quantization cost of requirement 3, logged along the training curve."""
    ps, dev = [], base.skip.enc.device
    for i in range(0, len(target), 256):
        x = target[i:i + 256].to(dev)
        y = base.skip.decode(base.skip.encode(x))
        if refiner is not None:
            y = refiner(y)
        ps.append(psnr(to_unit(y.float()), to_unit(x)).cpu())
    return round(torch.cat(ps).mean().item(), 3)


def start_refiner(ck: dict, a: argparse.Namespace) -> tuple[dict, list | None]:
    """The refiner weights a new run starts from: none (--fresh, or the base has none), the
    base's own, or the base's grown to --channels/--blocks (--grow); checked before the
    data build, which takes minutes. Also returns the (channels, blocks) it was grown from."""
    prior = {k[len("refiner."):]: v for k, v in ck["model"].items() if k.startswith("refiner.")}
    if not prior or a.fresh:
        return {}, None
    shape = refiner_shape(prior)
    if shape == (a.channels, a.blocks):
        return prior, None
    if not a.grow:
        raise SystemExit(f"{a.final}: its refiner has {shape[0]} channels x {shape[1]} blocks, not "
                         f"--channels {a.channels} --blocks {a.blocks}; give --grow to widen/deepen it, "
                         "or --fresh to start a new one")
    try:
        return grow_refiner(prior, a.channels, a.blocks, a.seed), list(shape)
    except ValueError as e:
        raise SystemExit(f"{a.final}: {e}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--final", required=True,
                    help="the model to refine: train_pca_code.py's final.pt, or a model package folder")
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="npy", help="'npy' (training/data/ crops) or 'pack:DIR' (a JPEG pack, no augmentation)")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup-steps", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--nested", type=float, default=0.5, help="fraction of samples truncated to a random prefix")
    ap.add_argument("--seconds", type=float, required=True, help="training budget (wall clock, all sittings)")
    ap.add_argument("--aug-rounds", type=int, default=4)
    ap.add_argument("--train-limit", type=int, default=None, help="only the first N training crops (tests)")
    ap.add_argument("--val-limit", type=int, default=None, help="only the first N validation crops (tests)")
    ap.add_argument("--eval-every", type=float, default=900)
    ap.add_argument("--checkpoint-every", type=float, default=600)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fresh", action="store_true", help="start a new refiner even if --final has one")
    ap.add_argument("--grow", action="store_true",
                    help="--final's refiner is smaller than --channels/--blocks: widen/deepen it so that it starts "
                         "from what it computes (styled_vq/refiner.py grow_refiner) instead of from scratch")
    ap.add_argument("--no-bf16", action="store_true", help="fp32 on CPU (bf16 autocast is the default)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.data != "npy" and a.aug_rounds:
        ap.error("--aug-rounds needs the 128 px crops of --data npy; give --aug-rounds 0 with a pack")
    # Refusals come before the run directory is touched (and before the minutes of data build).
    base, ck = load_base(a.final)
    prior, grown = start_refiner(ck, a) if not os.path.exists(os.path.join(a.run, "refiner.ckpt")) else ({}, None)
    os.makedirs(a.run, exist_ok=True)
    log = JsonLog(os.path.join(a.run, "log.jsonl"), wall_clock=True)
    log("args", **vars(a), torch=torch.__version__, trainer="train_refiner")
    log("base", source=os.path.abspath(a.final), **({"package": ck["base_package"]} if "base_package" in ck else {}),
        token_dims=list(base.cfg.token_dims or []))
    train_u8, val_u8 = load_data(a.data, base.cfg.image_size)
    images, ids = build_data(base, train_u8, os.path.join(a.run, "data"), a.aug_rounds, a.seed, log, a.train_limit)
    val_u8 = val_u8[:a.val_limit]
    val_ids, val_x = torch.from_numpy(tokenize_u8(base, val_u8)), to_batch(val_u8)

    torch.manual_seed(a.seed)
    refiner = Refiner(a.channels, a.blocks).to(a.device)
    ema = copy.deepcopy(refiner).eval()
    opt = torch.optim.AdamW(refiner.parameters(), lr=a.lr, weight_decay=0.0)
    state = {"step": 0, "seconds": 0.0, "images": 0}
    ckpt = os.path.join(a.run, "refiner.ckpt")
    if os.path.exists(ckpt):
        s = torch.load(ckpt, map_location="cpu")
        refiner.load_state_dict(s["refiner"]), ema.load_state_dict(s["ema"]), opt.load_state_dict(s["opt"])
        state = s["state"]
        log("resumed", **state)
    else:
        log("baseline", val=val_psnr(base, None, val_ids, val_x), val_continuous=val_continuous(base, None, val_x))
        if prior:
            # Compute accumulates across sittings: a refined package (or final.pt) continues.
            refiner.load_state_dict(prior)
            ema.load_state_dict(prior)
            log("init_refiner", source=os.path.abspath(a.final), grown_from=grown, val=val_psnr(base, ema, val_ids, val_x),
                val_continuous=val_continuous(base, ema, val_x))
    base.to(a.device)
    bf16 = a.device == "cpu" and not a.no_bf16
    rng = np.random.default_rng((a.seed, state["step"]))
    last_ck = last_eval = time.time()
    t_start, sec0 = time.time(), state["seconds"]
    while state["seconds"] < a.seconds:
        frac = state["seconds"] / a.seconds
        lr = a.lr * min(1.0, (state["step"] + 1) / a.warmup_steps) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = np.sort(rng.integers(0, len(ids), a.batch))
        target = to_batch(images[idx]).to(a.device)
        b_ids = torch.from_numpy(ids[idx]).to(a.device)
        keep = torch.full((a.batch,), base.cfg.num_tokens)
        cut = torch.from_numpy(rng.random(a.batch) < a.nested)
        keep[cut] = torch.from_numpy(rng.integers(1, base.cfg.num_tokens, int(cut.sum())))
        with torch.no_grad():
            x = pca_images(base, b_ids, keep.to(a.device))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = refiner(x)
        loss = ((y.float() - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), refiner.parameters()):
                pe.lerp_(p, 1 - a.ema)
        state["step"] += 1
        state["images"] += a.batch
        state["seconds"] = sec0 + time.time() - t_start
        if state["step"] % 100 == 0:
            log("step", step=state["step"], images=state["images"], seconds=round(state["seconds"], 1),
                loss=round(loss.item(), 6), lr=lr)
        now = time.time()
        done = state["seconds"] >= a.seconds
        if now - last_ck > a.checkpoint_every or done:
            torch.save({"refiner": refiner.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "state": state}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
            last_ck = now
        if now - last_eval > a.eval_every or done:
            log("eval", step=state["step"], images=state["images"], seconds=round(state["seconds"], 1),
                val=val_psnr(base, ema, val_ids, val_x), val_continuous=val_continuous(base, ema, val_x))
            last_eval = time.time()

    cfg = dataclasses.replace(base.cfg, refiner_channels=a.channels, refiner_blocks=a.blocks)
    model = StyledVQ(cfg, codebook_size=base.codebook.size, codebook_per_position=bool(base.codebook.positions))
    model.load_state_dict({**{k: v.cpu() for k, v in base.state_dict().items()},
                           **{"refiner." + k: v.cpu() for k, v in ema.state_dict().items()}})
    path = os.path.join(a.run, "final.pt")
    torch.save({**ck, "config": cfg.to_dict(), "model": {k: v.float() for k, v in model.state_dict().items()},
                "refiner_args": vars(a), "refiner_state": state}, path + ".tmp")
    os.replace(path + ".tmp", path)
    log("saved", path=path, **state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
