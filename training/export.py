#!/usr/bin/env python3
"""Export a checkpoint (ours or a research one) to a styled-vq model package.

Examples:
  # the trained default model
  python3 -m training.export --checkpoint runs/small64/stage2.pt --out models/small64 --name styled-vq-small64
  # a research checkpoint (no config inside: name the preset)
  python3 -m training.export --checkpoint seed.pth --preset seed --out /tmp/seed-pkg --name seed
  # random weights (the test fixture, benchmarks)
  python3 -m training.export --random --preset tiny --codebook-size 1024 --out test/fixtures/model-tiny --name fixture-tiny --parity-batch 2 --prefix-fill mean
  # a refiner retrained on the shipped package: its token files keep decoding (checked)
  python3 -m training.export --checkpoint RUN/final.pt --out models/NEW --name NEW --same-tokens-as models/OLD
  # with the fp16 variant (`--dtype fp16`; or add it later with python3 -m training.fp16)
  python3 -m training.export --random --preset tiny --out /tmp/tiny16 --name tiny16 --fp16
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from styled_vq.checkpoint import load_model  # noqa: E402
from styled_vq.config import PRESETS, preset  # noqa: E402
from styled_vq.export import export_package  # noqa: E402
from styled_vq.fp16 import add_fp16_variant  # noqa: E402
from styled_vq.model import StyledVQ  # noqa: E402


def random_codebook(model: StyledVQ, size: int, seed: int) -> None:
    """For random-weight packages: codebook rows drawn from latents of smooth random
    images, so that token ids vary with the image as they would with a trained model."""
    g = torch.Generator().manual_seed(seed)
    s = model.cfg.image_size
    rows = []
    with torch.no_grad():
        while sum(r.shape[0] for r in rows) < size:
            coarse = torch.rand(8, 3, 4, 4, generator=g) * 2 - 1
            img = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
            rows.append(model.encode(img).reshape(-1, model.cfg.latent_dim))
    lat = torch.cat(rows)[:size]
    model.codebook.embedding.copy_(lat + 0.05 * lat.std() * torch.randn(lat.shape, generator=g))


@torch.no_grad()
def mean_latent(model: StyledVQ, seed: int, n: int = 64) -> torch.Tensor:
    """Per-position mean latent of smooth random images: a stand-in prefix fill for
    random-weight packages (test fixtures), where no training data defines one."""
    g = torch.Generator().manual_seed(seed + 1)
    s = model.cfg.image_size
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    img = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
    return model.encode(img).mean(0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="our checkpoint (with config) or a research state dict")
    src.add_argument("--random", action="store_true", help="random weights (needs --preset)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="config for --random or for a research checkpoint")
    ap.add_argument("--codebook-size", type=int, default=1024, help="--random only")
    ap.add_argument("--metric", choices=["l2", "cosine"], default="l2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--parity-batch", type=int, default=0, help="also write parity.json with this batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--meta", help="JSON file whose 'training' and 'quality' go into model.json")
    ap.add_argument("--prefix-fill", choices=["auto", "zero", "mean", "none"], default="auto",
                    help="what decodes after a token prefix (model.json prefix_fill): 'auto' = the checkpoint's own "
                         "(train_v2.py writes it), 'zero', 'mean' = the mean latent of smooth random images, 'none'")
    ap.add_argument("--same-tokens-as", action="append", default=[], metavar="PACKAGE",
                    help="an earlier package with this model's encoder, codebooks and prefix fill (a refiner "
                         "retrained on it): checked, then listed in model.json so that its token files decode "
                         "with the new package without --force (repeatable; its own list is inherited)")
    ap.add_argument("--fp16", action="store_true",
                    help="also write the fp16 variant (encoder.fp16.onnx, decoder.fp16.onnx; training/fp16.py)")
    a = ap.parse_args(argv)

    t0 = time.time()
    torch.manual_seed(a.seed)
    if a.random:
        if not a.preset:
            ap.error("--random needs --preset")
        model = StyledVQ(preset(a.preset), codebook_size=a.codebook_size, codebook_metric=a.metric).eval()
        random_codebook(model, a.codebook_size, a.seed)
        training = {"weights": "random", "preset": a.preset, "seed": a.seed}
    else:
        model = load_model(a.checkpoint, a.preset, a.metric).eval()
        training = {"checkpoint": os.path.basename(a.checkpoint)}
    quality = {}
    if a.meta:
        with open(a.meta) as f:
            meta = json.load(f)
        training.update(meta.get("training", {}))
        quality = meta.get("quality", {})
    fill = None
    if a.prefix_fill == "zero":
        fill = ("zero", torch.zeros(model.cfg.num_tokens, model.cfg.latent_dim).numpy())
    elif a.prefix_fill == "mean":
        fill = ("mean_latent", mean_latent(model, a.seed).numpy())
    elif a.checkpoint and a.prefix_fill == "auto":
        ck = torch.load(a.checkpoint, map_location="cpu")
        if isinstance(ck, dict) and ck.get("prefix_fill") is not None:
            fill = (ck["prefix_fill"]["kind"], ck["prefix_fill"]["values"].float().numpy())
    same = []
    if a.same_tokens_as:
        from same_tokens import same_tokens_entries  # reads ONNX graphs: only when asked
    for pkg in a.same_tokens_as:
        try:
            same += same_tokens_entries(model, None if fill is None else fill[1], pkg)
        except (ValueError, OSError) as e:
            raise SystemExit(f"--same-tokens-as {e}") from None
    manifest = export_package(model, a.out, a.name, a.description, training, quality, a.parity_batch, a.seed,
                              prefix_fill=fill, same_tokens_as=same)
    if a.fp16:
        manifest["variants"] = {"fp16": add_fp16_variant(a.out)}
    sizes = {k: v["bytes"] + (v["data"]["bytes"] if v["data"] else 0) for k, v in manifest["files"].items()}
    print(json.dumps({"out": a.out, "fingerprint": manifest["fingerprint"], "bytes": sizes,
                      "parameters": manifest["parameters"], "seconds": round(time.time() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
