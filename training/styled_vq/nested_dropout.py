"""Nested dropout over the token sequence (as ordered 1D tokenizers such as FlexTok
train): for a random subset of the batch, keep only the first k latents and replace the
rest with a neutral latent, so the decoder must make the best image from any prefix and
the encoder learns to put what matters most first. The neutral latent is the running
per-position mean latent (detached), the same stand-in the prefix evaluation uses."""
from __future__ import annotations

import torch

PREFIX_CHOICES = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class NestedDropout(torch.nn.Module):
    def __init__(self, num_tokens: int, dim: int, prob: float, momentum: float = 0.01):
        super().__init__()
        self.prob, self.momentum = prob, momentum
        self.register_buffer("neutral", torch.zeros(num_tokens, dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _update(self, z: torch.Tensor) -> None:
        mean = z.mean(0)
        if not bool(self.initialised):
            self.neutral.copy_(mean)
            self.initialised.fill_(True)
        else:
            self.neutral.lerp_(mean, self.momentum)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.prob <= 0:
            return z
        self._update(z.detach())
        b, t, _ = z.shape
        chosen = torch.rand(b, generator=generator) < self.prob
        choices = torch.tensor(PREFIX_CHOICES)
        k = choices[torch.randint(len(choices), (b,), generator=generator)]
        k = torch.where(chosen, k, torch.full_like(k, t))
        keep = (torch.arange(t).unsqueeze(0) < k.unsqueeze(1)).unsqueeze(-1)  # [B, T, 1]
        return torch.where(keep, z, self.neutral.unsqueeze(0).expand_as(z))
