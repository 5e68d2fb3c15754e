#!/usr/bin/env python3
"""Write MODEL_CARD.md for a v2 (train_v2.py) or v3 (train_pca_code.py) package from structured records only: the
run's log.jsonl, one evaluation.json per evaluation set (training/evaluate.py --final),
and the package's model.json. No log text is parsed. Copies each set's prefix curve and
reconstruction grid into the package as <set>_prefix_curve.png / <set>_reconstructions.png.

  /usr/bin/python3 training/make_model_card_v2.py --package models/styled-vq-pca64 \\
      --log RUN/log.jsonl --eval val=RUN/eval-val --eval photos=RUN/eval-photos --eval holdout=RUN/eval-holdout \\
      --notes training/cards/pca64-notes.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys

from styled_vq.evaluation import requirements  # noqa: E402
from styled_vq.lineage import base_package_info, tokens_training  # noqa: E402

SET_TITLES = {
    "val": "validation split (1,373 crops of the training packages' held-out source files)",
    "photos": "real photos from Debian packages that are not training packages (training/data/photos/)",
    "holdout": "held-out real photos (lxqt-themes wallpapers; never looked at while training or choosing settings)",
}


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, spec=".2f") -> str:
    return "–" if v is None else format(v, spec)


def records(log: list[dict], kind: str) -> list[dict]:
    return [r for r in log if r["kind"] == kind]


def trainer(log: list[dict]) -> str:
    return records(log, "args")[0].get("trainer", "train_v2")


def pca_code_training_section(log: list[dict]) -> list[str]:
    """train_pca_code.py: PCA, the allocation of directions to tokens, k-means; no SGD."""
    args = records(log, "args")[0]
    al = records(log, "allocation")[0]
    lat = records(log, "latents")[0]
    km = records(log, "kmeans_done")[0]
    bound = al["variance_removed_bound"]
    total = al["variance_total"]
    c = km["val_quantized"]
    cc = km["val_continuous"]
    return [
        "## Training",
        "",
        f"One run of `training/train_pca_code.py` on CPU (torch {args['torch']}, {args['threads'] or 'all'} "
        "thread(s)); no gradient steps:",
        "",
        "| phase | what | seconds |",
        "|---|---|---:|",
        f"| PCA + allocation | randomized SVD of the training crops and their mirror images; token_dims by reverse "
        f"water-filling at 12 bits per token, at most {args['max_dim']} directions per token, at least "
        f"{args['min_first_dims']} in the first | {al['seconds']:.0f} |",
        f"| latents | {lat['count']:,} training latents: crops, mirrors and {args['aug_rounds']} rounds of random "
        f"resized crops (75-100 % of the side) of the 128 px crops | {lat['seconds']:.0f} |",
        f"| k-means | {args['codebook_size']} codes per position (36 tables), {args['kmeans_iters']} Lloyd iterations | "
        f"{km['seconds']:.0f} |",
        "",
        f"Directions per token (`token_dims`, {al['directions']} in all): {', '.join(map(str, al['token_dims']))}.",
        "",
        f"Gaussian rate-distortion bound on the training spectrum (variance removed of {total:.0f}, pixel units "
        f"in [-1, 1]): this allocation {bound['chosen']:.0f}, 8 directions per token (v2's layout) "
        f"{bound['uniform']:.0f}.",
        "",
        f"Validation at the end of the run (full split): quantized k = 1 / 8 / 36: {c['1']['psnr']:.2f} / "
        f"{c['8']['psnr']:.2f} / {c['36']['psnr']:.2f} dB; continuous k = 36: {cc['36']['psnr']:.2f} dB.",
        "",
    ]


def pca_code_design(cfg: dict) -> list[str]:
    refiner = bool(cfg.get("refiner_blocks"))
    return [
        "## Design (v3: the PCA code, bits where the variance is" + (", and a learned refiner)" if refiner else ")"),
        "",
        "- **latents = P (image − mean)**, **image = mean + Pᵀ latents**" + (" (then the refiner below)" if refiner else "")
        + ": P holds principal directions of the training crops" + ("" if refiner else ", no networks")
        + " (config `residual: false`). PCA is the optimal ordered linear code (nested "
        "dropout on a linear autoencoder recovers it), so tokens are ordered coarse to fine by construction.",
        "- **Bits where the variance is**: token j holds the next `token_dims[j]` principal directions. Every "
        "token costs 12 bits, so early tokens hold few high-variance directions and late tokens many "
        "low-variance ones (reverse water-filling on the spectrum, `styled_vq/allocation.py`); unused slots of "
        "the [36, latent_dim] latents are always 0.",
        "- **Per-position codebooks**: one table of 4096 codes for each of the 36 positions "
        "(`codebook.per_position` in model.json). Ids stay in [0, 4096); an id means a different vector at "
        "each position, which autoregressive models see through their position embeddings.",
        "- **Prefix fill**: positions after k are decoded from 0 (the mean image's coefficients), stored as "
        "`prefix_fill` in model.json (docs/model-package.md).",
    ]


def refiner_design(cfg: dict) -> list[str]:
    return [
        f"- **Refiner**: image = r(mean + Pᵀ latents), r(x) = x + a small CNN ({cfg['refiner_blocks']} residual blocks "
        f"of {cfg['refiner_channels']} channels at half resolution, `styled_vq/refiner.py`), trained on dequantized "
        "tokens with nested dropout (`training/train_refiner.py`); the tokens are the PCA code's, unchanged.",
    ]


def base_package_section(pkg: dict) -> list[str]:
    """The Training section of a refined package whose tokens come from an earlier package
    (its run directory is gone; model.json's training block says how it was made)."""
    t = pkg.get("training", {})
    t = tokens_training(t)  # a refined package: how its tokens were made
    km = t.get("kmeans", {})
    return [
        "## Training",
        "",
        f"Tokens: the PCA code and codebooks of `{pkg['name']}` (fingerprint `{pkg['fingerprint']}`), unchanged: one "
        f"run of `{t.get('script', 'training/train_pca_code.py')}` on {t.get('hardware', '?')} in "
        f"{t.get('seconds', 0):.0f} s, no gradient steps (per-position k-means, {km.get('iterations', '?')} Lloyd "
        f"iterations on {km.get('latents', 0):,} latents with {km.get('augmentation_rounds', '?')} augmentation rounds); "
        f"its model card is in git history. Directions per token: {', '.join(map(str, t.get('token_dims', [])))}.",
        "",
    ]


def refiner_training_section(log: list[dict]) -> list[str]:
    """train_refiner.py: the decoder's training curve on the validation split."""
    args = records(log, "args")[0]
    data = records(log, "data")
    base = records(log, "baseline")[0]["val"]
    evals = records(log, "eval")
    saved = records(log, "saved")[-1]
    sittings = len(records(log, "args"))
    init = records(log, "init_refiner")
    ks = list(base)
    cont = all("val_continuous" in e for e in records(log, "baseline") + init + evals)
    start = init[0]["val"] if init else base
    grown = init[0].get("grown_from") if init else None
    lines = [
        "### Refiner (`training/train_refiner.py`)",
        "",
        f"{saved['step']:,} steps of batch {args['batch']} ({saved['images']:,} images, {saved['seconds'] / 3600:.2f} h "
        f"wall-clock in {sittings} sitting(s), {args['device'].upper()}"
        f"{', bf16 autocast' if args['device'] == 'cpu' and not args['no_bf16'] else ''}, {args['threads'] or 'all'} "
        f"thread(s)), AdamW lr {args['lr']} with cosine decay over the budget, EMA {args['ema']}, nested dropout on "
        f"{args['nested']:.0%} of the samples"
        + (f"; {data[0]['images']:,} training images (crops, mirrors, {data[0]['aug_rounds']} rounds of random resized "
           "crops), tokenized once" if data else "") + ".",
        "",
        "Validation PSNR (dB) of the EMA weights during training"
        + (f" (first {args['val_limit']} crops)" if args.get("val_limit") else "") + ", quantized tokens"
        + (" (and the decode of the unquantized latents: the quantization cost at k = 36)" if cont else "") + ":",
        "",
        "| images seen | hours | " + " | ".join(f"k = {k}" for k in ks) + (" | continuous | cost |" if cont else " |"),
        "|---:|---:|" + "---:|" * (len(ks) + 2 * cont),
    ]

    def row(label: str, hours: str, r: dict) -> str:
        q = r["val"]
        extra = f" | {r['val_continuous']:.2f} | {r['val_continuous'] - q[ks[-1]]:.2f}" if cont else ""
        return f"| {label} | {hours} | " + " | ".join(f"{q[k]:.2f}" for k in ks) + extra + " |"

    lines.append(row("0 (PCA decode)", "0", records(log, "baseline")[0]))
    if init:
        what = f"the package's refiner, grown from {grown[0]} x {grown[1]} (same output)" if grown else "the package's refiner"
        lines.append(row(f"0 ({what})", "0", {**init[0], "val": start}))
    lines += [row(f"{e['images']:,}", f"{e['seconds'] / 3600:.2f}", e) for e in evals]
    return lines + [""]


def training_section(log: list[dict]) -> list[str]:
    if trainer(log) == "train_pca_code":
        return pca_code_training_section(log)
    args = records(log, "args")[0]
    model = records(log, "model")[0]
    s1 = records(log, "stage1_done")[0]
    s2 = records(log, "stage2_done")[0]
    km = records(log, "kmeans_done")[0]
    rate1 = [r["img_s"] for r in records(log, "stage1")]
    lines = [
        "## Training",
        "",
        f"One run of `training/train_v2.py` on one {args.get('gpu') or 'CPU'} (torch {args['torch']}, bf16 autocast, "
        f"batch {args['batch']}), from scratch: the skip path starts at the PCA of the training crops, both network "
        "outputs start at zero, so step 0 is the PCA code.",
        "",
        "| phase | what | steps | images seen | seconds |",
        "|---|---|---:|---:|---:|",
        f"| stage 1 | encoder + decoder on continuous latents, nested dropout {args['nested']} (dropped positions = 0), "
        f"lr {args['lr']}, EMA {args['ema']} | {s1['steps']} | {s1['images']:,} | {s1['seconds']:.0f} |",
        f"| k-means | {args['codebook_size']} codes per position (36 tables), {args['kmeans_iters']} Lloyd iterations on "
        f"the EMA encoder's training latents | – | – | {km['seconds']:.0f} |",
        f"| stage 2 | quantization-aware: straight-through, commitment {args['commit']}, EMA codebook "
        f"(decay {args['cb_decay']}), nested dropout kept, lr {args['lr2']} | {s2['steps']} | {s2['images']:,} | "
        f"{s2['seconds']:.0f} |",
        "",
        f"Parameters: {model['parameters']:,} (without the codebook). Throughput: median "
        f"{sorted(rate1)[len(rate1) // 2]:.0f} img/s in stage 1.",
        "",
        "Learning curve (validation, EMA weights, first 512 crops during training; full split at the ends):",
        "",
        "| point | k = 1 | k = 8 | k = 36 |",
        "|---|---:|---:|---:|",
    ]
    pca = records(log, "pca_only")[0]["val_continuous"]
    lines.append(f"| PCA only (step 0, continuous, full split) | {pca['1']['psnr']:.2f} | {pca['8']['psnr']:.2f} | "
                 f"{pca['36']['psnr']:.2f} |")
    for r in records(log, "stage1_val"):
        c = r["curve"]
        lines.append(f"| stage 1 step {r['step']} (continuous) | {c['1']['psnr']:.2f} | {c['8']['psnr']:.2f} | "
                     f"{c['36']['psnr']:.2f} |")
    c = s1["val_continuous"]
    lines.append(f"| stage 1 end (continuous, full split) | {c['1']['psnr']:.2f} | {c['8']['psnr']:.2f} | "
                 f"{c['36']['psnr']:.2f} |")
    c = km["val_quantized"]
    lines.append(f"| after k-means (quantized, full split) | {c['1']['psnr']:.2f} | {c['8']['psnr']:.2f} | "
                 f"{c['36']['psnr']:.2f} |")
    for r in records(log, "stage2_val"):
        c = r["curve"]
        lines.append(f"| stage 2 step {r['step']} (quantized) | {c['1']['psnr']:.2f} | {c['8']['psnr']:.2f} | "
                     f"{c['36']['psnr']:.2f} |")
    c = s2["val_quantized"]
    lines.append(f"| stage 2 end (quantized, full split) | {c['1']['psnr']:.2f} | {c['8']['psnr']:.2f} | "
                 f"{c['36']['psnr']:.2f} |")
    lines += ["", "(The GPU run evaluates on the JPEG-packed validation crops it carried; the tables below are "
              "measured here on the exact crops.)", ""]
    return lines


def eval_section(name: str, ev: dict, continuous_floats: str) -> list[str]:
    q, curve = ev["quality"], ev["prefix_curve"]
    usage = ev.get("codebook_usage")
    if usage is not None and "per_position_codebooks" in usage and "train" not in usage:
        usage = None  # 36 x K per-position codes: judged on training crops only (evaluate.py)
    reqs = requirements(q, usage, curve)  # recomputed from the numbers, never a stored verdict
    b = ev["bit_budget"]
    n = b["thumbnail_side"]
    lines = [
        f"## Quality: {SET_TITLES.get(name, name)}",
        "",
        f"{ev['data']['images']} images of 64 px; `{ev['command']}`",
        "",
        "| model | bits per image | PSNR (dB) | SSIM |",
        "|---|---|---:|---:|",
        f"| continuous latents (same decoder, no quantization) | {continuous_floats} | {q['continuous']['psnr']:.2f} | "
        f"{q['continuous']['ssim']:.4f} |",
        f"| **quantized: 36 tokens** | {b['bits']:.0f} | **{q['quantized']['psnr']:.2f}** | "
        f"**{q['quantized']['ssim']:.4f}** |",
        f"| mean colour | 24 | {q['mean_colour']['psnr']:.2f} | {q['mean_colour']['ssim']:.4f} |",
        f"| {n}×{n} thumbnail, bicubic upscale | {n * n * 24} | {q['thumbnail']['psnr']:.2f} | "
        f"{q['thumbnail']['ssim']:.4f} |",
        "",
        f"Quantized − thumbnail: **{q['gap_to_thumbnail_db']:+.2f} dB**; quantized − mean colour: "
        f"{q['gap_to_mean_colour_db']:+.2f} dB; quantization cost (continuous − quantized): "
        f"{q['quantization_cost_db']:.2f} dB.",
        "",
        "Prefix curve (the first k tokens kept, the rest replaced by the package's prefix fill):",
        "",
        "| k | " + " | ".join(str(k) for k in curve["k"]) + " |",
        "|---|" + "---:|" * len(curve["k"]),
        "| quantized PSNR | " + " | ".join(f"{v:.2f}" for v in curve["quantized"]["psnr"]) + " |",
        "| continuous PSNR | " + " | ".join(f"{v:.2f}" for v in curve["continuous"]["psnr"]) + " |",
        "",
        f"![prefix curve, {name}]({name}_prefix_curve.png)",
        "",
        f"Rows: original | continuous | quantized | {n}×{n} thumbnail (3× nearest-neighbour):",
        "",
        f"![reconstructions, {name}]({name}_reconstructions.png)",
        "",
        "Requirements (computed from the numbers by `styled_vq.evaluation.requirements`):",
        "",
    ]
    for r in reqs:
        verdict = "n/a" if r["passed"] is None else ("PASS" if r["passed"] else "**FAIL**")
        lines.append(f"- [{'x' if r['passed'] else ' '}] {verdict}: {r['name']} (measured {fmt(r['value'], '.3f')}, "
                     f"threshold {r['op']} {r['threshold']})")
    u = ev.get("codebook_usage") or {}
    if u.get("train"):
        t = u["train"]
        lines += ["", f"Codebook usage over {t['images']} training crops: {t['used']:,} of {t['codes']:,} "
                      f"(position, code) pairs ({100 * t['used_fraction']:.1f} %), mean per-position perplexity "
                      f"{t['perplexity_per_position_mean']:.0f}."]
    lines.append("")
    return lines


def v2_design(cfg: dict, p: dict, size: int, manifest: dict) -> list[str]:
    return [
        "## Design (v2)",
        "",
        "- **latents = PCA(image) + gated network residual**; **image = PCA⁻¹(latents) + decoder(latents)**. "
        "Token j holds the coefficients of principal directions 8j..8j+7 of the training crops (both projections "
        "trainable from there), so the order is coarse-to-fine by construction, and nested dropout trains the "
        "networks to make the best image from any prefix.",
        "- **Per-position codebooks**: one table of 4096 codes for each of the 36 positions "
        "(`codebook.per_position` in model.json). Ids stay in [0, 4096); an id means a different vector at "
        "each position, which autoregressive models see through their position embeddings.",
        "- **Prefix fill**: positions after k are decoded from 0 (the mean image's coefficients), stored as "
        "`prefix_fill` in model.json (docs/model-package.md).",
        f"- Sizes: encoder ViT width {cfg['enc_width']} (patch {cfg['patch_size']}, {cfg['enc_dense_blocks']} dense + "
        f"{cfg['enc_expert_blocks']} expert blocks), decoder width {cfg['dec_width']} ({cfg['dec_cond_blocks']} "
        f"conditional + {cfg['dec_plain_blocks']} plain blocks, {cfg['conv_channels']}-channel conv head). "
        f"Parameters: encoder {p.get('encoder', 0):,}, decoder {p.get('decoder', 0):,}, codebook "
        f"{p.get('codebook', 0):,}. Package {size / 1e6:.1f} MB. Fingerprint `{manifest['fingerprint']}`.",
        "",
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True)
    ap.add_argument("--log", help="the run's log.jsonl (train_v2.py or train_pca_code.py); optional with "
                    "--refiner-log when the refiner was trained on a package")
    ap.add_argument("--eval", action="append", required=True, metavar="SET=DIR", help="an evaluate.py output folder")
    ap.add_argument("--refiner-log", help="the log.jsonl of train_refiner.py, for a package with a refiner")
    ap.add_argument("--notes", help="a hand-written markdown file appended as is (decisions, what was tried)")
    a = ap.parse_args(argv)
    with open(os.path.join(a.package, "model.json")) as f:
        manifest = json.load(f)
    if not a.log and not a.refiner_log:
        ap.error("give --log, --refiner-log or both")
    log = read_jsonl(a.log) if a.log else []
    evals = {}
    for spec in a.eval:
        name, folder = spec.split("=", 1)
        with open(os.path.join(folder, "evaluation.json")) as f:
            evals[name] = json.load(f)
        for png in ("prefix_curve.png", "reconstructions.png"):
            shutil.copyfile(os.path.join(folder, png), os.path.join(a.package, f"{name}_{png}"))
    cfg = manifest["config"]
    dims = cfg.get("token_dims") or [cfg["latent_dim"]] * cfg["num_tokens"]
    floats = f"{sum(dims)} float32" if cfg.get("token_dims") else f"{cfg['num_tokens']} × {cfg['latent_dim']} float32"
    size = sum(e["bytes"] + (e["data"]["bytes"] if e.get("data") else 0) for e in manifest["files"].values())
    p = manifest.get("parameters", {})
    lines = [
        f"# {manifest['name']}: model card",
        "",
        f"_Generated by `training/make_model_card_v2.py` on {datetime.date.today().isoformat()} from the run's "
        "`log.jsonl`, the evaluation JSON of each set and `model.json`. Do not edit by hand._",
        "",
        "A styled-vq image tokenizer: a 64×64 RGB image becomes 36 discrete tokens (ids in [0, 4096), 432 bits), "
        "ordered from coarse to fine, and back.",
        "",
        *(pca_code_design(cfg) + (refiner_design(cfg) if cfg.get("refiner_blocks") else []) + [
            f"- Parameters: encoder {p.get('encoder', 0):,}, decoder {p.get('decoder', 0):,}, codebook "
            f"{p.get('codebook', 0):,}. Package {size / 1e6:.1f} MB. Fingerprint `{manifest['fingerprint']}`.", ""]
          if cfg.get("residual") is False else v2_design(cfg, p, size, manifest)),
        "## Intended use and limits",
        "",
        "- First-stage tokens for autoregressive image models and experiments with ordered 1D tokens; 64 px only "
        "(larger images are centre-cropped and downscaled by the CLI's preprocessing).",
        "- Reconstructions are blurry at 432 bits; do not use them where decoded pixels must be faithful.",
        "- Trained on crops of game/education art and photos from Debian data packages (training/data/README.md); "
        "text, screenshots, diagrams, faces of real people are out of distribution.",
        "",
    ]
    if log:
        lines += training_section(log)
    if a.refiner_log:
        rlog = read_jsonl(a.refiner_log)
        pkg = base_package_info(rlog)
        if not log and pkg:
            lines += base_package_section(pkg)
        lines += refiner_training_section(rlog)
    for name in ("val", "photos", "holdout"):
        if name in evals:
            lines += eval_section(name, evals[name], floats)
    for name, ev in evals.items():
        if name not in ("val", "photos", "holdout"):
            lines += eval_section(name, ev, floats)
    if a.notes:
        with open(a.notes) as f:
            lines += [f.read().rstrip(), ""]
    path = os.path.join(a.package, "MODEL_CARD.md")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
