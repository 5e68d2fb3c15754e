"""`same_tokens_as` in model.json (docs/model-package.md): earlier packages whose token ids
this package reads exactly as they wrote them. A refiner retrained on a package changes only
decoder.onnx, so token files made with the earlier package decode with the new one without
--force; export.py lists a package there only after this check passes.

Same tokens means: the same encoder weights, codebooks and config (bit for bit, as rebuilt
from the other package's ONNX initializers), the same prefix fill, and, as a last guard, the
same ids for a batch of image-like inputs. The graphs' bytes are not compared: a newer
exporter may write the same weights into a differently laid-out file.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from bench_torch import decoder_tensor, in_no_graph, load_from_package, smooth_images
from styled_vq.model import StyledVQ

DECODER_CONFIG = ("refiner_channels", "refiner_blocks")


def token_tensors(model: StyledVQ) -> dict[str, torch.Tensor]:
    """The state-dict entries that decide token ids: what encoder.onnx and the codebook
    graphs carry."""
    return {n: t for n, t in model.state_dict().items() if not decoder_tensor(n) and not in_no_graph(n, model)}


def token_config(model: StyledVQ) -> dict:
    cfg = {k: v for k, v in model.cfg.manifest_dict().items() if k not in DECODER_CONFIG}
    cb = model.codebook
    return {**cfg, "codebook": (cb.size, cb.metric, bool(cb.positions))}


def names(items) -> str:
    items = sorted(items)
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")


def differences(model: StyledVQ, fill: np.ndarray | None, other: StyledVQ, other_fill: np.ndarray | None) -> list[str]:
    out = []
    if token_config(model) != token_config(other):
        a, b = token_config(model), token_config(other)
        out.append("config " + names(k for k in set(a) | set(b) if a.get(k) != b.get(k)))
    a, b = token_tensors(model), token_tensors(other)
    if set(a) != set(b):
        out.append("tensors " + names(set(a) ^ set(b)))
    elif differ := [n for n in a if a[n].shape != b[n].shape or not torch.equal(a[n], b[n])]:
        out.append("weights " + names(differ))
    if (fill is None) != (other_fill is None) or (fill is not None and not np.array_equal(fill, other_fill)):
        out.append("prefix fill")
    if not out:
        x = smooth_images(64, model.cfg.image_size, seed=7)
        with torch.no_grad():
            if not torch.equal(model.tokenize(x), other.tokenize(x)):
                out.append("token ids of test images")
    return out


def same_tokens_entries(model: StyledVQ, fill: np.ndarray | None, pkg: str) -> list[dict]:
    """[{name, fingerprint}] of `pkg` and of the packages it lists itself; ValueError naming
    what differs when its tokens are not the model's."""
    with open(os.path.join(pkg, "model.json")) as f:
        manifest = json.load(f)
    other = load_from_package(pkg).eval()
    other_fill = manifest.get("prefix_fill")
    other_fill = None if other_fill is None else np.asarray(other_fill["values"], dtype=np.float32)
    diff = differences(model.eval(), None if fill is None else np.asarray(fill, dtype=np.float32), other, other_fill)
    if diff:
        raise ValueError(f"{pkg}: its tokens are not this model's (differ: {'; '.join(diff)})")
    return [{"name": manifest["name"], "fingerprint": manifest["fingerprint"]}, *manifest.get("same_tokens_as", [])]
