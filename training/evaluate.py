#!/usr/bin/env python3
"""Measure a trained styled-vq model on the validation split (the numbers of the model card).

Writes <out>/evaluation.json, <out>/prefix_curve.png and <out>/reconstructions.png, and
prints a summary table. Measured:
  1. PSNR / SSIM of the continuous stage-1 model, the stage-2 decoder on continuous
     latents, and the quantized 36-token model; the quantization cost in dB;
  2. two references at the same bit budget (36 * log2 K bits): the mean-colour image and
     the largest n x n RGB thumbnail that fits, upscaled bicubically;
  3. codebook usage on validation (fraction of codes used, perplexity, per position);
  4. the prefix curve: only the first k tokens kept, the rest replaced by a neutral latent;
  5. a grid of validation images with their reconstructions.

Examples:
  # the shipped model (after both stages)
  python3 -m training.evaluate --stage1 RUN/stage1.pt --stage2 RUN/stage2.pt --out RUN/eval
  # development: an in-progress stage-1 checkpoint, a quick k-means codebook, 256 val crops
  python3 -m training.evaluate --stage1 /tmp/stage1.ckpt --dev-codebook 1024 --limit 256 --threads 1 --out /tmp/eval
  # stage 1 + the stage-2 codebook before the decoder fine-tune
  python3 -m training.evaluate --stage1 RUN/stage1.pt --codebook RUN/codebook.pt --out /tmp/eval
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

from styled_vq.checkpoint import load_model, model_from_state_dict  # noqa: E402
from styled_vq.config import ModelConfig  # noqa: E402
from styled_vq.data import DATA_ROOT, crops_path, load_crops, to_batch  # noqa: E402
from styled_vq.evaluation import (DEFINITIONS, PREFIX_KS, Meter, bit_budget, code_usage, draw_grid,  # noqa: E402
                                  draw_line_plot, keep_prefix, mean_colour, pick_grid_indices,
                                  requirements, thumbnail, thumbnail_side, uint8_to_unit)
from styled_vq.export import sha256_file  # noqa: E402
from styled_vq.kmeans import kmeans  # noqa: E402
from styled_vq.losses import to_unit  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402
from styled_vq.paths import command  # noqa: E402

BATCH = 64
PHOTOS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "photos")
# name -> (array path, sources path); "val" is the crops split of training/data/.
EVAL_SETS = {
    "val": None,
    "photos": (os.path.join(PHOTOS_DIR, "photos64.npy"), os.path.join(PHOTOS_DIR, "photos64_sources.json")),
    "holdout": (os.path.join(PHOTOS_DIR, "holdout64.npy"), os.path.join(PHOTOS_DIR, "holdout64_sources.json")),
}


# ------------------------------------------------------------------------------ loading



def load_checkpoint(path: str) -> tuple[StyledVQ, dict]:
    """Our checkpoints (stage1.pt, stage2.pt, in-progress *.ckpt) -> (model, info). The
    optimizer state of a .ckpt is dropped at once: only the weights are needed."""
    ck = torch.load(path, map_location="cpu")
    info = {"path": os.path.abspath(path), "sha256": sha256_file(path)}
    if isinstance(ck, dict) and "config" in ck and "model" in ck:
        cfg = ModelConfig.from_dict(ck["config"])
        model = model_from_state_dict(ck["model"], cfg, ck.get("codebook_metric", "l2"))
        if "step" in ck:
            info["step"] = int(ck["step"])  # in-progress checkpoint
        info["neutral_ema"] = ck.get("neutral", (ck.get("nested_dropout") or {}).get("neutral"))
    else:
        model = load_model(path)  # a research state dict (seed preset)
        info["neutral_ema"] = None
    return model.eval(), info


def with_codebook(model: StyledVQ, embedding: torch.Tensor, metric: str) -> StyledVQ:
    """A copy of `model` with a codebook attached (stage-1 weights + a codebook)."""
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("codebook.")}
    sd["codebook.embedding"] = embedding.float()
    return model_from_state_dict(sd, model.cfg, metric).eval()


@torch.no_grad()
def encode_all(model: StyledVQ, arr: np.ndarray) -> torch.Tensor:
    return torch.cat([model.encode(to_batch(arr[i:i + BATCH])) for i in range(0, len(arr), BATCH)])


def train_subset(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random subset of the training crops (sorted: the array is a memmap)."""
    train = load_crops("train", size)
    idx = np.sort(np.random.default_rng(seed).choice(len(train), min(n, len(train)), replace=False))
    return idx, np.asarray(train[idx])


# ---------------------------------------------------------------------------- the models

def build_models(a, log) -> dict:
    """Resolve the three roles: 'continuous' (stage 1), 'quantized' (stage 2, or stage 1 +
    a codebook for development) and 'stage2' (for its continuous reference)."""
    roles: dict = {"continuous": None, "quantized": None, "stage2": None, "info": {}}
    if a.final:
        m, info = load_checkpoint(a.final)
        if m.codebook is None:
            raise SystemExit(f"{a.final} has no codebook.embedding: is it a train_v2.py final.pt?")
        roles["continuous"] = roles["quantized"] = m
        roles["info"]["final"] = info
        roles["info"]["codebook"] = {"source": "final.pt", "size": m.codebook.size, "metric": m.codebook.metric,
                                     "per_position": bool(m.codebook.positions)}
        fill = torch.load(a.final, map_location="cpu").get("prefix_fill")
        roles["fill"] = fill
        return roles
    if a.stage1:
        roles["continuous"], roles["info"]["stage1"] = load_checkpoint(a.stage1)
    if a.stage2:
        m, info = load_checkpoint(a.stage2)
        if m.codebook is None:
            raise SystemExit(f"{a.stage2} has no codebook.embedding: is it a stage-2 checkpoint?")
        roles["quantized"] = roles["stage2"] = m
        roles["info"]["stage2"] = info
        roles["info"]["codebook"] = {"source": "stage2 checkpoint", "size": int(m.codebook.embedding.shape[0]),
                                     "metric": m.codebook.metric}
    elif a.codebook:
        cb = torch.load(a.codebook, map_location="cpu")
        roles["quantized"] = with_codebook(roles["continuous"], cb["embedding"], cb.get("metric", "l2"))
        roles["info"]["codebook"] = {"source": f"{os.path.abspath(a.codebook)} on the stage-1 decoder (no stage-2 fine-tune)",
                                     "size": int(cb["embedding"].shape[0]), "metric": cb.get("metric", "l2"),
                                     "sha256": sha256_file(a.codebook)}
    if roles["continuous"] is not None and roles["quantized"] is not None:
        c1, c2 = roles["continuous"].cfg, roles["quantized"].cfg
        if c1 != c2:
            raise SystemExit(f"stage-1 and stage-2 configs differ:\n{c1}\n{c2}")
    return roles


def dev_codebook(model: StyledVQ, train_latents: torch.Tensor, k: int, seed: int, log) -> StyledVQ:
    """Development only: k-means a codebook from a few thousand training crops' latents so
    the quantized path can be exercised before stage 2 exists."""
    lat = train_latents.reshape(-1, train_latents.shape[-1])
    emb, stats = kmeans(lat, k, iters=10, seed=seed, metric="l2", log=lambda s: log("  " + s))
    return with_codebook(model, emb, "l2"), stats


# -------------------------------------------------------------------------- evaluation

@torch.no_grad()
def neutral_latents(roles: dict, train_lat: dict) -> dict:
    """Per-position mean latent over the training subset; for the token model also its
    nearest code, so a truncated sequence is still a valid token sequence."""
    out = {}
    if "continuous" in train_lat:
        out["continuous"] = train_lat["continuous"].mean(0)
    if "quantized" in train_lat:
        mean = train_lat["quantized"].mean(0)
        cb = roles["quantized"].codebook
        ids = cb.quantize(mean.unsqueeze(0))
        out["quantized"] = cb.dequantize(ids)[0]
        out["quantized_ids"] = ids[0]
        out["quantized_mean"] = mean
    return out


def per_position_usage(ids: torch.Tensor, k: int) -> dict:
    """Per-position codebooks: a code is a (position, id) pair, 36 x K in all."""
    t = ids.shape[1]
    flat = (ids.long() + torch.arange(t) * k).reshape(-1)
    counts = torch.bincount(flat, minlength=t * k)
    used = int((counts > 0).sum())
    from styled_vq.evaluation import perplexity
    return {"codes": t * k, "used": used, "used_fraction": used / (t * k), "tokens": int(ids.numel()),
            "perplexity_per_position_mean": float(np.mean([perplexity(counts[j * k:(j + 1) * k]) for j in range(t)])),
            "max_possible_fraction": min(1.0, ids.shape[0] / k)}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Model output [-1,1] BCHW -> uint8 BHWC (clamped, rounded) for pictures."""
    return (to_unit(x) * 255).round().byte().permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def evaluate_val(roles: dict, val: np.ndarray, neutral: dict, thumb_n: int, grid_pos: list[int], log) -> dict:
    meter = Meter()
    ids_all = []
    grid = {name: [] for name in ("original", "continuous", "quantized", "thumbnail")}
    s1, qm, s2 = roles["continuous"], roles["quantized"], roles["stage2"]
    t0 = time.time()
    for start in range(0, len(val), BATCH):
        arr = np.asarray(val[start:start + BATCH])
        x, target = to_batch(arr), uint8_to_unit(arr)
        sel = [p - start for p in grid_pos if start <= p < start + len(arr)]
        recon = {"original": arr}
        if s1 is not None:
            z1 = s1.encode(x)
            out = s1.decode(z1)
            meter.add("continuous", to_unit(out), target)
            recon["continuous"] = out
            for k in PREFIX_KS:
                o = out if k == s1.cfg.num_tokens else s1.decode(keep_prefix(z1, k, neutral["continuous"]))
                meter.add(f"prefix_continuous_{k}", to_unit(o), target)
        if qm is not None:
            zc = z1 if (qm is not s2 and s1 is not None) else qm.encode(x)  # dev: same encoder as stage 1
            ids = qm.codebook.quantize(zc)
            ids_all.append(ids)
            zq = qm.codebook.dequantize(ids)
            out = qm.decode(zq)
            meter.add("quantized", to_unit(out), target)
            recon["quantized"] = out
            if s2 is not None:
                meter.add("stage2_continuous", to_unit(s2.decode(zc)), target)
            for k in PREFIX_KS:
                o = out if k == qm.cfg.num_tokens else qm.decode(keep_prefix(zq, k, neutral["quantized"]))
                meter.add(f"prefix_quantized_{k}", to_unit(o), target)
        mc, th = mean_colour(arr), thumbnail(arr, thumb_n)
        meter.add("mean_colour", uint8_to_unit(mc), target)
        meter.add("thumbnail", uint8_to_unit(th), target)
        recon["thumbnail"] = th
        for name, r in recon.items():
            if sel:
                r = to_uint8(r) if torch.is_tensor(r) else r
                grid[name].append(r[sel])
        done = start + len(arr)
        if done == len(val) or (done // BATCH) % 5 == 0:
            log(f"  {done}/{len(val)} val crops, {done / (time.time() - t0):.1f} img/s")
    grid = {k: np.concatenate(v) for k, v in grid.items() if v}
    ids = torch.cat(ids_all) if ids_all else None
    return {"meter": meter, "ids": ids, "grid": grid, "seconds": time.time() - t0}


# ------------------------------------------------------------------------------ report

def quality_table(meter: Meter) -> dict:
    q = {name: meter.summary(name) for name in ("continuous", "stage2_continuous", "quantized", "mean_colour",
                                                 "thumbnail") if name in meter.names()}

    def diff(a, b):
        return q[a]["psnr"] - q[b]["psnr"] if a in q and b in q else None

    q["quantization_cost_db"] = diff("continuous", "quantized")
    q["quantization_cost_vs_stage2_continuous_db"] = diff("stage2_continuous", "quantized")
    q["gap_to_thumbnail_db"] = diff("quantized", "thumbnail")
    q["gap_to_mean_colour_db"] = diff("quantized", "mean_colour")
    q["continuous_gap_to_thumbnail_db"] = diff("continuous", "thumbnail")
    return q


def prefix_curve(meter: Meter, neutral: dict, n_train: int) -> dict:
    curve: dict = {"k": list(PREFIX_KS)}
    for role in ("quantized", "continuous"):
        if f"prefix_{role}_0" in meter.names():
            s = [meter.summary(f"prefix_{role}_{k}") for k in PREFIX_KS]
            curve[role] = {"psnr": [v["psnr"] for v in s], "ssim": [v["ssim"] for v in s]}
    if "fill_kind" in neutral:
        curve["neutral"] = {"quantized": f"the package's prefix fill ({neutral['fill_kind']}: 0 = the mean image's "
                                         "PCA coefficients), as in training", "continuous": "the same prefix fill"}
        return curve
    curve["neutral"] = {
        "quantized": f"per-position mean of the quantized model's encoder latents over {n_train} training crops, each "
                     "replaced by its nearest codebook row (a valid token per position)",
        "continuous": f"per-position mean of the stage-1 encoder's latents over {n_train} training crops "
                      "(not quantized)",
    }
    if "quantized_ids" in neutral:
        curve["neutral"]["quantized_token_ids"] = neutral["quantized_ids"].tolist()
        d = (neutral["quantized"] - neutral["quantized_mean"]).norm(dim=-1)
        curve["neutral"]["quantized_distance_to_mean"] = {"mean": float(d.mean()), "max": float(d.max())}
    return curve


def write_plot(path: str, curve: dict, quality: dict, thumb_n: int) -> None:
    series = []
    if "quantized" in curve:
        series.append(("quantized (36 tokens, neutral code after k)", curve["quantized"]["psnr"]))
    if "continuous" in curve:
        series.append(("continuous stage 1 (mean latent after k)", curve["continuous"]["psnr"]))
    hlines = [("mean colour", quality.get("mean_colour", {}).get("psnr")),
              (f"{thumb_n}x{thumb_n} thumbnail", quality.get("thumbnail", {}).get("psnr"))]
    img = draw_line_plot(curve["k"], series, hlines, title="Prefix curve on the validation split",
                         xlabel="k = tokens kept (the rest neutral)", ylabel="PSNR (dB)",
                         xticks=[0, 1, 2, 4, 8, 12, 16, 24, 32, 36])
    img.save(path, optimize=True)


def write_grid(path: str, grid: dict, captions: list[str], labels: dict) -> None:
    rows = [(labels[name], grid[name]) for name in ("original", "continuous", "quantized", "thumbnail") if name in grid]
    draw_grid(rows, scale=3, captions=captions).save(path, optimize=True)


def print_summary(q: dict, usage: dict | None, curve: dict, reqs: list[dict], budget: dict) -> None:
    print(f"\nvalidation: {q['mean_colour']['images']} crops; bit budget {budget['bits']:.0f} bits "
          f"(K={budget['codebook_size']}), thumbnail {budget['thumbnail_side']}x{budget['thumbnail_side']}")
    print(f"{'':24s} {'PSNR dB':>8s} {'SSIM':>7s}")
    for name in ("continuous", "stage2_continuous", "quantized", "mean_colour", "thumbnail"):
        if name in q:
            print(f"{name:24s} {q[name]['psnr']:8.2f} {q[name]['ssim']:7.4f}")
    for key in ("quantization_cost_db", "gap_to_thumbnail_db", "gap_to_mean_colour_db"):
        if q.get(key) is not None:
            print(f"{key:24s} {q[key]:+8.2f}")
    if usage:
        print(f"codes used {usage['used']}/{usage['codebook_size']} ({100 * usage['used_fraction']:.1f}%), "
              f"perplexity {usage['perplexity']:.0f}")
    for role in ("quantized", "continuous"):
        if role in curve:
            print(f"prefix {role:10s} " + " ".join(f"{k}:{p:.1f}" for k, p in zip(curve["k"], curve[role]["psnr"])))
    for r in reqs:
        verdict = "n/a" if r["passed"] is None else ("PASS" if r["passed"] else "FAIL")
        val = "-" if r["value"] is None else f"{r['value']:.3f}"
        print(f"[{verdict}] {r['name']}: {val}")


# -------------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage1", help="stage-1 weights (stage1.pt, or an in-progress stage1.ckpt)")
    ap.add_argument("--stage2", help="stage-2 weights with the codebook (stage2.pt or stage2.ckpt)")
    ap.add_argument("--final", help="a v2 model from train_v2.py (final.pt: weights, codebook and prefix fill); "
                                    "'continuous' is then the same model without quantization")
    ap.add_argument("--set", default="val", choices=sorted(EVAL_SETS),
                    help="evaluation set: the validation split, or the real photos of training/data/photos/")
    ap.add_argument("--ks", help="comma-separated prefix lengths (default: " + ",".join(map(str, PREFIX_KS)) + "); 'all' = 0..T")
    ap.add_argument("--usage-train", type=int, default=0, metavar="N",
                    help="also measure codebook usage over N training crops (per-position codebooks: validation "
                         "has too few images to fill 36 x K codes)")
    ap.add_argument("--codebook", help="without --stage2: a codebook.pt to put on the stage-1 model")
    ap.add_argument("--dev-codebook", type=int, metavar="K",
                    help="without --stage2/--codebook: k-means K codes on the training subset (development only)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--neutral-crops", type=int, default=4096, help="training crops for the neutral latent")
    ap.add_argument("--limit", type=int, help="evaluate only this many validation crops (evenly spaced; development)")
    ap.add_argument("--grid", type=int, default=10, help="validation images in reconstructions.png")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not (a.stage1 or a.stage2 or a.final):
        ap.error("give --final, or --stage1 and/or --stage2")
    if a.final and (a.stage1 or a.stage2 or a.codebook or a.dev_codebook):
        ap.error("--final goes alone")
    if (a.codebook or a.dev_codebook) and (a.stage2 or not a.stage1):
        ap.error("--codebook / --dev-codebook go with --stage1 and without --stage2")
    return a


def prepare_neutral(a, roles: dict, size: int, log) -> tuple[dict, int]:
    """One pass over a training subset gives the neutral latents (and, with
    --dev-codebook, the development codebook)."""
    if roles.get("fill") is not None:
        # v2: dropped positions get the package's prefix fill, exactly what training used.
        fill = roles["fill"]["values"].float()
        return {"continuous": fill, "quantized": fill, "fill_kind": roles["fill"]["kind"]}, 0
    train_idx, train_arr = train_subset(a.neutral_crops, size, a.seed)
    train_lat = {}
    if roles["continuous"] is not None:
        train_lat["continuous"] = encode_all(roles["continuous"], train_arr)
    if a.dev_codebook:
        log(f"dev codebook: k-means K={a.dev_codebook} over {len(train_arr)} training crops' latents")
        roles["quantized"], stats = dev_codebook(roles["continuous"], train_lat["continuous"], a.dev_codebook, a.seed, log)
        roles["info"]["codebook"] = {"source": f"DEVELOPMENT: k-means (10 iterations) over the latents of "
                                               f"{len(train_arr)} training crops, on the stage-1 decoder",
                                     "size": a.dev_codebook, "metric": "l2", "kmeans_stats": stats}
    if roles["quantized"] is not None:
        same_encoder = roles["stage2"] is None  # dev paths put a codebook on the stage-1 model
        train_lat["quantized"] = train_lat["continuous"] if same_encoder else encode_all(roles["quantized"], train_arr)
    return neutral_latents(roles, train_lat), len(train_idx)


def select_val(size: int, limit: int | None, which: str = "val") -> tuple[np.ndarray, np.ndarray, int, list | None]:
    """The validation crops (with --limit an evenly spaced subset, so that every source
    group stays represented), their indices, the split size and their source records."""
    if which != "val":
        arr_path, src_path = EVAL_SETS[which]
        arr = np.load(arr_path)
        with open(src_path) as f:
            sources = json.load(f)
        for s_ in sources:
            s_.setdefault("group", s_.get("package", ""))
        idx = np.arange(len(arr)) if not limit else np.unique(np.linspace(0, len(arr) - 1, limit).round().astype(int))
        return arr[idx], idx, len(arr), [sources[i] for i in idx]
    val_all = load_crops("val", size)
    if limit:
        idx = np.unique(np.linspace(0, len(val_all) - 1, limit).round().astype(int))
    else:
        idx = np.arange(len(val_all))
    sources_path = os.path.join(os.path.dirname(crops_path("val", size)), "val_sources.json")
    sources = None
    if os.path.exists(sources_path):
        with open(sources_path) as f:
            all_sources = json.load(f)
        sources = [all_sources[i] for i in idx]
    return np.asarray(val_all[idx]), idx, len(val_all), sources


def budget_info(num_tokens: int, K: int | None) -> dict:
    """The bit budget of 36 tokens and the reference thumbnail that fits it. Without a
    codebook (stage 1 only) the references use train.py's default K = 4096."""
    b = {"tokens": num_tokens, "codebook_size": K or 4096}
    if not K:
        b["note"] = "no codebook evaluated: budget for K = 4096"
    b["bits"] = bit_budget(num_tokens, b["codebook_size"])
    n = thumbnail_side(b["bits"])
    b.update(thumbnail_side=n, thumbnail_bits=n * n * 24, mean_colour_bits=24)
    return b


def model_info(roles: dict, neutral: dict) -> dict:
    info = roles["info"]
    for v in info.values():
        ema = v.pop("neutral_ema", None) if isinstance(v, dict) else None
        if ema is not None and "continuous" in neutral:
            # How far the nested-dropout running mean (training) is from the measured mean.
            v["neutral_ema_distance_to_mean"] = float((ema - neutral["continuous"]).norm(dim=-1).mean())
    return info


def write_json(path: str, obj: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    a = parse_args(argv)
    t_start = time.time()
    global PREFIX_KS
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    timing = {}

    t0 = time.time()
    roles = build_models(a, log)
    cfg = (roles["continuous"] or roles["quantized"]).cfg
    size = cfg.image_size
    if a.ks:
        PREFIX_KS = tuple(range(cfg.num_tokens + 1)) if a.ks == "all" else tuple(sorted({int(k) for k in a.ks.split(",")} | {0, cfg.num_tokens}))
    timing["load_s"] = time.time() - t0

    t0 = time.time()
    neutral, n_train = prepare_neutral(a, roles, size, log)
    timing["neutral_s"] = time.time() - t0

    val, val_idx, n_val_all, sources = select_val(size, a.limit, a.set)
    grid_pos = pick_grid_indices(sources, a.grid, len(val))
    K = roles["quantized"].codebook.size if roles["quantized"] is not None else None
    budget = budget_info(cfg.num_tokens, K)
    n = budget["thumbnail_side"]

    log(f"evaluating {len(val)} validation crops ({size} px), batch {BATCH}, {a.threads} thread(s)")
    res = evaluate_val(roles, val, neutral, n, grid_pos, log)
    timing["validation_s"] = res["seconds"]
    timing["validation_img_per_s"] = len(val) / res["seconds"]

    quality = quality_table(res["meter"])
    usage = code_usage(res["ids"], K) if res["ids"] is not None else None
    if usage is not None and roles["quantized"].codebook.positions:
        usage["per_position_codebooks"] = per_position_usage(res["ids"], K)
    if a.usage_train and roles["quantized"] is not None:
        _, tr = train_subset(a.usage_train, size, a.seed)
        qm = roles["quantized"]
        with torch.no_grad():
            tr_ids = torch.cat([qm.codebook.quantize(qm.encode(to_batch(tr[i:i + BATCH]))) for i in range(0, len(tr), BATCH)])
        usage["train"] = per_position_usage(tr_ids, K) if qm.codebook.positions else code_usage(tr_ids, K)
        usage["train"]["images"] = int(len(tr))
    curve = prefix_curve(res["meter"], neutral, n_train)
    per_position = roles["quantized"] is not None and bool(roles["quantized"].codebook.positions)
    # Per-position tables hold 36 x K codes: a few hundred images cannot use 90 % of them,
    # so usage is judged only where it was measured on training crops (--usage-train).
    reqs = requirements(quality, usage if usage is None or not per_position or "train" in usage else None, curve)

    t0 = time.time()
    write_plot(os.path.join(a.out, "prefix_curve.png"), curve, quality, n)
    captions = [f"#{int(val_idx[p])} {sources[p]['group'] if sources else ''}" for p in grid_pos]
    labels = {"original": "original", "continuous": "continuous", "quantized": "quantized",
              "thumbnail": f"{n}x{n} thumbnail"}
    write_grid(os.path.join(a.out, "reconstructions.png"), res["grid"], captions, labels)
    timing["png_s"] = time.time() - t0
    timing["total_s"] = time.time() - t_start

    args_list = argv if argv is not None else sys.argv[1:]
    result = {
        "format": "styled-vq-evaluation",
        "version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command("evaluate", args_list),
        "models": model_info(roles, neutral),
        "config": cfg.to_dict(),
        "data": {"split": a.set, "path": os.path.abspath(crops_path("val", size) if a.set == "val" else EVAL_SETS[a.set][0]),
                 "data_root": DATA_ROOT,
                 "image_size": size, "images": int(len(val)), "of": int(n_val_all),
                 "subset": None if not a.limit else "evenly spaced indices (--limit)",
                 "neutral_train_crops": n_train, "seed": a.seed},
        "definitions": DEFINITIONS,
        "bit_budget": budget,
        "quality": quality,
        "codebook_usage": usage,
        "prefix_curve": curve,
        "requirements": reqs,
        "grid": {"val_indices": [int(val_idx[p]) for p in grid_pos],
                 "sources": [None if sources is None else f"{sources[p]['package']}:{sources[p]['path']}" for p in grid_pos],
                 "rows": [labels[k] for k in ("original", "continuous", "quantized", "thumbnail") if k in res["grid"]],
                 "scale": 3},
        "images": {"prefix_curve": "prefix_curve.png", "reconstructions": "reconstructions.png"},
        "timing": {k: round(v, 2) for k, v in timing.items()},
        "threads": a.threads,
    }
    path = os.path.join(a.out, "evaluation.json")
    write_json(path, result)
    print_summary(quality, usage, curve, reqs, budget)
    print(f"\nwrote {path}, prefix_curve.png, reconstructions.png in {timing['total_s']:.0f}s "
          f"(validation {timing['validation_s']:.0f}s, {timing['validation_img_per_s']:.1f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
