"""36 latent vectors -> image (docs/architecture.md, decoder), under the `decoder.` prefix
of the research checkpoint (a few names differ: styled_vq/checkpoint.py, RENAMES)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, CondBlock, ResnetBlock


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w, p = cfg.dec_width, cfg.patch_size
        self.grid, self.patch = cfg.grid, p
        self.positional_embedding = nn.Parameter(torch.randn(cfg.num_patches, w) * 0.02)
        self.pre_post = nn.LayerNorm(w)
        self.resblocks = nn.ModuleList(CondBlock(w, cfg.dec_heads, cfg.mlp_ratio) for _ in range(cfg.dec_cond_blocks))
        self.final_block = nn.ModuleList(Block(w, cfg.dec_heads, cfg.mlp_ratio) for _ in range(cfg.dec_plain_blocks))
        self.lin_post = nn.LayerNorm(w)
        self.linear = nn.Linear(w, 3 * p * p)
        c, k, g = cfg.conv_channels, cfg.conv_kernel, cfg.conv_groups
        self.conv_in = nn.Conv2d(3, c, k, padding=k // 2)
        self.norm_in = nn.GroupNorm(g, c, eps=1e-6)
        self.resnet = ResnetBlock(c, g)
        self.norm_out = nn.GroupNorm(g, c, eps=1e-6)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """cond: [B, 36, Wd] (latents after StyledVQ.decoder_in) -> image [B, 3, S, S], unbounded."""
        b = cond.shape[0]
        n = self.positional_embedding.shape[0]
        x = self.pre_post(self.positional_embedding).unsqueeze(0).expand(b, -1, -1)
        for k, blk in enumerate(self.resblocks):
            x = blk(x, cond[:, 2 * k], cond[:, 2 * k + 1])
        for blk in self.final_block:
            x = blk(x)
        x = self.linear(self.lin_post(x[:, -n:]))  # [B, N, 3*P*P]
        g, p = self.grid, self.patch
        x = x.reshape(b, g, g, 3, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, 3, g * p, g * p)
        x = self.norm_in(self.conv_in(x))
        x = self.resnet(x)
        return self.conv_out(F.silu(self.norm_out(x)))
