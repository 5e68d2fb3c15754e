"""Export a model to a package directory (docs/model-package.md): four ONNX graphs,
model.json with sha256s and the fingerprint, and optionally a parity bundle with
PyTorch's outputs so that the Node side can prove it runs the same maths."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any

import numpy as np
import onnx
import torch

from .codebook import DequantizeGraph, QuantizeGraph
from .package_files import ROLES, fingerprint, prefix_fill_sha256, sha256_file  # noqa: F401 (re-exported)
from .model import DecoderGraph, EncoderGraph, StyledVQ

OPSET = 17
FORMAT = "styled-vq-model"
VERSION = 1
TWO_GB = 2 * 1024 ** 3


def preprocessing_spec(image_size: int) -> dict:
    return {
        "image_size": image_size,
        "resize": "adm-center-crop",
        "range": [-1, 1],
        "channels": "RGB",
        "exif_orientation": True,
        "alpha": "drop",
    }


def parameter_counts(model: StyledVQ) -> dict[str, int]:
    enc = dec = 0
    for name, p in model.named_parameters():
        if ".condition_linear." in name:
            continue  # in the research layout, never used by the forward pass
        if name.split(".")[0] in ("decoder", "decoder_in", "refiner") or name == "skip.dec":
            dec += p.numel()
        else:
            enc += p.numel()
    cb = model.codebook.embedding.numel() if model.codebook is not None else 0
    return {"encoder": enc, "decoder": dec, "codebook": cb}


def _consolidate_external_data(onnx_path: str, data_name: str, min_bytes: int = 1024) -> None:
    """Move every initializer of at least `min_bytes` into a single `<graph>.onnx.data`.

    torch writes one external file per tensor for graphs over 2 GB (and keeps smaller
    graphs inline): both are streamed into the one file, one tensor in memory at a time,
    4 KiB-aligned so that ONNX Runtime can memory-map it."""
    folder = os.path.dirname(onnx_path)
    proto = onnx.load(onnx_path, load_external_data=False)
    data_path = os.path.join(folder, data_name)
    moved = []
    with open(data_path + ".tmp", "wb") as out:
        for t in proto.graph.initializer:
            external = t.data_location == onnx.TensorProto.EXTERNAL
            if not external and len(t.raw_data) < min_bytes:
                continue
            out.write(b"\0" * ((-out.tell()) % 4096))
            offset = out.tell()
            if external:
                info = {e.key: e.value for e in t.external_data}
                src = os.path.join(folder, info["location"])
                with open(src, "rb") as f:
                    f.seek(int(info.get("offset", 0)))
                    remaining = int(info["length"]) if "length" in info else None
                    while remaining is None or remaining > 0:
                        chunk = f.read(1 << 24 if remaining is None else min(1 << 24, remaining))
                        if not chunk:
                            break
                        out.write(chunk)
                        if remaining is not None:
                            remaining -= len(chunk)
                moved.append(src)
            else:
                out.write(t.raw_data)
                t.ClearField("raw_data")
                t.data_location = onnx.TensorProto.EXTERNAL
            length = out.tell() - offset
            del t.external_data[:]
            for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
                e = t.external_data.add()
                e.key, e.value = k, v
    os.replace(data_path + ".tmp", data_path)
    onnx.save(proto, onnx_path)
    for src in set(moved):
        os.remove(src)


@contextlib.contextmanager
def _tracer_keeps_weights_uncloned(module: torch.nn.Module):
    """torch 1.13's tracer (torch.jit._trace.ONNXTracedModule) clones every input of the
    traced function, the module's weights included, only to warn afterwards about inputs
    changed in place. That doubles an export's peak memory (measured on a 2.2 GB model:
    2.41 -> 4.64 GB while tracing), which the seed-size model (9.5 GB) cannot afford on a
    24 GB machine. Inside this block, cloning a tensor that is one of the module's weights
    returns the weight itself (nothing in the forward pass clones or modifies weights)."""
    weights = {t.data_ptr() for t in module.state_dict(keep_vars=True).values()}
    clone = torch.Tensor.clone

    def clone_unless_weight(self, *args, **kwargs):
        return self if self.data_ptr() in weights else clone(self, *args, **kwargs)

    torch.Tensor.clone = clone_unless_weight
    try:
        yield
    finally:
        torch.Tensor.clone = clone


def _export(module: torch.nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], large: bool) -> dict:
    dynamic = {n: {0: "batch"} for n in inputs + outputs}
    if large:
        # torch writes external tensors next to the .onnx file: give it a scratch folder.
        scratch = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=".export-")
        tmp_onnx = os.path.join(scratch, os.path.basename(path))
        with _tracer_keeps_weights_uncloned(module):
            torch.onnx.export(module, args, tmp_onnx, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
        data_name = os.path.basename(path) + ".data"
        _consolidate_external_data(tmp_onnx, data_name)
        os.replace(tmp_onnx, path)
        os.replace(os.path.join(scratch, data_name), os.path.join(os.path.dirname(path), data_name))
        for leftover in os.listdir(scratch):
            os.remove(os.path.join(scratch, leftover))
        os.rmdir(scratch)
        onnx.checker.check_model(path)
        data = os.path.join(os.path.dirname(path), data_name)
        return {"path": os.path.basename(path), "sha256": sha256_file(path), "bytes": os.path.getsize(path),
                "data": {"path": data_name, "sha256": sha256_file(data), "bytes": os.path.getsize(data)}}
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs,
                      dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    return {"path": os.path.basename(path), "sha256": sha256_file(path), "bytes": os.path.getsize(path), "data": None}


def export_package(model: StyledVQ, out_dir: str, name: str, description: str = "",
                   training: dict | None = None, quality: dict | None = None,
                   parity_batch: int = 0, seed: int = 0, external_data: bool | None = None,
                   prefix_fill: tuple[str, np.ndarray] | None = None,
                   same_tokens_as: list[dict] | None = None) -> dict:
    """Write the package; returns the manifest. The model must have a codebook.
    external_data: None = only when the weights approach 2 GB (the protobuf limit).
    prefix_fill: (kind, float32 [T, D]): what positions after a prefix decode from
    ("zero", "mean_latent" or "learned"), written to model.json and the fingerprint.
    same_tokens_as: [{name, fingerprint}] of packages already checked to tokenize exactly as
    this model (training/same_tokens.py); written to model.json, not to the fingerprint."""
    if model.codebook is None:
        raise ValueError("the model has no codebook: run stage 2 (k-means) before exporting")
    cfg = model.cfg
    model = model.eval()
    os.makedirs(out_dir, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters())
    large = n_params * 4 > TWO_GB * 0.9 if external_data is None else external_data
    s, d, t = cfg.image_size, cfg.latent_dim, cfg.num_tokens
    # Trace with batch 2 so that no batch-1 shape gets baked into the graph.
    image = torch.rand(2, 3, s, s) * 2 - 1
    latents = torch.randn(2, t, d)
    ids = torch.randint(0, model.codebook.size, (2, t))
    files: dict[str, Any] = {}
    with torch.no_grad():
        files["encoder"] = _export(EncoderGraph(model), (image,), os.path.join(out_dir, "encoder.onnx"),
                                   ["image"], ["latents"], large)
        files["decoder"] = _export(DecoderGraph(model), (latents,), os.path.join(out_dir, "decoder.onnx"),
                                   ["latents"], ["image"], large)
        files["codebook"] = _export(QuantizeGraph(model.codebook), (latents,), os.path.join(out_dir, "codebook.onnx"),
                                    ["latents"], ["tokens"], False)
        files["dequantize"] = _export(DequantizeGraph(model.codebook), (ids,), os.path.join(out_dir, "dequantize.onnx"),
                                      ["tokens"], ["latents"], False)
    cb = model.codebook
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "description": description,
        "config": cfg.manifest_dict(),
        "preprocessing": preprocessing_spec(s),
        "codebook": {"size": cb.size, "dim": int(cb.embedding.shape[-1]), "metric": cb.metric,
                     **({"per_position": True} if cb.positions else {})},
        "files": files,
        "parameters": parameter_counts(model),
        "fingerprint": fingerprint(files, None if prefix_fill is None else prefix_fill[1]),
        "training": training or {},
        "quality": quality or {},
    }
    if prefix_fill is not None:
        kind, values = prefix_fill
        values = np.asarray(values, dtype=np.float32)
        if kind not in ("zero", "mean_latent", "learned") or values.shape != (t, d) or not np.isfinite(values).all():
            raise ValueError(f"prefix_fill must be (zero|mean_latent|learned, finite float32 [{t}, {d}])")
        manifest["prefix_fill"] = {"kind": kind, "values": values.tolist()}
    fp = manifest["fingerprint"]
    same = list({e["fingerprint"]: e for e in same_tokens_as or [] if e["fingerprint"] != fp}.values())
    if same:
        manifest["same_tokens_as"] = same
    if parity_batch:
        manifest_parity = write_parity_bundle(model, os.path.join(out_dir, "parity.json"), parity_batch, seed)
        manifest["parity"] = manifest_parity
    tmp = os.path.join(out_dir, "model.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "model.json"))
    return manifest


def _arr(t: torch.Tensor) -> dict:
    a = t.detach().cpu().numpy()
    return {"shape": list(a.shape), "dtype": str(a.dtype), "data": a.reshape(-1).tolist()}


def write_parity_bundle(model: StyledVQ, path: str, batch: int, seed: int = 0) -> dict:
    """Inputs and PyTorch outputs for every graph, for the Node-side parity test. The
    image is a smooth random field rather than white noise so that it resembles what the
    encoder sees in practice."""
    g = torch.Generator().manual_seed(seed)
    s = model.cfg.image_size
    coarse = torch.rand(batch, 3, 4, 4, generator=g) * 2 - 1
    image = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
    image = (image + 0.1 * torch.randn(batch, 3, s, s, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        latents = model.encode(image)
        decoded = model.decode(latents)
        tokens = model.codebook.quantize(latents)
        dequantized = model.codebook.dequantize(tokens)
    bundle = {"image": _arr(image), "latents": _arr(latents), "decoded": _arr(decoded),
              "tokens": _arr(tokens), "dequantized": _arr(dequantized)}
    with open(path + ".tmp", "w") as f:
        json.dump(bundle, f)
    os.replace(path + ".tmp", path)
    return {"path": os.path.basename(path), "batch": batch, "seed": seed}
