#!/usr/bin/env python3
"""Dynamic int8 variant of an ONNX graph, for the benchmark's variants section.

There is no Python onnxruntime here (so no onnxruntime.quantization): this does by hand
what its `quantize_dynamic` does for MatMul. Every MatMul whose second input is a constant
weight becomes ONNX Runtime's `com.microsoft.DynamicQuantizeMatMul`: the activations are
quantized to uint8 per tensor at run time, the weights are int8, symmetric, one scale per
output column (per expert and column, shape [E, 1, N], for the stacked [E, K, N] expert
weights when --experts is given).
Convolutions, attention products (activation x activation) and everything else stay
float32.

  /usr/bin/python3 bench/quantize.py IN.onnx OUT.onnx [--experts]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric per output column (last axis). Returns (q, scale)."""
    amax = np.abs(w).max(axis=-2)  # [.., N]
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[..., None, :]), -127, 127).astype(np.int8)
    return q, scale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--experts", action="store_true", help="also quantize the stacked expert weights (3-D)")
    ap.add_argument("--min-size", type=int, default=0, help="leave weights with fewer elements in float32")
    ap.add_argument("--only", help="quantize only MatMuls whose node name matches this regex")
    ap.add_argument("--skip", help="leave MatMuls whose node name matches this regex in float32")
    a = ap.parse_args(argv)

    model = onnx.load(a.src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    alias = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity" and n.input[0] in inits}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    new_nodes = []
    new_inits = []
    done = 0
    dropped = set()
    for n in g.node:
        w_name = alias.get(n.input[1], n.input[1]) if n.op_type == "MatMul" else None
        if w_name is None or w_name not in inits:
            new_nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[w_name])
        if (w.ndim not in (2, 3) or (w.ndim == 3 and not a.experts) or w.size < a.min_size
                or (a.only and not re.search(a.only, n.name)) or (a.skip and re.search(a.skip, n.name))):
            new_nodes.append(n)
            continue
        q, scale = quantize_weight(w)
        if w.ndim == 3:
            scale = scale[:, None, :]  # [E, 1, N]: one scale per expert and column
        base = n.name.strip("/").replace("/", "_") or f"mm{done}"
        qn, sn, zn = f"{base}_Wq", f"{base}_Wscale", f"{base}_Wzp"
        new_inits += [numpy_helper.from_array(q, qn), numpy_helper.from_array(scale, sn),
                      numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), zn)]
        new_nodes.append(helper.make_node("DynamicQuantizeMatMul", [n.input[0], qn, sn, zn], list(n.output),
                                          name=n.name + "_int8", domain="com.microsoft"))
        uses[n.input[1]] -= 1
        if uses[n.input[1]] == 0:
            dropped.add(w_name)
        done += 1
    del g.node[:]
    g.node.extend(new_nodes)
    keep = [t for t in g.initializer if t.name not in dropped or any(t.name == alias.get(k) and uses.get(k, 0) for k in alias)]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    # Identity nodes that fed dropped weights now feed nothing: drop them too.
    live = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    nodes = [n for n in g.node if not (n.op_type == "Identity" and n.output[0] not in live)]
    del g.node[:]
    g.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    os.makedirs(os.path.dirname(os.path.abspath(a.dst)), exist_ok=True)
    onnx.save(model, a.dst)
    print(json.dumps({"src": a.src, "dst": a.dst, "quantized_matmuls": done,
                      "bytes_before": os.path.getsize(a.src), "bytes_after": os.path.getsize(a.dst)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
