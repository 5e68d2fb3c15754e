"""Building blocks of the encoder and decoder, with the research checkpoint's names.

All tensors are batch-first [B, L, W] inside our model (the research code is
sequence-first); attention has no mask and no positional term, so the two are the same
maths. Attention is written out rather than using nn.MultiheadAttention so that the
exported ONNX graph is a plain MatMul/Softmax chain that ONNX Runtime fuses well; the
parameter names (`in_proj_weight`, `in_proj_bias`, `out_proj`) match nn.MultiheadAttention.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        hd = w // self.heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # Scale q before the product, as torch's multi_head_attention_forward does.
        q = q * (1.0 / math.sqrt(hd))
        attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, w)
        return self.out_proj(out)


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))  # exact (erf) GELU


class Block(nn.Module):
    """Dense pre-LN transformer block."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, width * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class ExpertBlock(nn.Module):
    """Attention over all tokens, then the shared `mlp` for the image/class tokens and one
    expert MLP per query token.

    The research checkpoint stores expert i as `layers.i.c_fc` / `layers.i.c_proj`. Here
    the 36 experts are held stacked and pre-transposed ([E, W, 4W] and [E, 4W, W]) so that
    each layer is one batched MatMul in ONNX instead of 36 small ones: identical maths.
    checkpoint.py converts between the two layouts.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: int, num_experts: int):
        super().__init__()
        hidden = width * mlp_ratio
        self.num_experts = num_experts
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, hidden)
        self.experts_fc_weight = nn.Parameter(torch.empty(num_experts, width, hidden))
        self.experts_fc_bias = nn.Parameter(torch.zeros(num_experts, 1, hidden))
        self.experts_proj_weight = nn.Parameter(torch.empty(num_experts, hidden, width))
        self.experts_proj_bias = nn.Parameter(torch.zeros(num_experts, 1, width))
        # Same distribution as nn.Linear's default init, per expert.
        for w, fan_in in ((self.experts_fc_weight, width), (self.experts_proj_weight, hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        h = self.ln_2(x)
        e = self.num_experts
        shared = self.mlp(h[:, :-e])
        q = h[:, -e:].transpose(0, 1)  # [E, B, W]
        q = F.gelu(q @ self.experts_fc_weight + self.experts_fc_bias)
        q = (q @ self.experts_proj_weight + self.experts_proj_bias).transpose(0, 1)
        return x + torch.cat([shared, q], dim=1)


class AdaLN(nn.Module):
    """alpha * LN(x) + beta with (alpha, beta) = Linear(SiLU(e)); no "1 +" (research)."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.linear = nn.Linear(width, 2 * width)
        # Because there is no "1 +", start at alpha = 1, beta = 0 so the block passes
        # its input through at initialisation.
        with torch.no_grad():
            self.linear.weight.mul_(0.1)
            self.linear.bias.zero_()
            self.linear.bias[:width] = 1.0

    def forward(self, x, e):
        alpha, beta = self.linear(F.silu(e)).chunk(2, dim=-1)
        return alpha.unsqueeze(1) * self.norm(x) + beta.unsqueeze(1)


class CondBlock(nn.Module):
    """Decoder block k: consumes the condition pair (a, b) = (c_2k, c_2k+1) and grows the
    sequence by two placeholder tokens (prepended; see docs/architecture.md)."""

    EPS = 1e-6

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        eps = self.EPS
        self.attn1 = Attention(width, heads)
        self.condition_linear = nn.Linear(width, width)  # in the research checkpoint, unused
        self.mlp = Mlp(width, width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.ln_11 = nn.LayerNorm(width, eps=eps)
        self.ln_22 = nn.LayerNorm(width, eps=eps)
        self.norm1 = AdaLN(width, eps)
        self.norm2 = AdaLN(width, eps)

    def forward(self, x, a, b):
        h = self.norm1(x, self.ln_1(a))
        zeros = torch.zeros_like(x[:, :2])
        x = torch.cat([zeros, x], dim=1)
        h = torch.cat([self.ln_11(a).unsqueeze(1), self.ln_22(b).unsqueeze(1), h], dim=1)
        x = x + self.attn1(h)
        return x + self.mlp(self.norm2(x, self.ln_2(b)))


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels, eps=1e-6)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, channels, eps=1e-6)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))
