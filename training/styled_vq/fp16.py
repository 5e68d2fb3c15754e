"""The fp16 variant of a package (docs/model-package.md, "fp16 variant").

The encoder and decoder graphs are rewritten to compute in float16: every float32
initializer and constant becomes float16, float32 casts become float16 casts, and the
graph's float32 inputs and outputs stay float32 through a Cast at each end (so callers
feed and read the same tensors as with the fp32 graphs). The codebook and dequantize
graphs are not converted: the nearest-row search stays float32 so that a latent halfway
between two rows is decided as precisely as the hardware allows, and the variant shares
them with the fp32 package.

Ops named in `keep_fp32` run in float32 inside the fp16 graph (Casts around them), for
parts that prove numerically sensitive. The variant's fingerprint is the v1 fingerprint of
the package with the fp16 graphs in place of the fp32 ones, so tokens made with it never
pass for tokens of the fp32 graphs.

Only the onnx package is needed (no torch): `training/fp16.py PACKAGE` adds the variant to
an exported package, `training/export.py --fp16` exports it with the package.
"""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .package_files import fingerprint, sha256_file

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)
CONVERTED = ("encoder", "decoder")
VARIANT = "fp16"
TWO_GB = 2 * 1024 ** 3


def _half(t: TensorProto) -> TensorProto:
    a = numpy_helper.to_array(t)
    # Values beyond fp16's range would become inf; clipped instead (none in our models).
    h = np.clip(a, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(h, t.name)


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value that shape inference can type (float32 model)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types[v.name] = v.type.tensor_type.elem_type
    for t in inferred.graph.initializer:
        types[t.name] = t.data_type
    return types


def convert_graph(model: onnx.ModelProto, keep_fp32: tuple[str, ...] = ()) -> onnx.ModelProto:
    """A float16 copy of a float32 graph with float32 inputs and outputs."""
    types = _tensor_types(model) if keep_fp32 else {}
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    for n in g.node:
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ValueError(f"node {n.name} ({n.op_type}) has a subgraph; not supported")

    for i, t in enumerate(g.initializer):
        if t.data_type == FLOAT:
            g.initializer[i].CopyFrom(_half(t))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == FLOAT:
                a.t.CopyFrom(_half(a.t))
            elif n.op_type == "Cast" and a.name == "to" and a.i == FLOAT:
                a.i = FLOAT16
            elif a.name == "dtype" and a.i == FLOAT:
                a.i = FLOAT16
    del g.value_info[:]  # float32 types of intermediates; ONNX Runtime infers them again

    def rename_uses(old: str, new: str) -> None:
        for n in g.node:
            for k, name in enumerate(n.input):
                if name == old:
                    n.input[k] = new

    head, tail = [], []
    for v in g.input:
        if v.type.tensor_type.elem_type == FLOAT:
            rename_uses(v.name, v.name + "_fp16")
            head.append(helper.make_node("Cast", [v.name], [v.name + "_fp16"], to=FLOAT16, name=v.name + "_to_fp16"))
    for v in g.output:
        if v.type.tensor_type.elem_type == FLOAT:
            inner = v.name + "_fp16"
            for n in g.node:
                for k, name in enumerate(n.output):
                    if name == v.name:
                        n.output[k] = inner
            rename_uses(v.name, inner)
            tail.append(helper.make_node("Cast", [inner], [v.name], to=FLOAT, name=v.name + "_to_fp32"))

    nodes = []
    for n in g.node:
        if n.op_type not in keep_fp32:
            nodes.append(n)
            continue
        # Run this op in float32: cast its float inputs up and its float outputs back down.
        for k, name in enumerate(n.input):
            if name and types.get(name.removesuffix("_fp16")) == FLOAT:
                up = f"{n.name or n.op_type}_in{k}_fp32"
                nodes.append(helper.make_node("Cast", [name], [up], to=FLOAT, name=up))
                n.input[k] = up
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == FLOAT16:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32), a.t.name))
        downs = []
        for k, name in enumerate(n.output):
            if types.get(name.removesuffix("_fp16")) == FLOAT:
                raw = f"{n.name or n.op_type}_out{k}_fp32"
                downs.append(helper.make_node("Cast", [raw], [name], to=FLOAT16, name=raw + "_to_fp16"))
                n.output[k] = raw
        nodes.append(n)
        nodes.extend(downs)
    # Initializers read only by fp32 ops would now be cast up on every run; fine for the
    # few LayerNorm scales this is meant for.
    del g.node[:]
    g.node.extend(head + nodes + tail)
    onnx.checker.check_model(model)
    return model


def _entry(folder: str, path: str, data: str | None) -> dict:
    full = os.path.join(folder, path)
    entry = {"path": path, "sha256": sha256_file(full), "bytes": os.path.getsize(full), "data": None}
    if data:
        d = os.path.join(folder, data)
        entry["data"] = {"path": data, "sha256": sha256_file(d), "bytes": os.path.getsize(d)}
    return entry


def add_fp16_variant(package: str, keep_fp32: tuple[str, ...] = ()) -> dict:
    """Write `<role>.fp16.onnx` for the encoder and decoder of `package` and list them in
    its model.json under `variants.fp16` (files and fingerprint); returns the variant.
    The fp32 graphs, their entries and the package fingerprint are left as they were."""
    manifest_path = os.path.join(package, "model.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    files = dict(manifest["files"])
    variant_files = {}
    for role in CONVERTED:
        src = os.path.join(package, files[role]["path"])
        half = convert_graph(onnx.load(src), keep_fp32)
        name = os.path.splitext(files[role]["path"])[0] + ".fp16.onnx"
        out = os.path.join(package, name)
        large = half.ByteSize() > TWO_GB * 0.9
        data = name + ".data" if large else None
        for stale in (out, out + ".data"):
            if os.path.exists(stale):
                os.remove(stale)
        if large:
            onnx.save(half, out + ".tmp", save_as_external_data=True, all_tensors_to_one_file=True,
                      location=data, size_threshold=1024)
        else:
            onnx.save(half, out + ".tmp")
        os.replace(out + ".tmp", out)
        variant_files[role] = _entry(package, name, data)
    mixed = {**files, **variant_files}
    fill = manifest.get("prefix_fill")
    fill_values = None if fill is None else np.asarray(fill["values"], dtype=np.float32)
    variant = {
        "description": "encoder and decoder in float16 (float32 inputs and outputs); codebook and dequantize "
                       "shared with the float32 graphs",
        "files": variant_files,
        "keep_fp32": list(keep_fp32),
        "fingerprint": fingerprint(mixed, fill_values),
    }
    manifest.setdefault("variants", {})[VARIANT] = variant
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(manifest_path + ".tmp", manifest_path)
    return variant
