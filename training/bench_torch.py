#!/usr/bin/env python3
"""PyTorch side of the benchmark (`npm run bench` calls it; see BENCHMARKS.md).

Every measurement runs in its own process (the Node harness starts one per row) so that
the peak RSS it reports belongs to that measurement alone. Output: one JSON object on
stdout.

The weights come from the ONNX model package itself (no PyTorch checkpoint is needed, so
it works on a clean clone): `load_from_package` maps the graphs' initializers back onto
the PyTorch model's parameters. torch.onnx.export keeps a parameter's name as the
initializer name unless constant folding transformed it (Linear weights are folded into
transposed `onnx::MatMul_N` tensors, GroupNorm affines into [C,1,1] ones); those are found
through the node that consumes them, whose name carries the module scope
(`/encoder/blocks.0/mlp/c_fc/MatMul`; `/resblocks.0/mlp/c_fc/MatMul` in packages exported
before issue 14.5, which are read through checkpoint.legacy_name). `check` lets the harness prove that both sides hold the
same weights (ONNX Runtime's output on the same input).

  bench_torch.py gemm  --threads 2 [--size 2048]
  bench_torch.py run   --model DIR --graph encoder|decoder --batch 8 --threads 2 [--min-time 2]
  bench_torch.py run   --random seed --seed 0 --graph encoder --batch 1 --threads 2
  bench_torch.py check --model DIR --out FILE.json [--batch 2]
  bench_torch.py versions
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import onnx
from onnx.numpy_helper import to_array
import torch

from styled_vq.checkpoint import legacy_name  # noqa: E402
from styled_vq.config import ModelConfig  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402

# Parameters in the research layout that the forward pass never reads (so no graph has them).
UNUSED = (".condition_linear.",)


def _onnx_tensors(path: str):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(path)  # loads external data sitting beside the file
    tensors = {t.name: t for t in proto.graph.initializer}
    alias = {}
    for n in proto.graph.node:
        if n.op_type == "Identity" and n.input[0] in tensors:
            alias[n.output[0]] = n.input[0]
    consumers: dict[str, list] = {}
    for n in proto.graph.node:
        for i, name in enumerate(n.input):
            name = alias.get(name, name)
            if name in tensors:
                consumers.setdefault(name, []).append((n, i))
    return proto, tensors, alias, consumers, numpy_helper.to_array


def _scope(node_name: str) -> str:
    # "/decoder/resblocks.0/attn1/MatMul" -> "decoder.resblocks.0.attn1"
    parts = node_name.strip("/").split("/")
    return ".".join(parts[:-1])


def _gemm_trans_b(node) -> int:
    for a in node.attribute:
        if a.name == "transB":
            return a.i
    return 0


def _load_graph(path: str, prefix: str, params: dict[str, torch.Tensor]) -> set[str]:
    """Copy the graph's weights into `params` (full names without the wrapper prefix).
    Returns the names it set. Packages exported before issue 14.5 name initializers and
    scopes by the research names (`m.afer_progject.bias`, `/progject_mean/MatMul`): each
    parameter is looked for under its name and its checkpoint.legacy_name."""
    proto, tensors, alias, consumers, to_array = _onnx_tensors(path)
    done = set()
    unnamed = [k for k in tensors if not k.startswith(prefix)]
    for name, p in params.items():
        names = [name] if legacy_name(name) == name else [name, legacy_name(name)]
        keys = [alias.get(prefix + n, prefix + n) for n in names]
        key = next((k for k in keys if k in tensors), None)
        if key is not None:
            a = to_array(tensors[key])
            if a.size != p.numel():
                raise ValueError(f"{path}: {key} has shape {a.shape}, the model's {name} {tuple(p.shape)}")
            p.copy_(torch.from_numpy(a.copy()).reshape(p.shape))
            done.add(name)
            continue
        modules = {n.rpartition(".")[0] for n in names}
        is_bias = name.rpartition(".")[2].endswith("bias")
        found = []
        for k in unnamed:
            for node, idx in consumers.get(k, []):
                if _scope(node.name) not in modules:
                    continue
                a = to_array(tensors[k])
                if a.size != p.numel():
                    continue
                op = node.op_type
                if is_bias and (op == "Add" or (op in ("Gemm", "Conv") and idx == 2)):
                    found.append((k, a.reshape(p.shape)))
                elif not is_bias and op in ("MatMul", "Gemm", "Mul", "Expand", "Conv") and idx >= (1 if op != "Expand" else 0):
                    if op == "MatMul" or (op == "Gemm" and not _gemm_trans_b(node)):
                        if a.ndim == 2 and a.T.shape == tuple(p.shape):
                            found.append((k, a.T))
                    else:
                        found.append((k, a.reshape(p.shape)))
        keys = {k for k, _ in found}
        if len(keys) == 1:
            p.copy_(torch.from_numpy(np.array(found[0][1], dtype=np.float32)))
            done.add(name)
        elif len(keys) > 1:
            raise ValueError(f"{path}: {name} is ambiguous between {sorted(keys)}")
    return done


def _load_v2_leftovers(pkg: str, files: dict, model: StyledVQ) -> set[str]:
    """v2 (PCA skip) tensors that constant folding renamed: the encoder's projection is
    stored transposed ([F, T*D]), its gate * scale product as one [T, D] constant, the
    decoder keeps `m.skip.scale` by name, and the per-position codebook is the dequantize
    graph's one [T*K, D] table. Found by shape, each exactly once."""
    done = set()
    d = model.cfg.latent_dim
    enc = {tuple(x.dims): x for x in onnx.load(os.path.join(pkg, files["encoder"]["path"])).graph.initializer}
    dec = {x.name: x for x in onnx.load(os.path.join(pkg, files["decoder"]["path"])).graph.initializer}
    deq = list(onnx.load(os.path.join(pkg, files["dequantize"]["path"])).graph.initializer)
    n, f = model.skip.enc.shape  # n = T*D, or sum(token_dims) (v3: only used directions stored)
    if (f, n) in enc:
        model.skip.enc.copy_(torch.from_numpy(to_array(enc[(f, n)]).T.copy()))
        done.add("skip.enc")
    if "m.skip.scale" in dec:
        model.skip.scale.copy_(torch.from_numpy(to_array(dec["m.skip.scale"]).copy()))
        done.add("skip.scale")
    if len(deq) == 1 and model.codebook is not None and deq[0].dims[0] == model.codebook.embedding.numel() // d:
        model.codebook.embedding.copy_(torch.from_numpy(to_array(deq[0]).copy()).reshape(model.codebook.embedding.shape))
        done.add("embedding")
    return done


def decoder_tensor(name: str) -> bool:
    """Whether a StyledVQ state-dict entry lives in decoder.onnx (the rest: encoder, codebooks)."""
    return name.split(".")[0] in ("decoder", "decoder_in", "refiner") or name == "skip.dec"


def in_no_graph(name: str, model: StyledVQ) -> bool:
    """State-dict entries no exported graph holds: unused research layers, and for the PCA
    code alone the networks' whitening scale."""
    return any(u in name for u in UNUSED) or (name == "skip.scale" and not model.cfg.residual)


def load_from_package(pkg: str) -> StyledVQ:
    """Rebuild the PyTorch model of an ONNX package with the package's own weights."""
    with open(os.path.join(pkg, "model.json")) as f:
        manifest = json.load(f)
    cfg = ModelConfig.from_dict(manifest["config"])
    cb = manifest["codebook"]
    model = StyledVQ(cfg, codebook_size=cb["size"], codebook_metric=cb["metric"],
                     codebook_per_position=bool(cb.get("per_position"))).eval()
    files = manifest["files"]
    with torch.no_grad():
        state = dict(model.named_parameters())
        persistent = model.state_dict().keys()  # non-persistent buffers (skip.mask) are derived from the config
        state.update({n: b for n, b in model.named_buffers() if n in persistent})
        dec_names = {n for n in state if decoder_tensor(n)}
        enc = {n: t for n, t in state.items() if n not in dec_names and not n.startswith("codebook.")}
        dec = {n: t for n, t in state.items() if n in dec_names}
        done = _load_graph(os.path.join(pkg, files["encoder"]["path"]), "m.", enc)
        done |= _load_graph(os.path.join(pkg, files["decoder"]["path"]), "m.", dec)
        done |= _load_graph(os.path.join(pkg, files["dequantize"]["path"]), "cb.",
                            {"embedding": model.codebook.embedding})
        if model.skip is not None:
            done |= _load_v2_leftovers(pkg, files, model)
        missing = [n for n in state if n not in done and n != "codebook.embedding" and not in_no_graph(n, model)]
        if "embedding" not in done:
            missing.append("codebook.embedding")
        if missing:
            raise ValueError(f"{pkg}: no weights found in the graphs for {missing}")
    return model


def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random fields plus a little noise (as the parity bundle): image-like input."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=g) * 2 - 1
    img = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (img + 0.1 * torch.randn(batch, 3, size, size, generator=g)).clamp(-1, 1)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def time_it(fn, min_time: float, min_iters: int, max_iters: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or (time.perf_counter() - start < min_time and len(times) < max_iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def cmd_gemm(a) -> dict:
    torch.set_num_threads(a.threads)
    n = a.size
    torch.manual_seed(0)
    x, y = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    times = time_it(lambda: torch.mm(x, y, out=out), a.min_time, 3, 1000, 2)
    best = min(times)
    return {"what": "gemm", "framework": "pytorch", "size": n, "threads": a.threads,
            "median_s": statistics.median(times), "best_s": best,
            "gflops": 2 * n ** 3 / statistics.median(times) / 1e9, "gflops_best": 2 * n ** 3 / best / 1e9,
            "max_rss_mb": max_rss_mb()}


def build_random(preset_name: str, seed: int) -> StyledVQ:
    """The weights `training/export.py --random --preset P --seed S` exported: it seeds torch
    and builds the model first, so the same two steps give the same weights (the codebook,
    drawn afterwards, is not rebuilt: encode and decode do not use it). For models too big
    to hold twice in memory (the seed preset), where reading the ONNX initializers is not
    an option."""
    from styled_vq.config import preset

    torch.manual_seed(seed)
    return StyledVQ(preset(preset_name)).eval()


def cmd_run(a) -> dict:
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = build_random(a.random, a.seed) if a.random else load_from_package(a.model)
    load_s = time.perf_counter() - t0
    cfg = model.cfg
    device = torch.device(a.device)
    model = model.to(device)
    # bf16: autocast (matrix products and convolutions in bfloat16, normalisations and
    # softmax in float32), the usual way to run a float32 model in bf16 on a GPU.
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if a.dtype == "bf16"
                else contextlib.nullcontext())
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode(), autocast:
        if a.graph == "encoder":
            x = smooth_images(a.batch, cfg.image_size).to(device)
            step = lambda: model.encode(x)  # noqa: E731
        else:
            g = torch.Generator().manual_seed(1)
            x = torch.randn(a.batch, cfg.num_tokens, cfg.latent_dim, generator=g).to(device)
            step = lambda: model.decode(x)  # noqa: E731

        def fn():
            step()
            sync()  # a GPU call returns before the kernels finish: time them to the end

        times = time_it(fn, a.min_time, a.min_iters, a.max_iters, a.warmup)
    med = statistics.median(times)
    return {"what": "run", "framework": "pytorch", "graph": a.graph, "batch": a.batch, "threads": a.threads,
            "device": a.device, "dtype": a.dtype,
            "iters": len(times), "median_s": med, "min_s": min(times), "images_per_s": a.batch / med,
            "load_s": load_s, "max_rss_mb": max_rss_mb()}


def cmd_versions(a) -> dict:
    import platform

    import onnx

    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # load the BLAS
    blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and ".so" in line})
    return {"what": "versions", "python": platform.python_version(), "torch": torch.__version__,
            "onnx": onnx.__version__, "numpy": np.__version__, "blas": blas,
            "torch_parallel": torch.__config__.parallel_info().splitlines()[-1].strip()}


def cmd_check(a) -> dict:
    """Input and PyTorch outputs (for weights loaded from the package), for the harness to
    compare with ONNX Runtime's: proves both sides run the same weights."""
    model = build_random(a.random, a.seed) if a.random else load_from_package(a.model)
    cfg = model.cfg
    image = smooth_images(a.batch, cfg.image_size, seed=3)
    graphs = a.graphs.split(",")
    with torch.inference_mode():
        latents = model.encode(image)
        decoded = model.decode(latents) if "decoder" in graphs else None

    def arr(t):
        return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}

    out = {"image": arr(image), "latents": arr(latents)}
    if decoded is not None:
        out["decoded"] = arr(decoded)
    with open(a.out, "w") as f:
        json.dump(out, f)
    return {"what": "check", "out": a.out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gemm", help="float32 GEMM peak (torch.mm, OpenBLAS)")
    g.add_argument("--threads", type=int, required=True)
    g.add_argument("--size", type=int, default=2048)
    g.add_argument("--min-time", type=float, default=2.0)
    r = sub.add_parser("run", help="time encode or decode of one batch size")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="package directory: weights read from its ONNX graphs")
    src.add_argument("--random", metavar="PRESET", help="rebuild export.py --random's weights for this preset")
    r.add_argument("--seed", type=int, default=0, help="with --random: export.py's --seed")
    r.add_argument("--graph", choices=["encoder", "decoder"], required=True)
    r.add_argument("--batch", type=int, required=True)
    r.add_argument("--threads", type=int, required=True)
    r.add_argument("--min-time", type=float, default=2.0)
    r.add_argument("--min-iters", type=int, default=3)
    r.add_argument("--max-iters", type=int, default=10000)
    r.add_argument("--warmup", type=int, default=1)
    r.add_argument("--device", default="cpu", help="torch device: cpu or cuda (bench/gpu/)")
    r.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: torch.autocast")
    c = sub.add_parser("check", help="write input + outputs for the weight check")
    csrc = c.add_mutually_exclusive_group(required=True)
    csrc.add_argument("--model", help="package directory: weights read from its ONNX graphs")
    csrc.add_argument("--random", metavar="PRESET", help="rebuild export.py --random's weights for this preset")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--graphs", default="encoder,decoder", help="which outputs to write")
    c.add_argument("--out", required=True)
    c.add_argument("--batch", type=int, default=2)
    sub.add_parser("versions", help="Python, torch, onnx, numpy and BLAS versions")
    a = ap.parse_args(argv)
    out = {"gemm": cmd_gemm, "run": cmd_run, "check": cmd_check, "versions": cmd_versions}[a.cmd](a)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = ru.ru_utime + ru.ru_stime  # the harness compares it with the machine's busy time
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
