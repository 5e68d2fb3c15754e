#!/usr/bin/env python3
"""Fit the v3 model (issue 9): the PCA code with a bit-aware split of directions over tokens.

  1. PCA of the training crops and their mirror images.
  2. token_dims: how many principal directions each of the 36 tokens holds, by reverse
     water-filling on the PCA spectrum (styled_vq/allocation.py), at most --max-dim each.
  3. Per-position k-means (36 tables of 4096 codes) on the training latents, their
     mirrors and --aug-rounds rounds of random resized crops of the 128 px crops (k-means
     with 4096 codes on 27 k points fits the training set, not new images).
  4. The result is <run>/final.pt in train_v2.py's format (export.py --checkpoint, evaluate.py
     --final read it); JSON-lines records in <run>/log.jsonl.

No networks (config residual: false): measured on the v2 model, the learned residual
added 0.02 dB continuous and 0.1 dB quantized over the PCA code it started from (model
card of styled-vq-skip64), and its decoder ran at 62 img/s at batch 1 against the PCA
code's 4,837 (`npm run bench`, BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from styled_vq.allocation import allocate_token_dims, water_filling_distortion  # noqa: E402
from styled_vq.config import preset  # noqa: E402
from styled_vq.data import DATA_ROOT, to_batch  # noqa: E402
from styled_vq.kmeans import assign, kmeans_pp_seeds, lloyd  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402
from styled_vq.pca_skip import fit_pca  # noqa: E402
from train_v2 import JsonLog, evaluate, load_data, save_final  # noqa: E402


@torch.no_grad()
def kmeans_by_position(lat: torch.Tensor, dims: list[int], k: int, iters: int, gen: torch.Generator, log,
                       state_path: str, seeding: str = "kmeans++") -> torch.Tensor:
    """lat [N, T, D] -> codebooks [T, K, D] (0 in unused slots). Lloyd iterations
    (styled_vq/kmeans.py), one position at a time (each on its used dims only), seeded by
    k-means++ (or, seeding 'random', from distinct random latents: the shipped pca64's
    tables). The tables so far are saved to state_path after every position, so a stopped
    run resumes where it was."""
    n, t, d = lat.shape
    state = torch.load(state_path) if os.path.exists(state_path) else {"done": 0, "codebook": torch.zeros(t, k, d)}
    seeds = [torch.randperm(n, generator=gen)[:k] for _ in range(t)] if seeding == "random" else None
    for j in range(state["done"], t):
        x = lat[:, j, :dims[j]].contiguous()
        if seeding == "random":
            init = x[seeds[j]]
        else:  # a generator per position: a resumed run seeds the next position as a fresh one would
            init = kmeans_pp_seeds(x, k, torch.Generator().manual_seed(int(gen.initial_seed()) * 1000 + j))
        c = lloyd(x, init, iters)
        _, dist = assign(x, c)
        log("kmeans", position=j, dims=dims[j], iters=iters, mean_distance=float(dist.mean()))
        state["codebook"][j, :, :dims[j]] = c
        state["done"] = j + 1
        torch.save(state, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)
    return state["codebook"]


def augmented_crops(arr128: np.ndarray, rounds: int, seed: int, batch: int = 1024):
    """Batches of 64 px images [B,3,64,64] in [-1,1]: per round and batch one random square
    (side 75-100 % of the 128 px crop, random offset), area-downscaled (antialiased
    bilinear), mirrored on odd rounds."""
    g = torch.Generator().manual_seed(seed)
    for r in range(rounds):
        for i in range(0, len(arr128), batch):
            x = to_batch(np.asarray(arr128[i:i + batch]))
            side = int(round(128 * (0.75 + 0.25 * torch.rand(1, generator=g).item())))
            ox, oy = (int(torch.randint(0, 128 - side + 1, (1,), generator=g)) for _ in range(2))
            y = F.interpolate(x[:, :, oy:oy + side, ox:ox + side], size=(64, 64), mode="bilinear",
                              antialias=True, align_corners=False).clamp(-1, 1)
            yield y.flip(-1) if r % 2 else y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="npy", help="'npy' (training/data/ crops) or 'pack:DIR' (a JPEG pack, no augmentation)")
    ap.add_argument("--max-dim", type=int, default=16, help="most principal directions one token holds")
    ap.add_argument("--total-dims", type=int, default=None,
                    help="use exactly this many principal directions (default: as many as the bound favours); "
                         "fewer make a continuous latent the tokens carry almost losslessly")
    ap.add_argument("--min-first-dims", type=int, default=3, help="directions the first token holds at least")
    ap.add_argument("--codebook-size", type=int, default=4096)
    ap.add_argument("--aug-rounds", type=int, default=8, help="rounds of random resized crops for k-means")
    ap.add_argument("--kmeans-iters", type=int, default=12)
    ap.add_argument("--seeding", choices=("kmeans++", "random"), default="kmeans++",
                    help="k-means seeds: k-means++ (default) or random latents (how pca64's tables were made)")
    ap.add_argument("--directions", type=int, default=400,
                    help="principal directions computed (the allocation chooses among them)")
    ap.add_argument("--train-limit", type=int, default=None, help="only the first N training crops (tests)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.run, exist_ok=True)
    log = JsonLog(os.path.join(a.run, "log.jsonl"))
    log("args", **vars(a), torch=torch.__version__, trainer="train_pca_code")
    t0 = time.time()
    if a.data != "npy" and a.aug_rounds:
        ap.error("--aug-rounds needs the 128 px crops of --data npy; give --aug-rounds 0 with a pack")
    train_np, val_np = load_data(a.data, 64)
    train_np = train_np[: a.train_limit]
    val = torch.from_numpy(np.array(val_np))
    train = to_batch(train_np)
    both = torch.cat([train, train.flip(-1)])

    base = preset("skip64")
    n_max = min(base.num_tokens * a.max_dim, a.directions, len(both) - 64)
    pca_path = os.path.join(a.run, "pca.pt")  # the slow step (minutes): kept for a rerun
    if os.path.exists(pca_path):
        mean, comps, std = (torch.load(pca_path)[k] for k in ("mean", "comps", "std"))
    else:
        mean, comps, std = fit_pca(both, n_max, seed=a.seed)
        torch.save({"mean": mean, "comps": comps, "std": std}, pca_path)
    variances = (std.double() ** 2).numpy()
    bits = math.log2(a.codebook_size)
    dims = allocate_token_dims(variances, base.num_tokens, a.max_dim, bits, a.min_first_dims, a.total_dims)
    n = sum(dims)
    uniform = [base.latent_dim] * base.num_tokens
    bound = {name: float(variances[:sum(d)].sum() - sum(
        water_filling_distortion(variances[sum(d[:j]):sum(d[:j]) + dj], bits) for j, dj in enumerate(d)))
        for name, d in (("chosen", dims), ("uniform", uniform))}
    log("allocation", token_dims=dims, directions=n, seconds=round(time.time() - t0, 1),
        variance_total=float(((both.reshape(len(both), -1) - mean) ** 2).sum(1).mean()),
        variance_removed_bound=bound)

    # latent_dim: the widest token (slots past it would be 0 in every code).
    cfg = dataclasses.replace(base, latent_dim=max(dims), token_dims=tuple(dims), residual=False)
    model = StyledVQ(cfg, codebook_size=a.codebook_size, codebook_per_position=True).eval()
    model.skip.init_from(mean, comps[:n], std[:n])

    t1 = time.time()
    with torch.no_grad():
        lat = [model.encode(both[i:i + 2048]) for i in range(0, len(both), 2048)]
        if a.aug_rounds:
            arr128 = np.load(os.path.join(DATA_ROOT, "crops128", "train.npy"), mmap_mode="r")[: a.train_limit]
            lat += [model.encode(x) for x in augmented_crops(arr128, a.aug_rounds, a.seed + 1)]
    lat = torch.cat(lat)
    log("latents", count=len(lat), seconds=round(time.time() - t1, 1))
    gen = torch.Generator().manual_seed(a.seed + 2)
    t2 = time.time()
    cb = kmeans_by_position(lat, dims, a.codebook_size, a.kmeans_iters, gen, log, os.path.join(a.run, "kmeans.pt"),
                            a.seeding)
    with torch.no_grad():
        model.codebook.embedding.copy_(cb * model.skip.mask.unsqueeze(1))
    log("kmeans_done", seconds=round(time.time() - t2, 1),
        val_quantized=evaluate(model, val, True), val_continuous=evaluate(model, val, False, ks=(36,)))
    save_final(a, model, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
