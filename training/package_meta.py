#!/usr/bin/env python3
"""The `training` and `quality` blocks of model.json (export.py --meta) from a run's
log.jsonl and evaluate.py outputs, so no number in a package is typed by hand.

  /usr/bin/python3 training/package_meta.py --log RUN/log.jsonl --eval val=RUN/eval-val \\
      --eval photos=RUN/eval-photos --eval holdout=RUN/eval-holdout --hardware "2-core Xeon" --out RUN/meta.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from styled_vq.lineage import base_package_info, tokens_training  # noqa: E402


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def training_block(log: list[dict], hardware: str) -> dict:
    first = lambda kind: next((r for r in log if r["kind"] == kind), None)  # noqa: E731
    args = first("args")
    if args.get("trainer") == "train_pca_code":
        al, lat, km = first("allocation"), first("latents"), first("kmeans_done")
        return {"checkpoint": "final.pt", "script": "training/train_pca_code.py", "hardware": hardware,
                "torch": args["torch"], "token_dims": al["token_dims"],
                "kmeans": {"latents": lat["count"], "iterations": args["kmeans_iters"],
                           "augmentation_rounds": args["aug_rounds"]},
                "seconds": round(al["seconds"] + lat["seconds"] + km["seconds"], 1),
                "codebook": f"per-position k-means, {args['codebook_size']} x 36"}
    if args.get("trainer") == "train_refiner":
        return refiner_training_block(log, hardware)
    s1, s2 = first("stage1_done"), first("stage2_done")
    return {"checkpoint": "final.pt", "script": "training/train_v2.py", "hardware": hardware, "torch": args["torch"],
            "stage1": {k: s1[k] for k in ("steps", "images", "seconds")},
            "stage2": {k: s2[k] for k in ("steps", "images", "seconds")},
            "batch": args["batch"], "nested_dropout": args["nested"],
            "codebook": f"per-position k-means, {args['codebook_size']} x 36"}


def refiner_training_block(log: list[dict], hardware: str) -> dict:
    """train_refiner.py: the tokens' package (name, fingerprint, how it was made) and the
    refiner's own budget; images and hours add up over packages it continued from."""
    args = next(r for r in log if r["kind"] == "args")
    saved = [r for r in log if r["kind"] == "saved"][-1]
    base = base_package_info(log) or {}
    init = [r for r in log if r["kind"] == "init_refiner"]
    prior = base.get("training", {}).get("refiner", {}) if init else {}
    grown = {"grown_from": init[0]["grown_from"]} if init and init[0].get("grown_from") else {}
    tokens = {"name": base.get("name"), "fingerprint": base.get("fingerprint"),
              "training": tokens_training(base.get("training", {}))}
    return {"checkpoint": "final.pt", "script": "training/train_refiner.py", "tokens": tokens,
            "refiner": {"hardware": hardware, "torch": args["torch"], "channels": args["channels"],
                        "blocks": args["blocks"], "batch": args["batch"], "nested_dropout": args["nested"],
                        "steps": saved["step"], "images": saved["images"], "seconds": round(saved["seconds"], 1),
                        "images_total": prior.get("images_total", 0) + saved["images"],
                        "seconds_total": round(prior.get("seconds_total", 0) + saved["seconds"], 1), **grown}}


def quality_block(ev: dict) -> dict:
    q, curve = ev["quality"], ev["prefix_curve"]
    return {"images": ev["data"]["images"],
            "quantized_psnr": q["quantized"]["psnr"], "quantized_ssim": q["quantized"]["ssim"],
            "continuous_psnr": q["continuous"]["psnr"], "thumbnail_psnr": q["thumbnail"]["psnr"],
            "mean_colour_psnr": q["mean_colour"]["psnr"],
            "prefix_k": curve["k"], "prefix_quantized_psnr": curve["quantized"]["psnr"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", required=True)
    ap.add_argument("--eval", action="append", default=[], metavar="SET=DIR")
    ap.add_argument("--hardware", required=True, help="what the run ran on, in words")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    quality = {}
    for spec in a.eval:
        name, folder = spec.split("=", 1)
        with open(os.path.join(folder, "evaluation.json")) as f:
            quality[name] = quality_block(json.load(f))
    meta = {"training": training_block(read_jsonl(a.log), a.hardware), "quality": quality}
    with open(a.out, "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
