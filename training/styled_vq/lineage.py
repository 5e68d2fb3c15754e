"""Where a refined package's tokens come from: the package a refiner was trained on (from
train_refiner.py's log) and how that package's tokens were made (model.json's training
block, followed through earlier refinements). Read by package_meta.py and the model card."""
from __future__ import annotations

import json
import os


def base_package_info(log: list[dict]) -> dict | None:
    """The package a refiner was trained on (its tokens), from the 'base' record, or for an
    older log from model.json in the folder the run was given."""
    base = [r for r in log if r["kind"] == "base"]
    if base:
        return base[0].get("package")
    src = next(r for r in log if r["kind"] == "args")["final"]
    if os.path.isdir(src):
        with open(os.path.join(src, "model.json")) as f:
            m = json.load(f)
        return {"name": m["name"], "fingerprint": m["fingerprint"], "training": m.get("training", {})}
    return None


def tokens_training(pkg_training: dict) -> dict:
    """How a package's tokens were made: its own block, or for a refined package the one it
    holds under "tokens" (already the original block: each refinement copies it along)."""
    return pkg_training["tokens"]["training"] if "tokens" in pkg_training else pkg_training
