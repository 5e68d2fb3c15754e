"""Nearest-row quantization (stage 2). Distances are computed in float32 whatever the
model's precision: token ids must not depend on it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Codebook(nn.Module):
    """One table of `size` rows shared by every position, or (positions > 0) one table
    per token position: embedding [T, size, D]. Per-position tables give each position
    the codes its own distribution needs (the first tokens of the PCA design vary 50x
    more than the last); ids stay in [0, size) either way, so the package contract and
    token files do not change, but an id means a different vector at each position."""

    def __init__(self, size: int, dim: int, metric: str = "l2", positions: int = 0):
        super().__init__()
        if metric not in ("l2", "cosine"):
            raise ValueError(f"metric must be 'l2' or 'cosine', not {metric!r}")
        if positions and metric != "l2":
            raise ValueError("per-position codebooks support the l2 metric only")
        self.metric = metric
        self.positions = positions
        shape = (positions, size, dim) if positions else (size, dim)
        self.register_buffer("embedding", torch.zeros(*shape))

    @property
    def size(self) -> int:
        return int(self.embedding.shape[-2])

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, T, D] -> ids [B, T] int64."""
        z = z.float()
        e = self.embedding.float()
        if self.positions:
            # [T, B, D] @ [T, D, K] -> [T, B, K]; ||z||^2 is constant per row.
            d = (e * e).sum(dim=-1).unsqueeze(1) - 2.0 * (z.transpose(0, 1) @ e.transpose(1, 2))
            return d.argmin(dim=-1).transpose(0, 1)
        if self.metric == "cosine":
            return (F.normalize(z, dim=-1) @ F.normalize(e, dim=-1).t()).argmax(dim=-1)
        # ||z||^2 is the same for every row, so argmin ||e||^2 - 2 z.e is the nearest row.
        d = (e * e).sum(dim=-1) - 2.0 * (z @ e.t())
        return d.argmin(dim=-1)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        if self.positions:
            t, k, d = self.embedding.shape
            offsets = torch.arange(t, device=ids.device) * k
            return F.embedding(ids + offsets, self.embedding.reshape(t * k, d))
        return F.embedding(ids, self.embedding)


class QuantizeGraph(nn.Module):
    def __init__(self, cb: Codebook):
        super().__init__()
        self.cb = cb
        if cb.positions:
            # One stored table [T, D+1, K] = [-2e; ||e||^2]: distances are a single MatMul of
            # [z, 1] with it. Tracing cb.quantize instead stores e^T *and* e*e (the ReduceSum
            # is not constant-folded), twice the bytes in the package.
            e = cb.embedding.float()
            table = torch.cat([-2.0 * e, (e * e).sum(-1, keepdim=True)], dim=-1).transpose(1, 2)
            self.register_buffer("table", table.contiguous())

    def forward(self, latents):
        if not self.cb.positions:
            return self.cb.quantize(latents)
        z = latents.float()
        ones = torch.ones_like(z[..., :1])
        d = torch.cat([z, ones], dim=-1).transpose(0, 1) @ self.table  # [T, B, K]
        return d.argmin(dim=-1).transpose(0, 1)


class DequantizeGraph(nn.Module):
    def __init__(self, cb: Codebook):
        super().__init__()
        self.cb = cb

    def forward(self, tokens):
        return self.cb.dequantize(tokens)
