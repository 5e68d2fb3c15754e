#!/usr/bin/env python3
"""k-means++ against random seeds for one token's codebook (the numbers in the default
model's card): directions --first .. --first+--dims-1 of the shipped package's PCA code,
4096 codes fitted on the training crops and their mirror images (no augmentation), mean
squared distance of the validation crops to their nearest code after 12 and 48 Lloyd
iterations.

  /usr/bin/python3 -m training.scripts.kmeans_seeding --first 40 --dims 3
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from bench_torch import load_from_package  # noqa: E402
from styled_vq.data import load_crops, to_batch  # noqa: E402
from styled_vq.kmeans import assign, kmeans_pp_seeds, lloyd  # noqa: E402
from styled_vq.paths import default_package  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="default: models/DEFAULT")
    ap.add_argument("--first", type=int, default=40)
    ap.add_argument("--dims", type=int, default=3)
    ap.add_argument("--codes", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    skip = load_from_package(a.package or default_package()).skip
    rows = slice(a.first, a.first + a.dims)

    @torch.no_grad()
    def latents(u8: np.ndarray) -> torch.Tensor:
        return torch.cat([skip.coefficients(to_batch(u8[i:i + 4096]), rows) for i in range(0, len(u8), 4096)])

    train = np.asarray(load_crops("train", 64))
    x = torch.cat([latents(train), latents(np.ascontiguousarray(train[:, :, ::-1]))]).contiguous()
    xv = latents(np.asarray(load_crops("val", 64))).contiguous()
    g = torch.Generator().manual_seed(0)
    for name, init in (("random latents", x[torch.randperm(len(x), generator=g)[:a.codes]]),
                       ("k-means++", kmeans_pp_seeds(x, a.codes, g))):
        c12 = lloyd(x, init, 12)
        c48 = lloyd(x, c12, 36)
        print(f"{name}: validation distortion {float(assign(xv, c12)[1].mean()):.4f} after 12 iterations, "
              f"{float(assign(xv, c48)[1].mean()):.4f} after 48 (train {float(assign(x, c12)[1].mean()):.4f})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
