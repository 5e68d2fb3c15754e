"""Nearest-row quantization (stage 2). Distances are computed in float32 whatever the
model's precision: token ids must not depend on it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int, metric: str = "l2"):
        super().__init__()
        if metric not in ("l2", "cosine"):
            raise ValueError(f"metric must be 'l2' or 'cosine', not {metric!r}")
        self.metric = metric
        self.register_buffer("embedding", torch.zeros(size, dim))

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, D] -> ids [B, T] int64."""
        z = z.float()
        e = self.embedding.float()
        if self.metric == "cosine":
            return (F.normalize(z, dim=-1) @ F.normalize(e, dim=-1).t()).argmax(dim=-1)
        # ||z||^2 is the same for every row, so argmin ||e||^2 - 2 z.e is the nearest row.
        d = (e * e).sum(dim=-1) - 2.0 * (z @ e.t())
        return d.argmin(dim=-1)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embedding)


class QuantizeGraph(nn.Module):
    def __init__(self, cb: Codebook):
        super().__init__()
        self.cb = cb

    def forward(self, latents):
        return self.cb.quantize(latents)


class DequantizeGraph(nn.Module):
    def __init__(self, cb: Codebook):
        super().__init__()
        self.cb = cb

    def forward(self, tokens):
        return self.cb.dequantize(tokens)
