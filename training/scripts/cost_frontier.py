#!/usr/bin/env python3
"""Quantization cost against quality, on the Gaussian rate-distortion bound (issue 9).

For each number n of principal directions in the continuous latent, token_dims by reverse
water-filling over exactly those n directions (styled_vq/allocation.py, `total`), then:
  continuous  = variance left by n exact coefficients,
  quantized   = that + the bound's distortion of coding them with 36 x 12 bits,
  cost        = 10 log10(quantized / continuous) dB,
and PSNR offsets against the unconstrained allocation. k-means sits above the bound, so
this chooses which n to fit for real (train_pca_code.py --total-dims n), it does not
replace the measurement.

  /usr/bin/python3 -m training.scripts.cost_frontier RUN/pca.pt --total-variance 3407
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch

from styled_vq.allocation import allocate_token_dims, water_filling_distortion  # noqa: E402


def frontier(variances: np.ndarray, total_variance: float, ns: list[int | None], tokens: int = 36,
             max_dim: int = 16, bits: float = 12.0, min_first: int = 3) -> list[dict]:
    rows = []
    for n in ns:
        dims = allocate_token_dims(variances, tokens, max_dim, bits, min_first, n)
        used = sum(dims)
        cont = total_variance - float(variances[:used].sum())
        dq = sum(water_filling_distortion(variances[sum(dims[:j]):sum(dims[:j]) + d], bits)
                 for j, d in enumerate(dims))
        rows.append({"n": used, "free": n is None, "dims": dims, "continuous": cont, "quantized": cont + dq,
                     "cost_db": 10 * math.log10((cont + dq) / cont)})
    ref = rows[0]["quantized"]
    for r in rows:
        r["quantized_vs_free_db"] = 10 * math.log10(ref / r["quantized"])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pca", help="a run's pca.pt (train_pca_code.py)")
    ap.add_argument("--total-variance", type=float, required=True,
                    help="mean squared norm of the centred training images (log.jsonl 'allocation' record)")
    ap.add_argument("--ns", default="36,48,64,80,96,120,144,176,208,240,280")
    a = ap.parse_args(argv)
    std = torch.load(a.pca)["std"].double().numpy()
    rows = frontier(std ** 2, a.total_variance, [None] + [int(x) for x in a.ns.split(",")])
    print("| directions | continuous (bound units) | quantized (bound) | cost (dB) | quantized vs free (dB) |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']}{' (free)' if r['free'] else ''} | {r['continuous']:.1f} | {r['quantized']:.1f} | "
              f"{r['cost_db']:.2f} | {r['quantized_vs_free_db']:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
