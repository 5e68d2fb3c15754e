"""Image -> 36 latent vectors (docs/architecture.md, encoder). The research checkpoint keeps
these parameters at its top level under other names; styled_vq/checkpoint.py (RENAMES)
translates at the checkpoint boundary."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, ExpertBlock


class SoftAnchorHead(nn.Module):
    """Research "V2" head: cosine weights over D learned anchors (rows of V2), plainly
    normalised (not softmax), mixed and LayerNorm'ed. Keeps the latent space smooth so
    that k-means quantization error hurts less."""

    def __init__(self, dim: int):
        super().__init__()
        self.V2 = nn.Parameter(torch.randn(dim, dim))
        self.ln_cosin = nn.LayerNorm(dim)

    def forward(self, mu):  # [B, T, D]
        # Anchors broadcast to rank 3: torch 1.13 exports cosine_similarity between
        # [N,1,D] and [D,D] with a ReduceSum axis ONNX Runtime refuses.
        anchors = self.V2.unsqueeze(0).unsqueeze(0)  # [1, 1, D, D]
        s = F.cosine_similarity(mu.unsqueeze(-2), anchors, dim=-1) + 1.0  # [B, T, D]
        w = s / s.sum(dim=-1, keepdim=True)
        return self.ln_cosin(w @ self.V2)


class Encoder(nn.Module):
    """ViT over the patches plus a class token and 36 learned query tokens; the queries'
    outputs, projected to the latent dim, are the latents (before the head)."""

    def __init__(self, cfg):
        super().__init__()
        w = cfg.enc_width
        self.num_tokens = cfg.num_tokens
        # Creation order is the research code's (same random initialisation for a seed).
        self.patch_embed = nn.Conv2d(3, w, cfg.patch_size, stride=cfg.patch_size)
        self.class_embedding = nn.Parameter(torch.randn(1, w) * 0.02)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.num_patches + 1, w) * 0.02)
        self.query_embedding = nn.Parameter(torch.randn(cfg.num_tokens, w) * 0.02)
        self.ln_pre = nn.LayerNorm(w)
        self.blocks = nn.ModuleList(Block(w, cfg.enc_heads, cfg.mlp_ratio) for _ in range(cfg.enc_dense_blocks))
        self.expert_blocks = nn.ModuleList(
            ExpertBlock(w, cfg.enc_heads, cfg.mlp_ratio, cfg.num_tokens) for _ in range(cfg.enc_expert_blocks))
        self.ln_post = nn.LayerNorm(w)
        self.to_latent = nn.Linear(w, cfg.latent_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image [B,3,S,S] -> [B,36,D]."""
        x = self.patch_embed(image)  # [B, W, g, g]
        b = x.shape[0]
        x = x.flatten(2).transpose(1, 2)  # [B, N, W], row-major patches
        cls = self.class_embedding.unsqueeze(0).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        q = self.query_embedding.unsqueeze(0).expand(b, -1, -1)
        x = self.ln_pre(torch.cat([x, q], dim=1))
        for blk in self.blocks:
            x = blk(x)
        for blk in self.expert_blocks:
            x = blk(x)
        x = self.ln_post(x)[:, -self.num_tokens:]
        return self.to_latent(x)
