"""Helpers for training/evaluate.py and training/make_model_card.py: reference images at
the token bit budget, codebook usage, prefix truncation, the requirement checks of the
training issue, and PNG drawing with PIL only (matplotlib is not a dependency here).

Everything here is deterministic and free of model loading, so tests can run it in
milliseconds (training/tests/test_evaluation.py)."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .losses import psnr, ssim

PREFIX_KS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 36)

# Plain-language definitions copied into evaluation.json, so the numbers can be read
# without this code.
DEFINITIONS = {
    "pixels": "RGB in [0, 1]: originals are uint8 / 255; model outputs are clamped to [-1, 1] and mapped "
              "by (x + 1) / 2 (not rounded to 8 bit, as in train.py's validation)",
    "psnr": "per image 10 * log10(1 / MSE), MSE over all pixels and the 3 channels; reported: the mean over "
            "images (dB)",
    "ssim": "per image: SSIM (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5), C1 = 0.01^2, "
            "C2 = 0.03^2, valid positions only, computed per RGB channel and averaged over channels and "
            "positions; reported: the mean over images (styled_vq.losses.ssim)",
    "continuous": "stage-1 weights: encoder -> decoder on the continuous latents, no quantization",
    "stage2_continuous": "stage-2 weights (decoder fine-tuned on quantized latents) fed the continuous "
                         "latents; for reference only",
    "quantized": "the 36-token model: encoder -> nearest codebook row -> codebook row -> decoder",
    "quantization_cost_db": "continuous PSNR (stage 1) - quantized PSNR (stage 2)",
    "bit_budget": "36 * log2(K) bits: what 36 token ids of a K-code codebook can carry",
    "mean_colour": "every pixel set to the image's mean RGB, rounded to 8 bit (24 bits)",
    "thumbnail": "the largest n x n RGB 8-bit thumbnail with n*n*24 <= the bit budget: PIL BOX (area "
                 "average) downscale of the crop to n x n, then PIL BICUBIC upscale back",
    "gap_to_thumbnail_db": "quantized PSNR - thumbnail PSNR (positive: the tokens beat the thumbnail)",
    "codebook_used_fraction": "codes that occur at least once among all validation tokens / K",
    "perplexity": "exp(H) of the histogram of all validation tokens (H in nats); K would be uniform use",
    "prefix_curve": "only the first k tokens are kept, positions k..35 are replaced by the neutral latent",
}


# ----------------------------------------------------------------------------- metrics

class Meter:
    """Collects per-image PSNR/SSIM of named reconstructions; summary() gives means."""

    def __init__(self):
        self._psnr: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._ssim: dict[str, list[torch.Tensor]] = defaultdict(list)

    def add(self, name: str, recon01: torch.Tensor, target01: torch.Tensor) -> None:
        self._psnr[name].append(psnr(recon01, target01).double())
        self._ssim[name].append(ssim(recon01, target01).double())

    def names(self) -> list[str]:
        return list(self._psnr)

    def summary(self, name: str) -> dict:
        p, s = torch.cat(self._psnr[name]), torch.cat(self._ssim[name])
        return {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_std": float(p.std(unbiased=False)),
                "ssim_std": float(s.std(unbiased=False)), "images": int(p.numel())}


def uint8_to_unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 [B,H,W,3] -> float32 [B,3,H,W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0


# ----------------------------------------------------------------- bit-budget baselines

def bit_budget(num_tokens: int, codebook_size: int) -> float:
    return num_tokens * math.log2(codebook_size)


def thumbnail_side(bits: float, bits_per_pixel: int = 24) -> int:
    """Largest n with n*n*bits_per_pixel <= bits (at least 1: a 1x1 thumbnail is the mean colour)."""
    n = int(math.isqrt(int(bits // bits_per_pixel)))
    return max(n, 1)


def mean_colour(arr: np.ndarray) -> np.ndarray:
    """uint8 [B,H,W,3] -> uint8 [B,H,W,3], each image filled with its mean RGB (rounded, 24 bits)."""
    m = np.rint(arr.reshape(len(arr), -1, 3).astype(np.float64).mean(1)).astype(np.uint8)
    return np.broadcast_to(m[:, None, None, :], arr.shape).copy()


def thumbnail(arr: np.ndarray, n: int) -> np.ndarray:
    """uint8 [B,S,S,3] -> uint8 [B,S,S,3]: PIL BOX down to n x n (8-bit), BICUBIC back up to S."""
    size = arr.shape[1]
    out = np.empty_like(arr)
    for i, a in enumerate(arr):
        small = Image.fromarray(np.ascontiguousarray(a), "RGB").resize((n, n), Image.BOX)
        out[i] = np.asarray(small.resize((size, size), Image.BICUBIC))
    return out


# ------------------------------------------------------------------------------ tokens

def code_usage(ids: torch.Tensor, codebook_size: int) -> dict:
    """ids int [N, T] (all validation tokens) -> usage over the whole codebook and per position."""
    ids = ids.long()
    total = torch.bincount(ids.reshape(-1), minlength=codebook_size)
    per_pos_used, per_pos_ppl = [], []
    for t in range(ids.shape[1]):
        c = torch.bincount(ids[:, t], minlength=codebook_size)
        per_pos_used.append(int((c > 0).sum()))
        per_pos_ppl.append(perplexity(c))
    used = int((total > 0).sum())
    return {
        "codebook_size": codebook_size,
        "tokens": int(ids.numel()),
        "used": used,
        "used_fraction": used / codebook_size,
        "perplexity": perplexity(total),
        # With N images a position can use at most min(N, K) codes.
        "per_position": {
            "used": per_pos_used,
            "perplexity": [round(p, 2) for p in per_pos_ppl],
            "used_min": min(per_pos_used), "used_median": float(np.median(per_pos_used)),
            "used_max": max(per_pos_used),
            "perplexity_min": min(per_pos_ppl), "perplexity_median": float(np.median(per_pos_ppl)),
            "perplexity_max": max(per_pos_ppl),
            "max_possible": min(int(ids.shape[0]), codebook_size),
        },
    }


def perplexity(counts: torch.Tensor) -> float:
    """exp of the entropy (nats) of a histogram."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def keep_prefix(latents: torch.Tensor, k: int, neutral: torch.Tensor) -> torch.Tensor:
    """latents [B,T,D]: keep positions < k, replace the rest with neutral [T,D]."""
    out = neutral.to(latents.dtype).unsqueeze(0).expand_as(latents).clone()
    out[:, :k] = latents[:, :k]
    return out


# -------------------------------------------------------------------------- requirements

def requirements(quality: dict, usage: dict | None, curve: dict | None = None) -> list[dict]:
    """The default-model issue's requirements, evaluated from the numbers (never stored
    verdicts). Each item: name, the measured value, the threshold, and passed (None if not
    measurable)."""

    def get(name, key="psnr"):
        v = quality.get(name)
        return None if v is None else v[key]

    q, c, m, th = get("quantized"), get("continuous"), get("mean_colour"), get("thumbnail")
    qs, ths = get("quantized", "ssim"), get("thumbnail", "ssim")
    items = [
        {"name": "quantized 36-token PSNR above the equal-bit thumbnail", "unit": "dB",
         "value": None if q is None or th is None else q - th, "threshold": 0.0, "op": ">"},
        {"name": "quantized SSIM above the thumbnail's", "unit": "",
         "value": None if qs is None or ths is None else qs - ths, "threshold": 0.0, "op": ">"},
        {"name": "quantization cost (continuous - quantized PSNR) <= 0.3 dB", "unit": "dB",
         "value": None if q is None or c is None else c - q, "threshold": 0.3, "op": "<="},
    ]
    pq = (curve or {}).get("quantized")
    if pq is not None and m is not None:
        ks, ys = curve["k"], pq["psnr"]
        y = dict(zip(ks, ys))
        gain36 = y[max(ks)] - m
        items += [
            {"name": "k = 1 at or above the mean colour", "unit": "dB", "value": y.get(1, float("nan")) - m,
             "threshold": 0.0, "op": ">="},
            {"name": "k = 8 holds at least half of the k = 36 gain over the mean colour", "unit": "fraction",
             "value": (y.get(8, float("nan")) - m) / gain36 if gain36 > 0 else None, "threshold": 0.5, "op": ">="},
            {"name": "prefix curve rises monotonically (smallest step)", "unit": "dB",
             "value": min(b - a for a, b in zip(ys, ys[1:])), "threshold": 0.0, "op": ">"},
        ]
    if usage is not None:
        tr = usage.get("train")
        items.append({"name": "codes used >= 90 % (training crops for per-position codebooks, else validation)",
                      "unit": "fraction", "value": (tr or usage)["used_fraction"], "threshold": 0.9, "op": ">="})
    for it in items:
        v = it["value"]
        ok = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
        it["passed"] = None if v is None or v != v else bool(ok[it["op"]](v, it["threshold"]))
    return items


# ------------------------------------------------------------------------------- images

def pick_grid_indices(sources: Sequence[dict] | None, count: int, n_total: int) -> list[int]:
    """A fixed, varied set of validation crops: one crop per source file, taking the groups
    (endless-sky land, wesnoth portraits, ...) in turn, so the grid shows every kind of
    image rather than 10 crops of one photo. Without source records: evenly spaced."""
    if not sources:
        return [int(i) for i in np.linspace(0, n_total - 1, count).round()]
    by_group: dict[str, dict[str, list[int]]] = {}
    for i, s in enumerate(sources[:n_total]):
        by_group.setdefault(s.get("group", "?"), {}).setdefault(s.get("package", "") + ":" + s.get("path", ""), []).append(i)
    # Per group, the sources in file order; per source, its middle crop.
    queues = [[crops[len(crops) // 2] for crops in files.values()] for files in by_group.values()]
    # Spread each group's picks over its sources rather than taking its first files.
    queues = [[q[j] for j in _spread(len(q), count)] for q in queues]
    picked: list[int] = []
    while len(picked) < min(count, n_total) and any(queues):
        for q in queues:
            if q and len(picked) < count:
                picked.append(q.pop(0))
    return sorted(picked)


def _spread(n: int, count: int) -> list[int]:
    if n <= count:
        return list(range(n))
    return sorted(set(int(i) for i in np.linspace(0, n - 1, count).round()))


def _font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


def draw_grid(rows: Sequence[tuple[str, np.ndarray]], scale: int = 3, gap: int = 4,
              captions: Sequence[str] | None = None) -> Image.Image:
    """rows: (label, uint8 [N,S,S,3]) -> one image, a row per label, images upscaled with
    nearest neighbour (so pixels stay honest), the label at the left of each row."""
    font = _font(14)
    small = _font(11)
    n, s = rows[0][1].shape[0], rows[0][1].shape[1]
    cell = s * scale
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(_text_size(probe, lbl, font)[0] for lbl, _ in rows) + 12
    cap_h = 16 if captions else 0
    width = label_w + n * (cell + gap) + gap
    height = cap_h + len(rows) * (cell + gap) + gap
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if captions:
        for j, c in enumerate(captions):
            draw.text((label_w + gap + j * (cell + gap), 2), c[:cell // 6], fill=(90, 90, 90), font=small)
    for r, (label, arr) in enumerate(rows):
        y = cap_h + gap + r * (cell + gap)
        tw, th = _text_size(draw, label, font)
        draw.text((6, y + (cell - th) // 2), label, fill="black", font=font)
        for j in range(n):
            tile = Image.fromarray(np.ascontiguousarray(arr[j]), "RGB").resize((cell, cell), Image.NEAREST)
            img.paste(tile, (label_w + gap + j * (cell + gap), y))
    return img


PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (127, 127, 127)]


def draw_line_plot(xs: Sequence[float], series: Sequence[tuple[str, Sequence[float]]],
                   hlines: Sequence[tuple[str, float]] = (), title: str = "", xlabel: str = "",
                   ylabel: str = "", size: tuple[int, int] = (820, 520), xticks: Iterable[float] | None = None) -> Image.Image:
    """A small line plot: series share xs (markers on the points); hlines are dashed
    horizontal reference levels. Linear axes, y range padded around all values."""
    w, h = size
    left, right, top, bottom = 70, 200, 40, 55
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(12)
    values = [v for _, ys in series for v in ys if v is not None and math.isfinite(v)]
    values += [v for _, v in hlines if v is not None and math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 0.5)
    lo, hi = math.floor(lo - pad), math.ceil(hi + pad)
    x0, x1 = min(xs), max(xs)
    pw, ph = w - left - right, h - top - bottom

    def px(x, y):
        return left + (x - x0) / max(x1 - x0, 1e-9) * pw, top + (hi - y) / max(hi - lo, 1e-9) * ph

    # grid and ticks
    ystep = _nice_step(hi - lo)
    y = math.ceil(lo / ystep) * ystep
    while y <= hi + 1e-9:
        _, yy = px(x0, y)
        draw.line([(left, yy), (left + pw, yy)], fill=(230, 230, 230))
        lbl = f"{y:g}"
        tw, th = _text_size(draw, lbl, small)
        draw.text((left - tw - 6, yy - th / 2 - 2), lbl, fill="black", font=small)
        y += ystep
    for x in (xticks if xticks is not None else xs):
        xx, _ = px(x, lo)
        draw.line([(xx, top), (xx, top + ph)], fill=(240, 240, 240))
        draw.line([(xx, top + ph), (xx, top + ph + 4)], fill="black")
        lbl = f"{x:g}"
        tw, _ = _text_size(draw, lbl, small)
        draw.text((xx - tw / 2, top + ph + 6), lbl, fill="black", font=small)
    draw.rectangle([left, top, left + pw, top + ph], outline="black")

    legend = []
    for i, (name, v) in enumerate(hlines):
        if v is None or not math.isfinite(v):
            continue
        colour = PALETTE[(len(series) + i) % len(PALETTE)]
        _, yy = px(x0, v)
        for xs_ in range(left, left + pw, 12):
            draw.line([(xs_, yy), (min(xs_ + 7, left + pw), yy)], fill=colour, width=2)
        legend.append((f"{name} ({v:.2f})", colour, True))
    for i, (name, ys) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = [px(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for (xx, yy) in pts:
            draw.ellipse([xx - 3, yy - 3, xx + 3, yy + 3], fill=colour)
        legend.insert(i, (name, colour, False))

    ly = top
    for name, colour, dashed in legend:
        lx = left + pw + 14
        if dashed:
            draw.line([(lx, ly + 8), (lx + 7, ly + 8)], fill=colour, width=2)
            draw.line([(lx + 12, ly + 8), (lx + 19, ly + 8)], fill=colour, width=2)
        else:
            draw.line([(lx, ly + 8), (lx + 20, ly + 8)], fill=colour, width=2)
            draw.ellipse([lx + 7, ly + 5, lx + 13, ly + 11], fill=colour)
        for k, line in enumerate(_wrap(name, 22)):
            draw.text((lx + 26, ly + k * 15), line, fill="black", font=small)
        ly += 15 * len(_wrap(name, 22)) + 8

    if title:
        tw, _ = _text_size(draw, title, font)
        draw.text((left + (pw - tw) / 2, 10), title, fill="black", font=font)
    if xlabel:
        tw, _ = _text_size(draw, xlabel, font)
        draw.text((left + (pw - tw) / 2, h - 24), xlabel, fill="black", font=font)
    if ylabel:
        tw, th = _text_size(draw, ylabel, font)
        label = Image.new("RGB", (tw + 4, th + 6), "white")
        ImageDraw.Draw(label).text((2, 0), ylabel, fill="black", font=font)
        label = label.rotate(90, expand=True)
        img.paste(label, (8, int(top + (ph - label.height) / 2)))
    return img


def _nice_step(span: float) -> float:
    raw = span / 6
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for wd in words:
        if cur and len(cur) + 1 + len(wd) > width:
            lines.append(cur)
            cur = wd
        else:
            cur = f"{cur} {wd}".strip()
    return lines + ([cur] if cur else [])
