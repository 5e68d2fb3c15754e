"""The top-level model: encode / decode / tokenize, the export boundaries (TiTok-style)."""
from __future__ import annotations

import torch
from torch import nn

from .codebook import Codebook
from .config import ModelConfig
from .decoder import Decoder
from .encoder import Encoder, SoftAnchorHead
from .pca_skip import PCASkip
from .refiner import Refiner


class StyledVQ(nn.Module):
    def __init__(self, cfg: ModelConfig, codebook_size: int = 0, codebook_metric: str = "l2",
                 codebook_per_position: bool = False):
        super().__init__()
        self.cfg = cfg
        if cfg.residual:
            self.encoder = Encoder(cfg)
            if cfg.head == "soft_anchor":
                self.head = SoftAnchorHead(cfg.latent_dim)
            # Top level (not inside Decoder), before it: parameter order, hence the random
            # initialisation, the optimizer state of a .ckpt and clip_grad_norm's sum, stay
            # the research code's.
            self.decoder_in = nn.Linear(cfg.latent_dim, cfg.dec_width)
            self.decoder = Decoder(cfg)
        self.skip = (PCASkip(cfg.num_tokens, cfg.latent_dim, cfg.image_size, cfg.token_dims)
                     if cfg.skip == "pca" else None)
        if cfg.refiner_blocks:
            self.refiner = Refiner(cfg.refiner_channels, cfg.refiner_blocks)
        self.codebook = (Codebook(codebook_size, cfg.latent_dim, codebook_metric,
                                  positions=cfg.num_tokens if codebook_per_position else 0)
                         if codebook_size else None)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """image [B,3,S,S] in [-1,1] -> latents [B,36,D]."""
        if not self.cfg.residual:
            return self.skip.encode(image)
        mu = self.encoder(image)
        if self.skip is not None:
            # The network predicts a whitened residual on top of the PCA coefficients
            # (never in the unused slots of token_dims: those latents stay 0).
            return self.skip.encode(image) + self.cfg.skip_gate * self.skip.scale * self.skip.mask * mu
        if self.cfg.head == "soft_anchor":
            return self.head(mu)
        if self.training and self.cfg.noise_std > 0:
            return mu + self.cfg.noise_std * torch.randn_like(mu)
        return mu

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [B,36,D] -> image [B,3,S,S] (unbounded)."""
        if not self.cfg.residual:
            image = self.skip.decode(latents)
            return self.refiner(image) if self.cfg.refiner_blocks else image
        if self.skip is not None:
            net = self.decoder(self.decoder_in(latents / self.skip.scale))
            return self.skip.decode(latents) + net
        return self.decoder(self.decoder_in(latents))

    def tokenize(self, image):
        return self.codebook.quantize(self.encode(image))

    def decode_tokens(self, ids):
        return self.decode(self.codebook.dequantize(ids))

    def forward(self, image):
        return self.decode(self.encode(image))


class EncoderGraph(nn.Module):
    def __init__(self, m: StyledVQ):
        super().__init__()
        self.m = m

    def forward(self, image):
        return self.m.encode(image)


class DecoderGraph(nn.Module):
    def __init__(self, m: StyledVQ):
        super().__init__()
        self.m = m

    def forward(self, latents):
        return self.m.decode(latents)
