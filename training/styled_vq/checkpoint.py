"""Conversion between our module layout and the research checkpoint layout, and loading.

Research layout (shared/reference/seed-checkpoint-layout.tsv) differs from ours in four
places: the names in RENAMES (the research code's, typos included: the encoder sits at
top level, the latent->width Linear is `afer_progject`), the soft-anchor head's parameters
sit at top level (`V2`, `ln_cosin.*`), the 36 experts of each expert block are separate
`layers.i.c_fc/c_proj` Linears (we stack and pre-transpose them), and the codebook is
`quantize.embedding.weight`.

Our model used the research names (RENAMES' right column) until issue 14.5: checkpoints
(final.pt, stage*.pt, *.ckpt) and ONNX packages (styled-vq-skip64) from before then carry
them. `ours_names` / `legacy_name` translate those (bench_torch.load_from_package too).
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from .config import ModelConfig, preset
from .model import StyledVQ

# (our name, the research checkpoint's = our model's before issue 14.5); a name matches an
# entry when it equals it or continues it with "." (prefixes of whole components).
RENAMES: tuple[tuple[str, str], ...] = (
    ("encoder.patch_embed", "patch_embed"),
    ("encoder.class_embedding", "class_embedding"),
    ("encoder.positional_embedding", "positional_embedding"),
    ("encoder.query_embedding", "query_embedding"),
    ("encoder.ln_pre", "ln_ecoder_1"),
    ("encoder.blocks", "resblocks"),
    ("encoder.expert_blocks", "resblocks_exper"),
    ("encoder.ln_post", "ln_before_project_"),
    ("encoder.to_latent", "progject_mean"),
    ("decoder_in", "afer_progject"),
    ("decoder.conv_in", "decoder.cov"),
    ("decoder.resnet", "decoder.ResnetBlock"),
)


def _rename(name: str, pairs) -> str:
    for src, dst in pairs:
        if name == src or name.startswith(src + "."):
            return dst + name[len(src):]
    return name


def legacy_name(name: str) -> str:
    """Our parameter name -> the research / pre-14.5 name (unchanged if not renamed)."""
    return _rename(name, RENAMES)


def our_name(name: str) -> str:
    """Research / pre-14.5 name -> ours. Our own names pass unchanged (none starts with a
    legacy name), so this is safe on any checkpoint of either age."""
    return _rename(name, [(b, a) for a, b in RENAMES])


def ours_names(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of our layout saved before or after issue 14.5 -> today's names."""
    return {our_name(k): v for k, v in sd.items()}


_EXPERT = re.compile(r"^(resblocks_exper\.\d+)\.experts_(fc|proj)_(weight|bias)$")
_RESEARCH_EXPERT = re.compile(r"^(resblocks_exper\.\d+)\.layers\.(\d+)\.c_(fc|proj)\.(weight|bias)$")


def to_research(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        k = legacy_name(k)
        m = _EXPERT.match(k)
        if m:
            block, layer, kind = m.groups()
            for i in range(v.shape[0]):
                t = v[i].t() if kind == "weight" else v[i].reshape(-1)
                out[f"{block}.layers.{i}.c_{layer}.{kind}"] = t
        elif k.startswith("head."):
            out[k[len("head."):]] = v
        elif k == "codebook.embedding":
            out["quantize.embedding.weight"] = v
        else:
            out[k] = v
    return out


def from_research(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    out: dict[str, torch.Tensor] = {}
    experts: dict[tuple[str, str, str], dict[int, torch.Tensor]] = {}
    for k, v in sd.items():
        m = _RESEARCH_EXPERT.match(k)
        if m:
            block, i, layer, kind = m.groups()
            experts.setdefault((block, layer, kind), {})[int(i)] = v
        elif k == "V2" or k.startswith("ln_cosin."):
            out["head." + k] = v
        elif k == "quantize.embedding.weight":
            out["codebook.embedding"] = v
        else:
            out[k] = v
    for (block, layer, kind), parts in experts.items():
        if sorted(parts) != list(range(len(parts))):
            raise ValueError(f"{block}: expert indices are not 0..{len(parts) - 1}")
        ts = [parts[i] for i in range(len(parts))]
        stacked = torch.stack([t.t() for t in ts]) if kind == "weight" else torch.stack(ts).unsqueeze(1)
        out[f"{block}.experts_{layer}_{kind}"] = stacked
    return ours_names(out)


def is_research_layout(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(_RESEARCH_EXPERT.match(k.removeprefix("module.")) or k.removeprefix("module.") == "V2" for k in sd)


def load_model(path: str, config: ModelConfig | str | None = None, codebook_metric: str = "l2") -> StyledVQ:
    """Load our own checkpoint ({'config', 'model', ...}) or a research state dict
    (optionally under 'state_dict'/'model', optionally with `module.` prefixes and a
    `quantize.embedding.weight` codebook). Research checkpoints carry no config: pass one
    (a ModelConfig or a preset name; default 'seed')."""
    ckpt = torch.load(path, map_location="cpu")
    if isinstance(ckpt, dict) and "config" in ckpt and "model" in ckpt:
        cfg = ModelConfig.from_dict(ckpt["config"])
        sd = ckpt["model"]
        metric = ckpt.get("codebook_metric", codebook_metric)
    else:
        sd = ckpt
        if isinstance(ckpt, dict):
            for key in ("state_dict", "model"):
                if key in ckpt and isinstance(ckpt[key], dict):
                    sd = ckpt[key]
        cfg = preset(config) if isinstance(config, str) else (config or preset("seed"))
        metric = codebook_metric
    return model_from_state_dict(sd, cfg, metric)


def model_from_state_dict(sd: Mapping[str, torch.Tensor], cfg: ModelConfig, codebook_metric: str = "l2") -> StyledVQ:
    sd = from_research(sd) if is_research_layout(sd) else ours_names(sd)
    cb = sd.get("codebook.embedding")
    model = StyledVQ(cfg, codebook_size=0 if cb is None else cb.shape[-2], codebook_metric=codebook_metric,
                     codebook_per_position=cb is not None and cb.dim() == 3)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or missing:
        raise ValueError(f"checkpoint does not fit config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model
