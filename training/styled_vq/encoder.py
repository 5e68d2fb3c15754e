"""Image -> 36 latent vectors (docs/architecture.md, encoder). Parameters live at the top
level of the research checkpoint (no `encoder.` prefix); StyledVQ registers them there."""
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


def encoder_forward(m, image: torch.Tensor) -> torch.Tensor:
    """m is the StyledVQ module (research names live at its top level)."""
    x = m.patch_embed(image)  # [B, W, g, g]
    b = x.shape[0]
    x = x.flatten(2).transpose(1, 2)  # [B, N, W], row-major patches
    cls = m.class_embedding.unsqueeze(0).expand(b, -1, -1)
    x = torch.cat([cls, x], dim=1) + m.positional_embedding
    q = m.query_embedding.unsqueeze(0).expand(b, -1, -1)
    x = m.ln_ecoder_1(torch.cat([x, q], dim=1))
    for blk in m.resblocks:
        x = blk(x)
    for blk in m.resblocks_exper:
        x = blk(x)
    x = m.ln_before_project_(x)[:, -m.cfg.num_tokens:]
    return m.progject_mean(x)


def build_encoder_parts(m, cfg) -> None:
    w = cfg.enc_width
    m.patch_embed = nn.Conv2d(3, w, cfg.patch_size, stride=cfg.patch_size)
    m.class_embedding = nn.Parameter(torch.randn(1, w) * 0.02)
    m.positional_embedding = nn.Parameter(torch.randn(cfg.num_patches + 1, w) * 0.02)
    m.query_embedding = nn.Parameter(torch.randn(cfg.num_tokens, w) * 0.02)
    m.ln_ecoder_1 = nn.LayerNorm(w)
    m.resblocks = nn.ModuleList(Block(w, cfg.enc_heads, cfg.mlp_ratio) for _ in range(cfg.enc_dense_blocks))
    m.resblocks_exper = nn.ModuleList(
        ExpertBlock(w, cfg.enc_heads, cfg.mlp_ratio, cfg.num_tokens) for _ in range(cfg.enc_expert_blocks))
    m.ln_before_project_ = nn.LayerNorm(w)
    m.progject_mean = nn.Linear(w, cfg.latent_dim)
