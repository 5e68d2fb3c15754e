#!/usr/bin/env python3
"""Train styled-vq on the crops of training/data/ (the v1 recipe; v2 is train_v2.py, training/README.md).

  stage1  encoder + decoder end to end on continuous latents
  stage2  k-means the frozen encoder's training latents into K codes, then fine-tune the
          decoder on quantized latents

Both stages are resumable: rerun the same command and it continues from the last
checkpoint in --run (written atomically every --save-every steps). The log is
<run>/log.jsonl, one JSON record per line (also echoed to stdout; make_model_card.py reads
it): "start" (per process: stage, args, config, parameters), "session" (the training loop
starts or resumes: step, total_steps, batch, crops), "step" (loss, mse, psnr, gnorm, lr,
img_per_s, epoch), "val", "encoded", "kmeans", "codebook", "before_finetune", "done"; each
has "t" (seconds since the process started) and "time" (Unix time). Example (the shipped default):

  python3 -m training.train stage1 --run RUN --preset small64 --steps 9000
  python3 -m training.train stage2 --run RUN --codebook-size 4096 --steps 1500
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from styled_vq.checkpoint import model_from_state_dict, ours_names  # noqa: E402
from styled_vq.config import PRESETS, ModelConfig, preset  # noqa: E402
from styled_vq.data import Batches, load_crops, to_batch  # noqa: E402
from styled_vq.jsonlog import JsonLog  # noqa: E402
from styled_vq.kmeans import kmeans  # noqa: E402
from styled_vq.losses import psnr, ssim, to_unit  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402
from styled_vq.nested_dropout import NestedDropout  # noqa: E402

LOG_NAME = "log.jsonl"


def open_log(run: str) -> JsonLog:
    os.makedirs(run, exist_ok=True)
    return JsonLog(os.path.join(run, LOG_NAME), wall_clock=True)


def save_atomic(obj, path: str) -> None:
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def loss_fn(out, x, ssim_weight: float):
    mse = ((out - x) ** 2).mean()
    loss = mse
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1 - ssim(to_unit(out), to_unit(x))).mean()
    return loss, mse


@torch.no_grad()
def validate(model: StyledVQ, val: np.ndarray, limit: int = 512, quantized: bool = False) -> dict:
    model.eval()
    ps, ss = [], []
    for i in range(0, min(len(val), limit), 64):
        x = to_batch(val[i:i + 64])
        z = model.encode(x)
        if quantized:
            z = model.codebook.dequantize(model.codebook.quantize(z))
        out = model.decode(z)
        ps.append(psnr(to_unit(out), to_unit(x)))
        ss.append(ssim(to_unit(out), to_unit(x)))
    model.train()
    return {"psnr": torch.cat(ps).mean().item(), "ssim": torch.cat(ss).mean().item()}


def make_optimizer(params, lr: float, steps: int, warmup: float):
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=warmup,
                                                anneal_strategy="cos", div_factor=25, final_div_factor=100)
    return opt, sched


def train_loop(a, log: JsonLog, stage: str, model: StyledVQ, params, steps: int, ckpt_path: str,
               extra_state: dict, transform=None, nd: NestedDropout | None = None):
    train = load_crops("train", model.cfg.image_size)
    val = load_crops("val", model.cfg.image_size)
    batches = Batches(train, a.batch, a.seed)
    opt, sched = make_optimizer(params, a.lr, steps, a.warmup)
    step = 0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(ours_names(ck["model"]))  # a .ckpt of either naming (checkpoint.RENAMES)
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        batches.load_state(ck["batches"])
        if nd is not None and "nested_dropout" in ck:
            nd.load_state_dict(ck["nested_dropout"])
        torch.set_rng_state(ck["rng"])
        step = ck["step"]
    log("session", stage=stage, step=step, total_steps=steps, batch=a.batch, resumed=step > 0,
        checkpoint=ckpt_path if step > 0 else None, train_crops=len(train), val_crops=len(val))
    model.train()
    t0, seen0 = time.time(), step
    while step < steps:
        x = batches.next()
        if transform is None:
            z = model.encode(x)
            if nd is not None:
                z = nd(z)
            out = model.decode(z)
        else:
            out = transform(x)
        loss, mse = loss_fn(out, x, a.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % a.log_every == 0 or step == steps:
            rate = (step - seen0) * a.batch / (time.time() - t0)
            log("step", stage=stage, step=step, total_steps=steps, loss=round(loss.item(), 6),
                mse=round(mse.item(), 6), psnr=round(10 * math.log10(4 / max(mse.item(), 1e-12)), 3),
                gnorm=round(float(gnorm), 4), lr=float(sched.get_last_lr()[0]), img_per_s=round(rate, 2),
                epoch=batches.epoch)
        if step % a.save_every == 0 or step == steps:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "batches": batches.state(), "rng": torch.get_rng_state(), "step": step,
                     "config": model.cfg.to_dict(), **extra_state}
            if nd is not None:
                state["nested_dropout"] = nd.state_dict()
            save_atomic(state, ckpt_path)
            if step % (a.save_every * 4) == 0 or step == steps:
                v = validate(model, val, quantized=(stage == "stage2"))
                log("val", stage=stage, step=step, psnr=round(v["psnr"], 4), ssim=round(v["ssim"], 5))
    return model


def export_weights(model: StyledVQ, path: str, extra: dict) -> None:
    save_atomic({"config": model.cfg.to_dict(), "model": model.state_dict(), **extra}, path)


def stage1(a, log: JsonLog) -> None:
    cfg_path = os.path.join(a.run, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            saved = json.load(f)
        cfg = ModelConfig.from_dict(saved["model"])
    else:
        overrides = json.loads(a.override) if a.override else {}
        cfg = preset(a.preset, **overrides)
        with open(cfg_path + ".tmp", "w") as f:
            json.dump({"model": cfg.to_dict(), "args": vars(a)}, f, indent=2)
        os.replace(cfg_path + ".tmp", cfg_path)
    torch.manual_seed(a.seed)
    model = StyledVQ(cfg)
    nd = NestedDropout(cfg.num_tokens, cfg.latent_dim, a.nested_dropout) if a.nested_dropout > 0 else None
    log("start", stage="stage1", args=vars(a), config=cfg.to_dict(),
        parameters=sum(p.numel() for p in model.parameters()))
    model = train_loop(a, log, "stage1", model, [p for p in model.parameters()], a.steps,
                       os.path.join(a.run, "stage1.ckpt"), {}, nd=nd)
    extra = {"neutral": nd.neutral.clone()} if nd is not None else {}
    export_weights(model, os.path.join(a.run, "stage1.pt"), extra)
    log("done", stage="stage1")


@torch.no_grad()
def encode_all(model: StyledVQ, arr: np.ndarray, batch: int = 128) -> torch.Tensor:
    model.eval()
    return torch.cat([model.encode(to_batch(arr[i:i + batch])) for i in range(0, len(arr), batch)])


def stage2(a, log: JsonLog) -> None:
    s1 = torch.load(os.path.join(a.run, "stage1.pt"), map_location="cpu")
    cfg = ModelConfig.from_dict(s1["config"])
    log("start", stage="stage2", args=vars(a), config=cfg.to_dict())
    cfg_path = os.path.join(a.run, "config.json")
    with open(cfg_path) as f:
        saved = json.load(f)
    saved["stage2_args"] = vars(a)
    with open(cfg_path + ".tmp", "w") as f:
        json.dump(saved, f, indent=2)
    os.replace(cfg_path + ".tmp", cfg_path)
    cb_path = os.path.join(a.run, "codebook.pt")
    if os.path.exists(cb_path):
        cb = torch.load(cb_path)
        log("codebook", stage="stage2", path=cb_path)
    else:
        model = model_from_state_dict(s1["model"], cfg)
        train = load_crops("train", cfg.image_size)
        t0 = time.time()
        lat = encode_all(model, train).reshape(-1, cfg.latent_dim)
        log("encoded", stage="stage2", crops=len(train), latents=lat.shape[0], seconds=round(time.time() - t0, 1))
        t0 = time.time()
        emb, stats = kmeans(lat, a.codebook_size, iters=a.kmeans_iters, seed=a.seed, metric=a.metric,
                            log=lambda msg: log("kmeans_progress", stage="stage2", message=msg))
        log("kmeans", stage="stage2", codebook_size=a.codebook_size, seconds=round(time.time() - t0, 1), stats=stats)
        cb = {"embedding": emb, "metric": a.metric, "stats": stats}
        save_atomic(cb, cb_path)
    model = StyledVQ(cfg, codebook_size=cb["embedding"].shape[0], codebook_metric=cb["metric"])
    # --init continues the decoder fine-tune of a finished stage 2 (same frozen encoder).
    sd = ours_names(torch.load(a.init, map_location="cpu")["model"] if a.init else s1["model"])
    sd["codebook.embedding"] = cb["embedding"]
    model.load_state_dict(sd)
    for p in model.parameters():
        p.requires_grad_(False)
    dec_params = list(model.decoder.parameters()) + list(model.decoder_in.parameters())
    for p in dec_params:
        p.requires_grad_(True)

    def quantized_forward(x):
        with torch.no_grad():
            z = model.codebook.dequantize(model.codebook.quantize(model.encode(x)))
        return model.decode(z)

    val = load_crops("val", cfg.image_size)
    log("before_finetune", stage="stage2", continuous=validate(model, val), quantized=validate(model, val, quantized=True))
    model = train_loop(a, log, "stage2", model, dec_params, a.steps, os.path.join(a.run, "stage2.ckpt"), {},
                       transform=quantized_forward)
    extra = {"codebook_metric": cb["metric"], "codebook_stats": cb["stats"]}
    if "neutral" in s1:
        extra["neutral"] = s1["neutral"]
    export_weights(model, os.path.join(a.run, "stage2.pt"), extra)
    log("done", stage="stage2")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["stage1", "stage2"])
    ap.add_argument("--run", required=True, help="run directory (checkpoints, log); keep it outside the repo")
    ap.add_argument("--preset", default="small64", choices=sorted(PRESETS))
    ap.add_argument("--override", help='JSON of config fields to change, e.g. \'{"head": "noise", "noise_std": 0.1}\'')
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of steps rising to --lr (one-cycle)")
    ap.add_argument("--ssim-weight", type=float, default=0.1)
    ap.add_argument("--nested-dropout", type=float, default=0.0, help="stage 1: fraction of samples truncated to a prefix")
    ap.add_argument("--codebook-size", type=int, default=4096)
    ap.add_argument("--metric", choices=["l2", "cosine"], default="l2")
    ap.add_argument("--init", help="stage 2: start the decoder from these weights (e.g. a finished stage2.pt) instead of stage1.pt")
    ap.add_argument("--kmeans-iters", type=int, default=25)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--save-every", type=int, default=250)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    (stage1 if a.stage == "stage1" else stage2)(a, open_log(a.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
