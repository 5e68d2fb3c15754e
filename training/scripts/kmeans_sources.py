#!/usr/bin/env python3
"""Do the codebooks want more distinct training images? One token's 4096-code k-means
(k-means++ seeds, 12 Lloyd iterations, the shipped package's PCA directions) fitted on the
crops (and mirrors) of a growing share of the training *sources*, each time measured on the
validation crops. If the validation distortion still falls from half to all of the sources,
more distinct images would buy quantized PSNR; the train/validation gap says how much the
codebook fits its own crops.

  /usr/bin/python3 -m training.scripts.kmeans_sources --position 30
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from bench_torch import load_from_package  # noqa: E402
from styled_vq.data import load_crops, to_batch  # noqa: E402
from styled_vq.kmeans import assign, kmeans_pp_seeds, lloyd  # noqa: E402
from styled_vq.paths import DATA_ROOT, default_package  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="default: models/DEFAULT")
    ap.add_argument("--position", type=int, default=30, help="token position whose directions are quantized")
    ap.add_argument("--shares", default="0.25,0.5,1")
    ap.add_argument("--codes", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_from_package(a.package or default_package())
    dims = model.cfg.token_dims
    first = sum(dims[:a.position])
    rows = slice(first, first + dims[a.position])

    @torch.no_grad()
    def latents(u8: np.ndarray) -> torch.Tensor:
        return torch.cat([model.skip.coefficients(to_batch(u8[i:i + 4096]), rows) for i in range(0, len(u8), 4096)])

    train = np.asarray(load_crops("train", 64))
    with open(os.path.join(DATA_ROOT, "crops64", "train_sources.json")) as f:
        source = np.array([f"{r['package']}:{r['path']}" for r in json.load(f)])
    names = np.unique(source)
    order = np.random.default_rng(0).permutation(len(names))
    xv = latents(np.asarray(load_crops("val", 64))).contiguous()
    print(f"token {a.position} (directions {first}..{rows.stop - 1}), {len(names)} training sources, "
          f"{len(train)} crops; validation {len(xv)} crops", flush=True)
    for share in (float(s) for s in a.shares.split(",")):
        keep = np.isin(source, names[order[:round(share * len(names))]])
        u8 = train[keep]
        x = torch.cat([latents(u8), latents(np.ascontiguousarray(u8[:, :, ::-1]))]).contiguous()
        c = lloyd(x, kmeans_pp_seeds(x, a.codes, torch.Generator().manual_seed(0)), 12)
        print(json.dumps({"share": share, "sources": int(round(share * len(names))), "latents": len(x),
                          "train_distortion": round(float(assign(x, c)[1].mean()), 4),
                          "val_distortion": round(float(assign(xv, c)[1].mean()), 4),
                          "val_variance": round(float(xv.var(0).sum()), 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
