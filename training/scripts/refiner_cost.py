#!/usr/bin/env python3
"""Quantized (k = 36) and continuous PSNR, and their difference (the quantization cost of
requirement 3), of a package's PCA decode, of its own refiner and of the refiners of
train_refiner.py checkpoints (`refiner.ckpt`: the EMA weights), on the validation split and
optionally on a seeded sample of training crops: a codebook that fits its own crops much
better than unseen ones shows as a larger train-validation gap in the quantized figure than
in the continuous one.

  /usr/bin/python3 -m training.scripts.refiner_cost --val-limit 600 RUN/refiner.ckpt ...
  /usr/bin/python3 -m training.scripts.refiner_cost --train-sample 1500 --no-package-refiner
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from styled_vq.data import to_batch  # noqa: E402
from styled_vq.paths import default_package  # noqa: E402
from styled_vq.refiner import Refiner, refiner_shape  # noqa: E402
from train_refiner import load_base, tokenize_u8, val_continuous, val_psnr  # noqa: E402
from train_v2 import load_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", help="train_refiner.py refiner.ckpt files")
    ap.add_argument("--package", default=None, help="whose tokens (default: models/DEFAULT)")
    ap.add_argument("--val-limit", type=int, default=None, help="only the first N validation crops")
    ap.add_argument("--train-sample", type=int, default=0, help="also N training crops (seeded sample)")
    ap.add_argument("--no-package-refiner", action="store_true", help="skip the package's own refiner")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base, ck = load_base(a.package or default_package())
    train, val = load_data("npy", base.cfg.image_size)
    splits = {"val": val[:a.val_limit]}
    if a.train_sample:
        splits["train"] = train[np.sort(np.random.default_rng(0).choice(len(train), a.train_sample, replace=False))]

    decoders: list[tuple[str, dict | None, dict]] = [("PCA decode", None, {})]
    if not a.no_package_refiner:
        own = {k[len("refiner."):]: v for k, v in ck["model"].items() if k.startswith("refiner.")}
        if own:
            decoders.append(("the package's refiner", own, {"shape": list(refiner_shape(own))}))
    for path in a.checkpoints:
        s = torch.load(path, map_location="cpu")
        decoders.append((path, s["ema"], {"images": s["state"]["images"], "shape": list(refiner_shape(s["ema"]))}))

    for split, u8 in splits.items():
        ids, x = torch.from_numpy(tokenize_u8(base, u8)), to_batch(u8)
        for what, sd, extra in decoders:
            r = None
            if sd is not None:
                r = Refiner(*refiner_shape(sd)).eval()
                r.load_state_dict(sd)
            q, c = val_psnr(base, r, ids, x, ks=(36,))[36], val_continuous(base, r, x)
            print(json.dumps({"split": split, "crops": len(u8), "what": what, **extra, "quantized": q,
                              "continuous": c, "cost": round(c - q, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
