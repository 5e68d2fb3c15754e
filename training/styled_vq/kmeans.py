"""k-means for the stage-2 codebook (Lloyd iterations, k-means++-style seeding on a
subsample, dead codes re-seeded at the points worst served). float32 throughout."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def assign(x: torch.Tensor, c: torch.Tensor, metric: str = "l2", chunk: int = 1024):
    """Nearest code of each row. L2: one fused addmm per 1024-row block keeps the [chunk, K]
    distance block in cache (3x faster here than one product over 65536 rows)."""
    ids, dists = [], []
    cn = (c * c).sum(1)
    cc = F.normalize(c, dim=1) if metric == "cosine" else c
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        if metric == "cosine":
            sim = F.normalize(xb, dim=1) @ cc.t()
            v, j = sim.max(1)
            d = 1 - v
        else:
            d, j = torch.addmm(cn, xb, c.t(), beta=1, alpha=-2).min(1)
            d = (d + (xb * xb).sum(1)).clamp_min(0)
        ids.append(j)
        dists.append(d)
    return torch.cat(ids), torch.cat(dists)


def lloyd(x: torch.Tensor, c: torch.Tensor, iters: int, metric: str = "l2", log=None) -> torch.Tensor:
    """Lloyd iterations from the codes c [K, D]; a code that loses all its points is
    re-seeded at the points served worst."""
    k = len(c)
    c = c.clone()
    for it in range(iters):
        ids, d = assign(x, c, metric)
        counts = torch.bincount(ids, minlength=k).float()
        sums = torch.zeros_like(c).index_add_(0, ids, x)
        alive = counts > 0
        c[alive] = sums[alive] / counts[alive].unsqueeze(1)
        dead = int((~alive).sum())
        if dead:
            c[~alive] = x[d.topk(dead).indices]
        if log and (it % 5 == 0 or it == iters - 1):
            log(f"k-means iter {it}: mean distance {d.mean().item():.5f}, dead codes re-seeded {dead}")
    return c


def kmeans_pp_seeds(x: torch.Tensor, k: int, g: torch.Generator, subsample: int = 20) -> torch.Tensor:
    """k-means++ seeding (each next code drawn with probability ~ squared distance to the
    codes so far) on a random subsample of subsample * k rows (exact k-means++ over 1M
    points is too slow here). Measured on one 3-dimensional PCA token with 4096 codes fitted
    on 53k crops: Lloyd from random data points left validation distortion 41 % higher than
    from these seeds (codes pile up in the dense clusters of the training images and no
    Lloyd step moves them out); with train_pca_code's 160k augmented latents the whole
    model gained only 0.03 dB from them (issue 9's model card)."""
    sub = x[torch.randperm(len(x), generator=g)[: min(len(x), subsample * k)]]
    centers = [sub[torch.randint(len(sub), (1,), generator=g)].squeeze(0)]
    d2 = ((sub - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        j = torch.multinomial(d2.clamp_min(1e-12), 1, generator=g).item()
        centers.append(sub[j])
        d2 = torch.minimum(d2, ((sub - sub[j]) ** 2).sum(1))
    return torch.stack(centers)


def kmeans(x: torch.Tensor, k: int, iters: int = 25, seed: int = 0, metric: str = "l2", log=print):
    x = x.float().contiguous()
    g = torch.Generator().manual_seed(seed)
    c = lloyd(x, kmeans_pp_seeds(x, k, g), iters, metric, log)
    ids, d = assign(x, c, metric)
    counts = torch.bincount(ids, minlength=k).float()
    p = counts / counts.sum()
    perplexity = torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()
    return c, {"used_fraction_train": float((counts > 0).float().mean()), "perplexity_train": perplexity,
               "mean_distance": float(d.mean())}
