#!/usr/bin/env python3
"""Pack the 64 px crops as JPEG (quality 90, 4:4:4) for the GPU machine, whose working
tree travels with a 64 MiB limit: train 300 MiB raw -> ~55 MB (measured ~33 dB against the
originals, far above what a 20 dB tokenizer can tell apart). Output: <out>/<split>.bin
(concatenated JPEG files) and <split>.idx.npy (int64 offsets, N + 1)."""
from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np
from PIL import Image

from styled_vq.data import load_crops  # run as python3 -m training.gpu.pack_data


def pack(arr: np.ndarray, out: str, split: str, quality: int, subsampling: int) -> float:
    offs, chunks, pos, se = [0], [], 0, 0.0
    for img in arr:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img)).save(buf, "JPEG", quality=quality, subsampling=subsampling)
        b = buf.getvalue()
        chunks.append(b)
        pos += len(b)
        offs.append(pos)
        back = np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).astype(np.float64)
        se += ((back - img) ** 2).mean()
    with open(os.path.join(out, f"{split}.bin"), "wb") as f:
        f.write(b"".join(chunks))
    np.save(os.path.join(out, f"{split}.idx.npy"), np.asarray(offs, dtype=np.int64))
    mse = se / len(arr)
    return 10 * np.log10(255 ** 2 / mse), pos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--subsampling", type=int, default=0, help="PIL: 0 = 4:4:4, 2 = 4:2:0")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split in ("train", "val"):
        db, size = pack(load_crops(split, 64), a.out, split, a.quality, a.subsampling)
        print(f"{split}: {size / 1e6:.1f} MB, {db:.2f} dB against the originals (mean per-image MSE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
