#!/usr/bin/env python3
"""Write a model package's MODEL_CARD.md from measured numbers only.

Reads the package's model.json (if exported already), the evaluation written by
training/evaluate.py, the run directory (config.json: stage-1 arguments; log.jsonl, the JSON
records train.py writes: steps, batch, rates, timestamps) and the data README (sources and licenses). Copies
prefix_curve.png and reconstructions.png into the package, and writes <eval dir>/meta.json
({"training", "quality"}) for `training/export.py --meta`, which puts the same summary into
model.json. Nothing here is hard-coded: every number and every PASS/FAIL comes from the
inputs, so the card can be regenerated after any retraining.

Example (the order matters only for the last step; exports are deterministic, so the
fingerprint does not change when re-exporting with --meta):
  python3 -m training.export --checkpoint RUN/stage2.pt --out models/NAME --name NAME
  python3 -m training.evaluate --stage1 RUN/stage1.pt --stage2 RUN/stage2.pt --out RUN/eval
  python3 -m training.make_model_card --package models/NAME --evaluation RUN/eval/evaluation.json \\
      --run RUN --data-readme training/data/README.md
  python3 -m training.export --checkpoint RUN/stage2.pt --out models/NAME --name NAME --meta RUN/eval/meta.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import sys

from styled_vq.evaluation import requirements
from styled_vq.paths import command

LOG_NAME = "log.jsonl"  # written by train.py (styled_vq/jsonlog.py)


# ---------------------------------------------------------------------------- log.jsonl

def read_train_log(path: str) -> dict:
    """Per stage: steps, batch, images seen, wall time and sessions, from train.py's JSON
    records. A session runs from a process's "start" record to that stage's last record
    before the next "start" (the gap while nothing ran is not wall time); wall time is the
    sum over sessions (work redone after a crash counts: it was spent). Training throughput
    counts from each "session" record (after loading and k-means) to the session's end,
    validation and checkpoint writes included."""
    stages: dict = {}
    cur = None
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for r in records:
        kind, stage, t = r["kind"], r.get("stage"), r.get("time")
        if stage not in ("stage1", "stage2") or t is None:
            continue
        st = stages.setdefault(stage, {"sessions": [], "val": []})
        if kind == "start" or cur is None or cur["stage"] != stage:
            cur = {"stage": stage, "t0": t, "t1": t, "first_step": 0, "last_step": 0}
            st["sessions"].append(cur)
            if kind == "start" and "parameters" in r:
                stages.setdefault("model", {})["parameters_m"] = round(r["parameters"] / 1e6, 2)
        cur["t1"] = t
        if kind == "session":
            cur["first_step"] = cur["last_step"] = r["step"]
            cur["t_train"] = t
            st.update(total_steps=r["total_steps"], batch=r["batch"], train_crops=r["train_crops"],
                      val_crops=r["val_crops"])
        elif kind == "step":
            cur["last_step"] = r["step"]
            st.update(step=r["step"], total_steps=r["total_steps"], epoch=r["epoch"])
        elif kind == "val":
            st["val"].append({"step": r["step"], "psnr": r["psnr"], "ssim": r["ssim"]})
        elif kind == "kmeans":
            st["kmeans"] = {"codebook_size": r["codebook_size"], "seconds": r["seconds"], "stats": r["stats"]}
        elif kind == "encoded":
            st["encode"] = {"crops": r["crops"], "latents": r["latents"], "seconds": r["seconds"]}
        elif kind == "done":
            st["done"] = True
    for name in ("stage1", "stage2"):
        st = stages.get(name)
        if not st:
            continue
        st["wall_s"] = round(sum(s["t1"] - s["t0"] for s in st["sessions"]), 1)
        st["n_sessions"] = len(st["sessions"])
        st["done"] = st.get("done", False)
        batch = st.get("batch")
        st["images_seen"] = st.get("step", 0) * batch if batch else None
        done_steps = sum(s["last_step"] - s["first_step"] for s in st["sessions"])
        train_s = sum(s["t1"] - s.get("t_train", s["t0"]) for s in st["sessions"])
        st["img_per_s"] = round(done_steps * batch / train_s, 1) if batch and train_s > 0 else None
        st["first"] = datetime.datetime.fromtimestamp(st["sessions"][0]["t0"]).isoformat(" ", "seconds")
        st["last"] = datetime.datetime.fromtimestamp(st["sessions"][-1]["t1"]).isoformat(" ", "seconds")
        del st["sessions"]
    return stages


# --------------------------------------------------------------------------- data README

def markdown_section(text: str, heading: str) -> str:
    """The body of '## heading' up to the next heading of the same or higher level."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    if not m:
        return ""
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start() if end else len(rest)].strip()


def first_table(section: str) -> str:
    lines, out = section.splitlines(), []
    for ln in lines:
        if ln.startswith("|"):
            out.append(ln)
        elif out:
            break
    return "\n".join(out)


def first_code_block(section: str) -> list[str]:
    m = re.search(r"```\w*\n(.*?)```", section, re.S)
    return m.group(1).strip().splitlines() if m else []


# ------------------------------------------------------------------------------- helpers

def fmt(v, spec=".2f", none="–"):
    return none if v is None else format(v, spec)


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def detect_hardware(threads) -> str:
    model, cores = None, os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    model = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU only: {model or 'unknown CPU'}, {cores} cores, PyTorch with {threads} thread(s)"


def torch_version() -> str:
    try:
        import torch
        return torch.__version__
    except ImportError:
        return "unknown"


def half_gain_k(ks: list[int], ys: list[float]) -> int | None:
    """Smallest k whose PSNR reaches half of the k=0 -> k=36 gain (how early the curve rises)."""
    if not ys or ys[-1] <= ys[0]:
        return None
    target = ys[0] + 0.5 * (ys[-1] - ys[0])
    return next(k for k, y in zip(ks, ys) if y >= target)


# ------------------------------------------------------------------------------ commands

STAGE1_FLAGS = ("preset", "override", "steps", "batch", "lr", "warmup", "ssim_weight", "nested_dropout", "threads", "seed")
STAGE2_FLAGS = ("steps", "batch", "lr", "warmup", "ssim_weight", "codebook_size", "metric", "kmeans_iters", "threads", "seed")


def train_command(stage: str, run: str, args: dict, flags) -> str:
    parts = [stage, "--run", run]
    for k in flags:
        v = args.get(k)
        if v is not None:
            parts += ["--" + k.replace("_", "-"), str(v)]
    return command("train", parts)


def stage2_args(config: dict, log: dict, manifest: dict | None) -> tuple[dict, list[str]]:
    """Stage-2 arguments: recorded ones when the run has them (config.json 'stage2_args'),
    else what log.jsonl and the package show; returns (args, names that were not recorded)."""
    if config.get("stage2_args"):
        return config["stage2_args"], []
    st = log.get("stage2", {})
    args = {"steps": st.get("total_steps"), "batch": st.get("batch"),
            "codebook_size": (st.get("kmeans") or {}).get("codebook_size")
            or (manifest or {}).get("codebook", {}).get("size"),
            "metric": (manifest or {}).get("codebook", {}).get("metric")}
    missing = [k for k in STAGE2_FLAGS if args.get(k) is None]
    return args, missing


def reproduce_commands(a, config: dict, log: dict, ev: dict, manifest: dict | None, data_cmds: list[str],
                       meta_path: str) -> tuple[list[str], list[str]]:
    run = a.run_label or a.run
    s1 = config.get("args", {})
    s2, missing = stage2_args(config, log, manifest)
    name = (manifest or {}).get("name") or os.path.basename(os.path.normpath(a.package))
    export = ["--checkpoint", f"{run}/stage2.pt", "--out", a.package, "--name", name]
    if (manifest or {}).get("description"):
        export += ["--description", manifest["description"]]
    card = a.argv if a.argv is not None else sys.argv[1:]
    cmds = ["# data (training/data/README.md)"] + data_cmds + [
        "# stage 1, stage 2 (rerun the same command to resume after an interruption)",
        train_command("stage1", run, s1, STAGE1_FLAGS),
        train_command("stage2", run, s2, STAGE2_FLAGS),
        "# export, evaluate, model card, re-export with the measured quality in model.json",
        command("export", export),
        ev.get("command", command("evaluate") + " ..."),
        command("make_model_card", card),
        command("export", export + ["--meta", meta_path]),
    ]
    return cmds, missing


# --------------------------------------------------------------------------------- card

def quality_rows(q: dict, budget: dict, cfg: dict) -> list[tuple[str, dict | None, str]]:
    n = budget.get("thumbnail_side")
    t, d = cfg["num_tokens"], cfg["latent_dim"]
    floats = f"{t * d * 32} ({t} × {d} float32)"
    return [
        ("continuous (stage 1, no quantization)", q.get("continuous"), floats),
        ("stage-2 decoder on continuous latents (reference)", q.get("stage2_continuous"), floats),
        ("**quantized: 36 tokens**", q.get("quantized"), f"{fmt(budget.get('bits'), '.0f')} bits (36 × log2 {budget.get('codebook_size')})"),
        ("mean colour of the image", q.get("mean_colour"), f"{budget.get('mean_colour_bits', 24)} bits"),
        (f"{n}×{n} RGB thumbnail, bicubic upscale", q.get("thumbnail"), f"{budget.get('thumbnail_bits')} bits"),
    ]


def gap_sentence(gap: float | None, n: int) -> str:
    if gap is None:
        return "The gap to the thumbnail could not be measured (no quantized model)."
    side = "above" if gap >= 0 else "below"
    verdict = "beats" if gap >= 0 else "does not beat"
    return (f"The quantized 36-token model is **{abs(gap):.2f} dB {side}** the {n}×{n} thumbnail at the same bit "
            f"budget: it {verdict} this blurry baseline in PSNR.")


def build_card(a, manifest: dict | None, ev: dict, log: dict, config: dict, readme: str, hardware: str,
               commands: list[str], missing: list[str]) -> str:
    q, budget, usage, curve = ev["quality"], ev["bit_budget"], ev.get("codebook_usage"), ev["prefix_curve"]
    cfg = (manifest or {}).get("config") or ev["config"]
    name = (manifest or {}).get("name") or os.path.basename(os.path.normpath(a.package))
    n = budget.get("thumbnail_side")
    data = ev["data"]
    L: list[str] = []
    add = L.append

    add(f"# {name}: model card\n")
    add(f"_Generated by `training/make_model_card.py` on {datetime.date.today().isoformat()} from "
        f"`{os.path.basename(a.evaluation)}` ({ev.get('created', '?')}), `{LOG_NAME}` and the data README. "
        f"Do not edit by hand: rerun the commands below._\n")
    warnings = dev_warnings(ev)
    for w in warnings:
        add(f"> **WARNING: {w}**\n")
    add(f"A styled-vq image tokenizer: a {cfg['image_size']}×{cfg['image_size']} RGB image becomes "
        f"{cfg['num_tokens']} discrete tokens (ids into a {budget.get('codebook_size')}-code codebook, "
        f"{fmt(budget.get('bits'), '.0f')} bits per image), ordered so that earlier tokens carry coarser content, "
        f"and {cfg['num_tokens']} tokens decode back to an image.\n")

    # --- intended use
    params = (manifest or {}).get("parameters")
    ptxt = f"{sum(params.values()) / 1e6:.1f} M parameters" if params else \
        f"{log.get('model', {}).get('parameters_m', '?')} M parameters"
    s1 = log.get("stage1", {})
    add("## Intended use and limits\n")
    add(f"- **Use:** the default model of the `styled-vq` CLI; first-stage tokens for autoregressive image models "
        f"and experiments with ordered 1D tokens; a small, fast baseline ({ptxt}).")
    add(f"- **Resolution:** {cfg['image_size']} px only. Larger images are centre-cropped and downscaled to "
        f"{cfg['image_size']} px by the preprocessing (box halving + bicubic) before encoding; fine detail is lost "
        f"by design.")
    add(f"- **Training data:** {fmt(s1.get('train_crops') or None, 'd', '~27k')} crops of game and education art "
        f"(painted portraits, story paintings, manuscript illustrations) and photos (landscapes, cities, animals, "
        f"objects) from Debian data packages. Other kinds of images (text, screenshots, diagrams, faces of real "
        f"people, medical or satellite images) are out of distribution.")
    add("- **Quality:** reconstructions are blurry (see the numbers and the image below). Do not use it where "
        "the decoded pixels must be faithful (compression, forensics, identification).")
    add("- **Validation:** disjoint from training by source file, but near-duplicates across files can straddle "
        "the split (training/data/README.md, \"Known caveats\").\n")

    # --- data
    add("## Data\n")
    add(f"Training crops: {s1.get('train_crops', '?')}; validation crops: {data['of']} (split by source file, "
        f"stratified by package). Built by `training/data/` with a fixed seed from pinned Debian packages; "
        f"nothing else was downloaded.\n")
    counts = first_table(_section_starting(readme, "Sources and counts"))
    if counts:
        add(counts + "\n")
    licenses = first_table(markdown_section(readme, "Licenses"))
    if licenses:
        add("Licenses, as resolved per source file from the packages' copyright files "
            "(`training/data/source_licenses.py`):\n")
        add(licenses + "\n")
        add("The CC-BY and CC-BY-SA images require attribution; the per-file authors are in the packages' "
            "copyright files and in `crops64/source_licenses.json` (see training/data/README.md).\n")

    # --- model
    add("## Model\n")
    add("| field | value |\n|---|---|")
    for k, v in cfg.items():
        add(f"| `{k}` | {v} |")
    if manifest:
        cb = manifest.get("codebook", {})
        add(f"| codebook | {cb.get('size')} × {cb.get('dim')}, {cb.get('metric')} |")
        if params:
            add(f"| parameters | encoder {params['encoder']:,}, decoder {params['decoder']:,}, codebook {params['codebook']:,} |")
        sizes = sum(f["bytes"] + (f["data"]["bytes"] if f.get("data") else 0) for f in manifest.get("files", {}).values())
        add(f"| package size (ONNX) | {sizes / 1e6:.1f} MB |")
        add(f"| fingerprint | `{manifest.get('fingerprint')}` |")
    add("")

    # --- training
    add("## Training\n")
    args = config.get("args", {})
    add(f"Stage 1 trains encoder and decoder end to end on continuous latents (`{cfg.get('head')}` head), loss = "
        f"pixel MSE + {args.get('ssim_weight', '?')} × (1 − SSIM) (no pretrained perceptual network is available "
        f"offline), nested dropout {args.get('nested_dropout', 0)} (that fraction of each batch keeps only a random "
        f"prefix of the latents, the rest replaced by the running mean latent). AdamW (0.9, 0.98), one-cycle "
        f"cosine schedule to lr {args.get('lr', '?')} with {args.get('warmup', '?')} warm-up, gradient clipping 1.0. "
        f"Stage 2 k-means the frozen encoder's training latents into K codes and fine-tunes the decoder on "
        f"quantized latents.\n")
    add("| stage | steps | batch | images seen | epochs | wall time | training img/s | sessions | finished |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for stage in ("stage1", "stage2"):
        st = log.get(stage)
        if not st:
            add(f"| {stage} | – | – | – | – | – | – | – | not in {LOG_NAME} |")
            continue
        seen = st.get("images_seen")
        epochs = f"{seen / st['train_crops']:.1f}" if seen and st.get("train_crops") else "–"
        add(f"| {stage} | {st.get('step', 0)}/{st.get('total_steps', '?')} | {st.get('batch', '?')} | "
            f"{fmt(seen, ',d')} | {epochs} | {hms(st.get('wall_s'))} | {fmt(st.get('img_per_s'), '.1f')} | "
            f"{st.get('n_sessions')} | {'yes' if st.get('done') else 'no'} |")
    st2 = log.get("stage2", {})
    if st2.get("kmeans"):
        km = st2["kmeans"]
        enc = st2.get("encode", {})
        add(f"\nk-means: K = {km['codebook_size']} over {fmt(enc.get('latents'), ',d', '?')} training latents "
            f"(encoding {enc.get('seconds', '?')} s, k-means {km['seconds']} s): `{km['stats']}`.")
    vals = [(s, log[s]["val"][-1]) for s in ("stage1", "stage2") if log.get(s, {}).get("val")]
    if vals:
        add("\nLast validation during training (first 512 validation crops; stage 2 quantized): " +
            "; ".join(f"{s} step {v['step']}: {v['psnr']:.2f} dB, SSIM {v['ssim']:.4f}" for s, v in vals) + ".")
    add(f"\nHardware: {hardware}. PyTorch {torch_version()} (Debian). Started {s1.get('first', '?')}, "
        f"last log line {log.get('stage2', s1).get('last', '?')}.\n")

    # --- reproduce
    add("## Reproduce\n")
    add("```sh")
    L.extend(commands)
    add("```\n")
    if missing:
        add(f"The run did not record these stage-2 arguments, so the command above leaves them at train.py's "
            f"defaults: {', '.join('`--' + m.replace('_', '-') + '`' for m in missing)}.\n")

    # --- quality
    add("## Quality on the validation split\n")
    subset = "" if data["images"] == data["of"] else f" (a subset of the {data['of']})"
    add(f"{data['images']} validation crops of {data['image_size']} px{subset}; "
        f"the bit budget is {fmt(budget.get('bits'), '.0f')} bits, so the references get the same or fewer bits.\n")
    add("| model | bits per image | PSNR (dB) | SSIM |\n|---|---|---:|---:|")
    for label, v, bits in quality_rows(q, budget, cfg):
        if v is not None:
            add(f"| {label} | {bits} | {v['psnr']:.2f} | {v['ssim']:.4f} |")
    add("")
    if q.get("quantization_cost_db") is not None:
        add(f"- Quantization cost (continuous stage 1 − quantized): **{q['quantization_cost_db']:.2f} dB**.")
    if q.get("quantization_cost_vs_stage2_continuous_db") is not None:
        add(f"- The stage-2 decoder loses {q['quantization_cost_vs_stage2_continuous_db']:.2f} dB between "
            f"continuous and quantized latents (it was fine-tuned on the quantized ones).")
    if q.get("gap_to_mean_colour_db") is not None:
        add(f"- Quantized vs mean colour: **{q['gap_to_mean_colour_db']:+.2f} dB**.")
    add(f"- {gap_sentence(q.get('gap_to_thumbnail_db'), n)}")
    add(f"- Definitions: PSNR {ev['definitions']['psnr']}. SSIM: {ev['definitions']['ssim']}. "
        f"Pixels: {ev['definitions']['pixels']}. Thumbnail: {ev['definitions']['thumbnail']}.\n")

    # --- codebook usage
    if usage:
        pp = usage["per_position"]
        add("## Codebook usage (validation)\n")
        add(f"- Codes used at least once: **{usage['used']} of {usage['codebook_size']} "
            f"({100 * usage['used_fraction']:.1f}%)** over {usage['tokens']:,} tokens.")
        add(f"- Perplexity exp(H) of the token histogram: **{usage['perplexity']:.0f}** "
            f"(uniform use would give {usage['codebook_size']}).")
        add(f"- Per position ({pp['max_possible']} images, so at most {pp['max_possible']} distinct codes each): "
            f"codes used min {pp['used_min']} / median {pp['used_median']:.0f} / max {pp['used_max']}, "
            f"perplexity min {pp['perplexity_min']:.1f} / median {pp['perplexity_median']:.1f} / "
            f"max {pp['perplexity_max']:.1f}.\n")

    # --- prefix curve
    add("## Prefix curve\n")
    roles = [r for r in ("quantized", "continuous") if r in curve]
    add("Only the first k tokens are kept; the others are replaced by a neutral latent. " +
        " ".join(f"{r.capitalize()} model: {curve['neutral'][r]}." for r in roles) + "\n")
    add("| k | " + " | ".join(f"{r} PSNR | {r} SSIM" for r in roles) + " |")
    add("|---:|" + "---:|---:|" * len(roles))
    for i, k in enumerate(curve["k"]):
        add(f"| {k} | " + " | ".join(f"{curve[r]['psnr'][i]:.2f} | {curve[r]['ssim'][i]:.4f}" for r in roles) + " |")
    for r in roles:
        hk = half_gain_k(curve["k"], curve[r]["psnr"])
        ys = curve[r]["psnr"]
        add(f"\n{r.capitalize()}: k = 0 → {ys[0]:.2f} dB, k = {curve['k'][-1]} → {ys[-1]:.2f} dB; "
            + (f"half of that gain is reached at k = {hk}." if hk is not None else "no gain from more tokens."))
    add("\n![prefix curve](prefix_curve.png)\n")

    # --- reconstructions
    grid = ev.get("grid", {})
    add("## Reconstructions\n")
    add(f"Validation crops {', '.join('#' + str(i) for i in grid.get('val_indices', []))} (one per source file, "
        f"spread over the source groups), rows: {' | '.join(grid.get('rows', []))}; enlarged "
        f"{grid.get('scale', 3)}× with nearest-neighbour.\n")
    add("![reconstructions](reconstructions.png)\n")

    # --- requirements
    add("## Requirements (training issue)\n")
    for r in requirements(q, usage):
        box = {True: "[x] PASS", False: "[ ] FAIL", None: "[ ] n/a"}[r["passed"]]
        unit = "%" if r["unit"] == "fraction" else " dB"
        val = "not measured" if r["value"] is None else (
            f"{100 * r['value']:.1f}%" if r["unit"] == "fraction" else f"{r['value']:.2f} dB")
        thr = f"{100 * r['threshold']:.0f}%" if r["unit"] == "fraction" else f"{r['threshold']:g}{unit}"
        add(f"- {box}: {r['name']} ({'' if r['value'] is None else 'measured '}{val}, threshold {r['op']} {thr})")
    gap = q.get("gap_to_thumbnail_db")
    goal = "n/a" if gap is None else ("met" if gap >= 0 else "not met")
    add(f"- Goal beyond the requirements, beat the {n}×{n} thumbnail: {goal} (gap {fmt(gap, '+.2f')} dB).\n")
    return "\n".join(L)


def _section_starting(text: str, prefix: str) -> str:
    m = re.search(rf"^## {re.escape(prefix)}.*$", text, re.M)
    return markdown_section(text, m.group(0)[3:]) if m else ""


def dev_warnings(ev: dict) -> list[str]:
    """Flags that make the numbers unfit for shipping, written into the card itself."""
    w = []
    d = ev["data"]
    if d["images"] != d["of"]:
        w.append(f"evaluated on {d['images']} of {d['of']} validation crops (development subset)")
    src = (ev["models"].get("codebook") or {}).get("source", "")
    if src.startswith("DEVELOPMENT"):
        w.append("the codebook is a development k-means, not the stage-2 codebook")
    for role in ("stage1", "stage2"):
        if "step" in ev["models"].get(role, {}):
            w.append(f"the {role} weights are an in-progress checkpoint (step {ev['models'][role]['step']})")
    if "stage2" not in ev["models"]:
        w.append("no stage-2 checkpoint was evaluated")
    return w


# ------------------------------------------------------------------------------ meta.json

def meta(log: dict, config: dict, ev: dict, hardware: str) -> dict:
    """The summary export.py --meta merges into model.json ('training', 'quality')."""
    q, usage, curve = ev["quality"], ev.get("codebook_usage"), ev["prefix_curve"]

    def stage(name):
        st = log.get(name)
        if not st:
            return None
        return {k: st.get(k) for k in ("step", "total_steps", "batch", "images_seen", "wall_s", "img_per_s",
                                       "n_sessions", "done")} | ({"kmeans": st["kmeans"]} if "kmeans" in st else {})

    r4 = lambda v: None if v is None else round(v, 4)  # noqa: E731
    training = {"data": f"{log.get('stage1', {}).get('train_crops', '?')} training crops of Debian game/education "
                        f"art and photos (training/data/README.md)",
                "stage1_args": {k: config.get("args", {}).get(k) for k in STAGE1_FLAGS},
                "stage1": stage("stage1"), "stage2": stage("stage2"),
                "hardware": hardware, "torch": torch_version()}
    names = ("continuous", "stage2_continuous", "quantized", "mean_colour", "thumbnail")
    quality = {
        "split": "val", "images": ev["data"]["images"], "image_size": ev["data"]["image_size"],
        "psnr": {k: r4(q[k]["psnr"]) for k in names if k in q},
        "ssim": {k: r4(q[k]["ssim"]) for k in names if k in q},
        "quantization_cost_db": r4(q.get("quantization_cost_db")),
        "gap_to_thumbnail_db": r4(q.get("gap_to_thumbnail_db")),
        "thumbnail_side": ev["bit_budget"].get("thumbnail_side"),
        "bit_budget": r4(ev["bit_budget"].get("bits")),
        "codebook_used_fraction": r4(usage["used_fraction"]) if usage else None,
        "codebook_perplexity": r4(usage["perplexity"]) if usage else None,
        "prefix_psnr": {str(k): r4(v) for k, v in zip(curve["k"], curve.get("quantized", curve.get("continuous", {})).get("psnr", []))},
        "requirements": {r["name"]: r["passed"] for r in requirements(q, usage)},
        "measured_by": "training/evaluate.py (see MODEL_CARD.md)",
    }
    warnings = dev_warnings(ev)
    if warnings:
        quality["warnings"] = warnings
    return {"training": training, "quality": quality}


# ---------------------------------------------------------------------------------- main

def load_json(path: str):
    with open(path) as f:
        return json.load(f)


def check_consistency(manifest: dict | None, ev: dict) -> None:
    """The card must describe the package: refuse an evaluation of another model."""
    if manifest is None:
        return
    if manifest.get("config") != ev["config"]:
        raise SystemExit("model.json's config differs from the evaluated model's config: wrong --evaluation?")
    k = manifest.get("codebook", {}).get("size")
    if ev["bit_budget"].get("codebook_size") != k and ev.get("codebook_usage"):
        raise SystemExit(f"model.json has K={k}, the evaluation K={ev['bit_budget'].get('codebook_size')}")


def write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True, help="models/<name> (MODEL_CARD.md and the PNGs go here)")
    ap.add_argument("--evaluation", required=True, help="evaluation.json from training/evaluate.py")
    ap.add_argument("--run", required=True, help=f"training run directory (config.json, {LOG_NAME})")
    ap.add_argument("--data-readme", default="training/data/README.md")
    ap.add_argument("--hardware", help="where training ran (default: this machine's CPU, with the run's thread count)")
    ap.add_argument("--run-label", help="how the run directory is written in the commands (default: --run)")
    ap.add_argument("--meta-out", help="default: meta.json next to the evaluation")
    a = ap.parse_args(argv)
    a.argv = argv

    ev = load_json(a.evaluation)
    manifest_path = os.path.join(a.package, "model.json")
    manifest = load_json(manifest_path) if os.path.exists(manifest_path) else None
    check_consistency(manifest, ev)
    config = load_json(os.path.join(a.run, "config.json")) if os.path.exists(os.path.join(a.run, "config.json")) else {}
    log_path = os.path.join(a.run, LOG_NAME)
    log = read_train_log(log_path) if os.path.exists(log_path) else {}
    with open(a.data_readme) as f:
        readme = f.read()
    hardware = a.hardware or detect_hardware(config.get("args", {}).get("threads", "?"))
    meta_path = a.meta_out or os.path.join(os.path.dirname(os.path.abspath(a.evaluation)), "meta.json")
    # The README's commands without their trailing comments (they refer to the README).
    data_cmds = [c.split("  #")[0].rstrip() for c in first_code_block(markdown_section(readme, "Reproduce"))]

    os.makedirs(a.package, exist_ok=True)
    ev_dir = os.path.dirname(os.path.abspath(a.evaluation))
    for key, dst in (("prefix_curve", "prefix_curve.png"), ("reconstructions", "reconstructions.png")):
        shutil.copyfile(os.path.join(ev_dir, ev["images"][key]), os.path.join(a.package, dst))
    commands, missing = reproduce_commands(a, config, log, ev, manifest, data_cmds, meta_path)
    card = build_card(a, manifest, ev, log, config, readme, hardware, commands, missing)
    write_atomic(os.path.join(a.package, "MODEL_CARD.md"), card + "\n")
    write_atomic(meta_path, json.dumps(meta(log, config, ev, hardware), indent=2) + "\n")
    for w in dev_warnings(ev):
        print("warning:", w)
    if manifest is None:
        print(f"note: {manifest_path} does not exist yet: the card has no parameter counts or fingerprint; "
              f"export, then rerun this")
    if not a.hardware:
        print(f"note: hardware detected here ({hardware}); pass --hardware if training ran elsewhere")
    print(f"wrote {os.path.join(a.package, 'MODEL_CARD.md')}, the PNGs, and {meta_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
