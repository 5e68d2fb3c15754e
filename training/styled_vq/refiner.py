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


def refiner_shape(sd: dict) -> tuple[int, int]:
    """(channels, blocks) of a Refiner state dict."""
    blocks = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    return int(sd["inp.weight"].shape[0]), blocks


def grow_refiner(prior: dict, channels: int, blocks: int, seed: int = 0) -> dict:
    """A Refiner(channels, blocks) state dict that computes exactly what `prior` (a smaller
    refiner's state dict) computes, so that compute spent on the small one is kept.

    Wider: the old channels never read the new ones (zero weights from new to old inputs,
    and from new channels to the output), while the new channels read everything with a
    fresh init, so their outgoing weights get gradients and they start to contribute.
    Deeper: new blocks are appended with their second convolution at zero (the identity)."""
    c0, b0 = refiner_shape(prior)
    if channels < c0 or blocks < b0:
        raise ValueError(f"a refiner of {c0} channels x {b0} blocks cannot shrink to {channels} x {blocks}")
    torch.manual_seed(seed)
    new = Refiner(channels, blocks).state_dict()
    for i in range(b0, blocks):
        new[f"body.{i}.b.weight"].zero_()
        new[f"body.{i}.b.bias"].zero_()
    for k, w in prior.items():
        t = new[k]
        if w.dim() == 4:                      # [out, in, 3, 3]
            o, i = w.shape[:2]
            t[:o, :i] = w
            t[:o, i:] = 0                     # old outputs do not read new channels
        else:
            t[:w.shape[0]] = w
    # The image comes out of the old channels only, until the new ones learn otherwise.
    new["out.weight"][:, c0:] = 0
    return new
