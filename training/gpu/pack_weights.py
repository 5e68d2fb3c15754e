#!/usr/bin/env python3
"""Carry trained weights back from the GPU machine within the device tool's limits, and
join them here.

  split final.pt OUTDIR   -> OUTDIR/weights.part0..N (15 MB each): float tensors in fp16
                             except the codebook and the PCA mean/scale (fp32: token ids
                             and the skip path's offset are the precision-sensitive parts)
  join  PARTSDIR final.pt -> a final.pt with every tensor back in float32
"""
from __future__ import annotations

import glob
import io
import os
import sys

import torch

PART = 15 * 1000 * 1000
KEEP_FP32 = ("codebook.embedding", "skip.mean", "skip.scale")


def split(src: str, out: str) -> None:
    ck = torch.load(src, map_location="cpu")
    ck["model"] = {k: (v if k in KEEP_FP32 or not v.is_floating_point() else v.half())
                   for k, v in ck["model"].items()}
    buf = io.BytesIO()
    torch.save(ck, buf)
    data = buf.getvalue()
    os.makedirs(out, exist_ok=True)
    for i in range(0, len(data), PART):
        with open(os.path.join(out, f"weights.part{i // PART}"), "wb") as f:
            f.write(data[i:i + PART])
    print(f"split {len(data)} bytes into {(len(data) + PART - 1) // PART} parts")


def join(folder: str, dst: str) -> None:
    parts = sorted(glob.glob(os.path.join(folder, "weights.part*")), key=lambda p: int(p.rsplit("part", 1)[1]))
    data = b"".join(open(p, "rb").read() for p in parts)
    ck = torch.load(io.BytesIO(data), map_location="cpu")
    ck["model"] = {k: (v.float() if v.is_floating_point() else v) for k, v in ck["model"].items()}
    torch.save(ck, dst)
    print(f"joined {len(parts)} parts -> {dst}")


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    (split if cmd == "split" else join)(a, b)
