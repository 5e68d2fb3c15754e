"""The PCA skip path of the v2 model (config `skip: "pca"`).

latents = P (x - mean) + gate * scale * net(x),   image = mean + P^T latents + decoder(latents / scale)

P holds the first T*D principal directions of the training crops (orthonormal rows), so
token j holds the coefficients of directions 8j..8j+7: ordered by variance by
construction, and L2 in latent space is L2 in pixels within that subspace (what the
per-position k-means needs). `scale` is the per-coefficient standard deviation: the
networks see whitened numbers while the latents keep the pixel metric. Nested dropout
fills dropped positions with 0, i.e. the mean image's coefficients.

Both projections are trainable (at a small learning rate), starting from PCA.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def fit_pca(images: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """images [N,3,S,S] in [-1,1] (any device) -> (mean [F], components [k,F], std [k]).

    Randomized SVD (Halko et al.) of the centred data with 64 extra directions and 4 power
    iterations: the top few hundred directions of natural images come out to float32
    accuracy, in seconds on a GPU and about a minute on 2 CPU cores (an exact eigh of the
    12288 x 12288 covariance takes far longer on a CPU)."""
    n = images.shape[0]
    if n < k + 64:
        raise ValueError(f"PCA of {k} directions needs at least {k + 64} images, got {n}")
    x = images.reshape(n, -1).float()
    mean = x.mean(0)
    torch.manual_seed(seed)
    _, s, v = torch.svd_lowrank(x - mean, q=k + 64, niter=4)
    comps = v[:, :k].t().contiguous()
    # Fix the sign of each direction (SVD's sign is arbitrary): largest entry positive.
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * signs
    std = (s[:k] / n ** 0.5).clamp_min(1e-6)
    return mean, comps, std


class PCASkip(nn.Module):
    """enc/dec hold one row per principal direction. Without token_dims every slot of the
    [T, D] latent holds one (n = T*D rows, the v2 layout). With token_dims, token j holds
    token_dims[j] directions and its other slots are always 0: only the n = sum(token_dims)
    used rows are stored, and a constant 0/1 matrix `place` [n, T*D] puts them in their
    slots (a MatMul in the ONNX graph; storing zero rows would double the package)."""

    def __init__(self, num_tokens: int, dim: int, image_size: int, token_dims=None):
        super().__init__()
        f = 3 * image_size * image_size
        self.t, self.d, self.s = num_tokens, dim, image_size
        dims = list(token_dims) if token_dims else [dim] * num_tokens
        mask = (torch.arange(dim)[None] < torch.tensor(dims)[:, None]).float()
        n = int(mask.sum())
        self.mean = nn.Parameter(torch.zeros(f))
        self.enc = nn.Parameter(torch.zeros(n, f))
        self.dec = nn.Parameter(torch.zeros(n, f))
        self.register_buffer("scale", torch.ones(num_tokens, dim))
        # Derived from the config, not weights: not in the state dict.
        self.register_buffer("mask", mask, persistent=False)
        if token_dims:
            place = torch.zeros(n, num_tokens * dim)
            place[torch.arange(n), torch.nonzero(mask.reshape(-1)).squeeze(1)] = 1.0
            self.register_buffer("place", place, persistent=False)
        else:
            self.place = None

    @torch.no_grad()
    def init_from(self, mean: torch.Tensor, comps: torch.Tensor, std: torch.Tensor) -> None:
        """comps [n, F] and std [n] for the n stored directions, in order (token by token)."""
        n = self.enc.shape[0]
        if comps.shape[0] != n:
            raise ValueError(f"{n} directions needed, got {comps.shape[0]}")
        self.mean.copy_(mean)
        self.enc.copy_(comps)
        self.dec.copy_(comps)
        scale = torch.ones(self.t * self.d)
        scale[torch.nonzero(self.mask.reshape(-1)).squeeze(1)] = std.to(scale)
        self.scale.copy_(scale.reshape(self.t, self.d))

    def coefficients(self, image: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """image [B,3,S,S] -> its coefficients on the stored directions [B, n] (or on the
        directions `rows`), in order, before they are placed in token slots."""
        return (image.reshape(image.shape[0], -1) - self.mean) @ self.enc[rows].t()

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        y = self.coefficients(image)
        if self.place is not None:
            y = y @ self.place
        return y.reshape(-1, self.t, self.d)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.reshape(latents.shape[0], -1)
        if self.place is not None:
            z = z @ self.place.t()
        x = z @ self.dec + self.mean
        return x.reshape(-1, 3, self.s, self.s)


def small_lr_params(model: nn.Module) -> list[nn.Parameter]:
    """The skip path's parameters: trained at a fraction of the network's learning rate
    (they start at the optimum linear code; a full-size step would wreck it)."""
    return [p for n, p in model.named_parameters() if n.startswith("skip.")]


def pca_from_array(arr: np.ndarray, k: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 [N,S,S,3] crops -> fit_pca on [-1,1] float images."""
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return fit_pca(x, k)
