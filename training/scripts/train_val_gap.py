#!/usr/bin/env python3
"""Quantized and continuous PSNR of a package's PCA decode (no refiner) on training crops
and on the validation split: a codebook that fits its own crops much better than unseen
ones shows as a larger train-val gap for quantized than for continuous latents.

  /usr/bin/python3 -m training.scripts.train_val_gap --n 1500
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from styled_vq.data import to_batch  # noqa: E402
from styled_vq.paths import REPO  # noqa: E402
from train_refiner import load_base, tokenize_u8, val_continuous, val_psnr  # noqa: E402
from train_v2 import load_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="default: models/DEFAULT")
    ap.add_argument("--n", type=int, default=1500, help="crops of each split (training: a seeded sample)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = os.path.join(REPO, "models")
    pkg = a.package or os.path.join(models, open(os.path.join(models, "DEFAULT")).read().strip())
    base, _ = load_base(pkg)
    train, val = load_data("npy", base.cfg.image_size)
    pick = np.sort(np.random.default_rng(0).choice(len(train), min(a.n, len(train)), replace=False))
    for name, u8 in (("train", train[pick]), ("val", val[:a.n])):
        ids, x = torch.from_numpy(tokenize_u8(base, u8)), to_batch(u8)
        q, c = val_psnr(base, None, ids, x, ks=(36,))[36], val_continuous(base, None, x)
        print(json.dumps({"split": name, "crops": len(u8), "quantized": q, "continuous": c, "cost": round(c - q, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
