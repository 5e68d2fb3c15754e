#!/usr/bin/env python3
"""Quantized (k = 36) and continuous validation PSNR, and their difference (the quantization
cost of requirement 3), for the refiners of train_refiner.py checkpoints (`refiner.ckpt`:
the EMA weights) on a package's tokens; also the package's PCA decode and its own refiner.

  /usr/bin/python3 -m training.scripts.refiner_cost --val-limit 600 RUN/refiner.ckpt ...
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from styled_vq.data import to_batch  # noqa: E402
from styled_vq.paths import REPO  # noqa: E402
from styled_vq.refiner import Refiner, refiner_shape  # noqa: E402
from train_refiner import load_base, tokenize_u8, val_continuous, val_psnr  # noqa: E402
from train_v2 import load_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", help="train_refiner.py refiner.ckpt files")
    ap.add_argument("--package", default=None, help="whose tokens (default: models/DEFAULT)")
    ap.add_argument("--val-limit", type=int, default=None, help="only the first N validation crops")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = os.path.join(REPO, "models")
    pkg = a.package or os.path.join(models, open(os.path.join(models, "DEFAULT")).read().strip())
    base, ck = load_base(pkg)
    val = load_data("npy", base.cfg.image_size)[1][:a.val_limit]
    ids, x = torch.from_numpy(tokenize_u8(base, val)), to_batch(val)

    def row(what: str, sd: dict | None, **extra) -> None:
        r = None
        if sd:
            r = Refiner(*refiner_shape(sd)).eval()
            r.load_state_dict(sd)
        q, c = val_psnr(base, r, ids, x, ks=(36,))[36], val_continuous(base, r, x)
        print(json.dumps({"what": what, **extra, "quantized": q, "continuous": c, "cost": round(c - q, 3)}), flush=True)

    row("PCA decode", None)
    row(f"{os.path.basename(pkg)}'s refiner", {k[len("refiner."):]: v for k, v in ck["model"].items()
                                                if k.startswith("refiner.")})
    for path in a.checkpoints:
        s = torch.load(path, map_location="cpu")
        row(path, s["ema"], images=s["state"]["images"], shape=list(refiner_shape(s["ema"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
