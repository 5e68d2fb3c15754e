"""How many principal directions each token holds (config `token_dims`).

Every token costs the same 12 bits (one id of 4096), but principal directions differ in
variance by orders of magnitude: giving each token 8 directions spends as many bits on
direction 280 as on direction 0. Rate-distortion theory for Gaussian sources (reverse
water-filling, Cover & Thomas 10.3.3) says how many bits a set of variances is worth;
this module splits the ordered spectrum into `num_tokens` consecutive runs (so the order
stays coarse to fine) that maximise the total variance removed at `bits` bits per token,
with at most `max_dim` directions per token. k-means does not reach the Gaussian bound,
but the bound ranks allocations well enough to choose one (the choice is measured on
validation crops, see the model card).
"""
from __future__ import annotations

import numpy as np


def water_filling_distortion(variances: np.ndarray, bits: float) -> float:
    """Minimum total squared error of coding independent Gaussians of these variances
    with `bits` bits: sum(min(theta, v)) where sum over v > theta of 0.5*log2(v/theta) = bits."""
    v = np.asarray(variances, dtype=np.float64)
    v = v[v > 0]
    if len(v) == 0:
        return 0.0
    lo, hi = np.log(v.min()) - 2 * bits, np.log(v.max())
    for _ in range(100):  # bisection on log(theta)
        mid = 0.5 * (lo + hi)
        rate = 0.5 * np.log2(np.maximum(v / np.exp(mid), 1.0)).sum()
        lo, hi = (mid, hi) if rate > bits else (lo, mid)
    return float(np.minimum(np.exp(hi), v).sum())


def allocate_token_dims(variances: np.ndarray, num_tokens: int, max_dim: int, bits: float,
                        min_first: int = 1, total: int | None = None) -> list[int]:
    """Dynamic programme over run boundaries: token j holds directions s_j .. s_j + d_j - 1,
    s_0 = 0, 1 <= d_j <= max_dim, maximising the variance removed (Gaussian bound).
    min_first: the first token holds at least this many directions (3 lets one token carry
    the image's mean colour, which is spread over the first few directions).
    total: use exactly this many directions (the first `total`) instead of the number that
    maximises the bound. Fewer directions make a continuous latent that the tokens can
    carry almost losslessly (the quantization cost falls), at some cost in quantized quality."""
    v = np.asarray(variances, dtype=np.float64)
    n = len(v)
    if n < num_tokens:
        raise ValueError(f"{num_tokens} tokens need at least {num_tokens} directions, got {n}")
    gain = np.full((n + 1, max_dim + 1), -np.inf)
    for s in range(n):
        for d in range(1, min(max_dim, n - s) + 1):
            seg = v[s:s + d]
            gain[s, d] = seg.sum() - water_filling_distortion(seg, bits)
    if total is not None and not (max(num_tokens, min_first + num_tokens - 1) <= total <= min(n, num_tokens * max_dim)):
        raise ValueError(f"total {total} directions cannot be split over {num_tokens} tokens "
                         f"of 1..{max_dim} (first >= {min_first}) from {n} computed")
    best = np.full((num_tokens + 1, n + 1), -np.inf)
    if total is None:
        best[num_tokens, :] = 0.0
    else:
        best[num_tokens, total] = 0.0
    choice = np.zeros((num_tokens, n + 1), dtype=int)
    for j in range(num_tokens - 1, -1, -1):
        for s in range(n):
            for d in range(min_first if j == 0 else 1, min(max_dim, n - s) + 1):
                val = gain[s, d] + best[j + 1, s + d]
                if val > best[j, s]:
                    best[j, s], choice[j, s] = val, d
    dims, s = [], 0
    for j in range(num_tokens):
        dims.append(int(choice[j, s]))
        s += dims[-1]
    return dims
