"""Model configuration: every size of docs/architecture.md is a field here.

Only the loader and the top-level model read this object; the small modules take
explicit arguments.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 256
    patch_size: int = 16
    num_tokens: int = 36
    latent_dim: int = 128
    # encoder
    enc_width: int = 1024
    enc_heads: int = 16
    enc_dense_blocks: int = 18
    enc_expert_blocks: int = 6
    # "soft_anchor": the V2 head of the research model; "noise": the first research
    # version, which adds Gaussian noise (noise_std) to mu during stage-1 training instead.
    head: str = "soft_anchor"
    noise_std: float = 0.0
    # decoder
    dec_width: int = 768
    dec_heads: int = 12
    dec_cond_blocks: int = 18
    dec_plain_blocks: int = 6
    mlp_ratio: int = 4
    conv_channels: int = 32
    conv_kernel: int = 17
    conv_groups: int = 8
    # "pca": the v2 design (docs/architecture.md): latents = a PCA projection of the image
    # plus a gated network residual, and the decoder adds its output to the PCA
    # reconstruction. PCA is the optimal ordered linear code (nested dropout on a linear
    # autoencoder recovers it), so the tokens are ordered from the first step on.
    skip: str = "none"
    skip_gate: float = 0.1
    # PCA design only. token_dims: how many of a token's latent_dim slots hold principal
    # directions (each 1..latent_dim; None: all). Token j takes the next token_dims[j]
    # directions, so a token holding few high-variance directions spends its 12 bits on
    # them (reverse water-filling, styled_vq/allocation.py); unused slots are always 0.
    # residual: False drops both networks, leaving the PCA code alone.
    token_dims: tuple | None = None
    residual: bool = True
    # residual: False only. refiner_blocks > 0 adds a small convolutional refiner after the
    # PCA decode (styled_vq/refiner.py), trained on quantized tokens by train_refiner.py.
    refiner_channels: int = 64
    refiner_blocks: int = 0

    def __post_init__(self):
        # The network sizes are checked only where there are networks: the PCA code alone
        # (residual: false) leaves them at their defaults (manifest_dict omits them).
        if self.residual and self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.residual and self.dec_cond_blocks * 2 != self.num_tokens:
            raise ValueError(f"{self.dec_cond_blocks} conditional blocks consume {2 * self.dec_cond_blocks} tokens, not {self.num_tokens}")
        if self.enc_width % self.enc_heads or self.dec_width % self.dec_heads:
            raise ValueError("widths must be multiples of their head counts")
        if self.head not in ("soft_anchor", "noise"):
            raise ValueError(f"head must be 'soft_anchor' or 'noise', not {self.head!r}")
        if self.skip not in ("none", "pca"):
            raise ValueError(f"skip must be 'none' or 'pca', not {self.skip!r}")
        if self.skip == "pca" and self.residual and self.head != "noise":
            raise ValueError("the PCA skip path needs the linear 'noise' head (the soft-anchor head LayerNorms latents)")
        if self.token_dims is not None:
            if self.skip != "pca":
                raise ValueError("token_dims needs the PCA skip path (skip: 'pca')")
            if len(self.token_dims) != self.num_tokens or not all(1 <= d <= self.latent_dim for d in self.token_dims):
                raise ValueError(f"token_dims must be {self.num_tokens} numbers in 1..{self.latent_dim}")
        if self.refiner_blocks and self.residual:
            raise ValueError("the refiner belongs to the PCA code alone (residual: false)")
        if not self.residual and self.skip != "pca":
            raise ValueError("residual: false needs the PCA skip path (skip: 'pca')")
        if self.conv_kernel % 2 == 0:
            raise ValueError("conv_kernel must be odd ('same' padding)")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def manifest_dict(self) -> dict:
        """model.json's config: everything, except that the PCA code alone (residual: false)
        lists only the fields it uses, so that `styled-vq info` does not show the sizes of
        networks the model does not have (from_dict fills the rest back with defaults)."""
        d = self.to_dict()
        if self.residual:
            return d
        keep = ["image_size", "num_tokens", "latent_dim", "skip", "token_dims", "residual"]
        if self.refiner_blocks:
            keep += ["refiner_channels", "refiner_blocks"]
        return {k: d[k] for k in keep}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if d.get("token_dims") is not None:
            d = {**d, "token_dims": tuple(int(x) for x in d["token_dims"])}
        return cls(**d)


PRESETS: dict[str, ModelConfig] = {
    # The research model (2.37 B parameters).
    "seed": ModelConfig(),
    # The research code's parity fixture (shared/reference/parity/README.md).
    "parity": ModelConfig(enc_width=64, enc_heads=4, dec_width=64, dec_heads=1),
    # The random-weight package committed for the TypeScript tests (a few MB).
    "tiny": ModelConfig(
        image_size=64, patch_size=8, latent_dim=16,
        enc_width=32, enc_heads=2, enc_dense_blocks=2, enc_expert_blocks=1,
        dec_width=32, dec_heads=1, dec_plain_blocks=1, conv_kernel=5,
    ),
    # Seed depth at narrow width, for benchmarks (random weights).
    "seed-narrow": ModelConfig(enc_width=256, enc_heads=4, dec_width=192, dec_heads=3),
    # The 64 px calibration model (36 M parameters).
    "cal64": ModelConfig(
        image_size=64, patch_size=8, latent_dim=16,
        enc_width=192, enc_heads=3, enc_dense_blocks=4, enc_expert_blocks=2,
        dec_width=192, dec_heads=3, dec_plain_blocks=2, conv_kernel=17,
    ),
    # Default model trained on this 2-core machine. Measured (1 thread, batch 64, fwd+bwd):
    # patch 8 -> 18.6 img/s, patch 16 -> 64 img/s at the same widths, and 32 conv channels
    # instead of 16 cost 3x at 64 px, so: patch 16 (4x4 grid), narrow decoder, 16-channel
    # conv head with a 5x5 input kernel, latent dim 8 (easier to k-means).
    "small64": ModelConfig(
        image_size=64, patch_size=16, latent_dim=8,
        enc_width=128, enc_heads=2, enc_dense_blocks=4, enc_expert_blocks=2,
        dec_width=64, dec_heads=1, dec_plain_blocks=2,
        conv_channels=16, conv_groups=4, conv_kernel=5,
    ),
    # v2 default (issue 9): PCA skip path, decoder wider than before (decoder >= encoder,
    # as in tokenizers that reconstruct well), patch 8. Trained on a GPU from the first
    # step; per-position codebooks.
    "skip64": ModelConfig(
        image_size=64, patch_size=8, latent_dim=8,
        enc_width=96, enc_heads=2, enc_dense_blocks=4, enc_expert_blocks=1,
        dec_width=192, dec_heads=3, dec_plain_blocks=2,
        conv_channels=32, conv_groups=8, conv_kernel=5,
        head="noise", noise_std=0.0, skip="pca", skip_gate=0.1,
    ),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
