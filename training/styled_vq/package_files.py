"""Hashes and fingerprint of a model package (docs/model-package.md, "Fingerprint").
Needs no torch, so that training/fp16.py runs with the onnx package alone."""
from __future__ import annotations

import hashlib

import numpy as np

ROLES = ("codebook", "decoder", "dequantize", "encoder")  # fingerprint order


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prefix_fill_sha256(values: np.ndarray) -> str:
    """sha256 of the fill as little-endian float32, row-major (T*D*4 bytes)."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def fingerprint(files: dict[str, dict], prefix_fill: np.ndarray | None = None) -> str:
    """docs/model-package.md, "Fingerprint": the graphs' hashes, plus the prefix fill when
    the package has one (it changes what a prefix decodes to). Packages without a fill keep
    the v1 text, so their fingerprints never change."""
    lines = ["styled-vq-fingerprint-v1"]
    for role in ROLES:
        entry = files[role]
        digest = entry["sha256"] + ("+" + entry["data"]["sha256"] if entry.get("data") else "")
        lines.append(f"{role} {digest}")
    if prefix_fill is not None:
        lines.append(f"prefix_fill {prefix_fill_sha256(prefix_fill)}")
    return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()[:16]
