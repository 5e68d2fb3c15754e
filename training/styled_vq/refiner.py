"""A small convolutional refiner after the PCA decode (config `refiner`).

image = r(mean + P^T latents),   r(x) = x + net(x)

The PCA code decodes a quantized token sequence to the conditional mean *within each
token's directions*; what the 36 ids say jointly about edges and texture, and about the
directions no token holds, needs a non-linear decoder. The net works at half resolution
(space-to-depth 2x: 12 channels of 32 x 32), so a few residual blocks see ~40 px for
~0.3 GMAC per image, and its last convolution starts at zero: an untrained refiner is the
identity, the PCA code's reconstruction exactly.
"""
from __future__ import annotations

import torch
from torch import nn


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] -> [B,4C,H/2,W/2] (reshape/permute: exports to ONNX at any opset)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def depth_to_space(x: torch.Tensor) -> torch.Tensor:
    """The inverse of space_to_depth."""
    b, c4, h, w = x.shape
    c = c4 // 4
    x = x.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c, h * 2, w * 2)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class Refiner(nn.Module):
    def __init__(self, channels: int = 64, blocks: int = 4):
        super().__init__()
        self.inp = nn.Conv2d(12, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.out = nn.Conv2d(channels, 12, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(torch.relu(self.inp(space_to_depth(x))))
        return x + depth_to_space(self.out(torch.relu(y)))
