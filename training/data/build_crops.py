#!/usr/bin/env python3
"""Build the styled-vq training/validation crops from the unpacked Debian data packages.

Input : $STYLED_VQ_DATA/extract/<package>/...   (made by fetch_packages.sh)
Output: $STYLED_VQ_DATA/crops<size>/{train,val}.npy          uint8 [N, size, size, 3]
        $STYLED_VQ_DATA/crops<size>/{train,val}_sources.json one record per crop
        $STYLED_VQ_DATA/crops<size>/val_png/*.png            16 validation crops
        $STYLED_VQ_DATA/crops<size>/manifest.json            arguments, counts, source list

Everything is driven by a fixed seed: source subsampling, the train/val split and every
crop (each source gets its own generator seeded from (seed, crc32(package:path)), so a crop
does not change when other sources are added or removed).

Selection rule (see README.md): a file is a source when its path matches one of the
allow-listed content groups below (photos, painted portraits, story paintings, photo
cut-outs; never icons, sprites, unit/terrain tiles, UI, maps with text), it decodes, its
short side is >= --min-side (96) px, its aspect ratio is <= 4, at least 10 % of it is
opaque, and a 64x64 thumbnail has >= --min-colors (400) distinct colours (drops flat
clip-art, line drawings and palette art). Identical files are kept once. Groups with more
eligible files than their cap are subsampled with the seed.

Each crop: a random square (side uniform in [lo, 1] x the short side, lo = max(0.3,
min_side/short side), random position), horizontal flip with p = 0.5. Sources with
transparency are first composited onto a randomly padded canvas filled with a random
solid colour, a linear gradient, or a random crop of a photo from the SAME split. The
square PIL image then goes through styled_vq.preprocess.center_crop_arr(img, size) exactly
as inference does.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import re
import struct
import sys
import time
import zlib

import numpy as np
from PIL import Image, ImageOps

from styled_vq.paths import DATA_ROOT as DEFAULT_CACHE  # run as python3 -m training.data.build_crops
from styled_vq.preprocess import center_crop_arr

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------
# Allow-listed content groups: (name, package regex, path regex, cap, exclude regex)
# Paths are relative to the package root (for GCompris: "<rcc file>:<resource path>").
# ---------------------------------------------------------------------------------------
GROUPS = [
    ("endless-sky/land", r"^endless-sky-data$", r"/images/land/[^/]+\.(jpg|png)$", 175, None),
    ("endless-sky/scene", r"^endless-sky-data$", r"/images/scene/[^/]+\.(jpg|png)$", 20, None),
    ("wesnoth/portraits", r"^wesnoth-1\.16-", r"/images/portraits/.+\.(png|jpg|webp)$", 165, r"/l10n/"),
    ("wesnoth/story", r"^wesnoth-1\.16-", r"/images/story/[^/]+\.(png|jpg|webp)$", 75, r"/l10n/"),
    ("naev/portraits", r"^naev-data$", r"/dat/gfx/portraits/.+\.(png|webp|jpg)$", 125, None),
    ("naev/loading", r"^naev-data$", r"/dat/gfx/loading/[^/]+\.(png|webp|jpg)$", 15, None),
    ("tuxpaint/stamps", r"^tuxpaint-stamps-default$", r"/stamps/.+\.png$", 150,
     r"/(cartoon|symbols|roadsigns|toys)/|_mirror\.png$|_flip\.png$"),
    ("gcompris/photos", r"^gcompris-qt-data$",
     r":gcompris/src/activities/(erase/resource|explore_monuments/resource/[^/]+|explore_world_animals/resource/animals"
     r"|explore_farm_animals/resource/animals|categorization/resource/images/(tools|renewable|monuments|fishes|others))"
     r"/[^/]+\.(webp|jpg|png)$", 85, None),
    ("gcompris/paintings", r"^gcompris-qt-data$",
     r":gcompris/src/activities/(details/resource/image|babyshapes/resource/image)/[^/]+_background\.(webp|jpg|png)$",
     25, None),
    ("stellarium/landscapes", r"^stellarium-data$",
     r"/landscapes/(garching|grossmugl|guereins|hurricane|ocean|trees)/[^/]+\.png$", 40, r"fog|-lgt|illum"),
    ("stellarium/aratea", r"^stellarium-data$", r"/skycultures/greek_leidenAratea/[^/]+_bg\.(jpg|png)$", 30, None),
]

# Sources that are parts of one picture must stay on one side of the split:
# split key = regex group 1 when it matches, else the path itself.
SPLIT_KEYS = [
    r"(/landscapes/[^/]+)/",  # Stellarium panoramas are cut into tiles
]

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp")


# ------------------------------- Qt resource (.rcc) reader ------------------------------
def read_rcc(path):
    """Yield (resource path, bytes) of every file in a Qt .rcc archive (formats 1-3, zlib)."""
    b = open(path, "rb").read()
    if b[:4] != b"qres":
        return
    ver, tree, data, names = struct.unpack(">IIII", b[4:20])
    node = 14 if ver < 2 else 22

    def name(off):
        (n,) = struct.unpack(">H", b[names + off: names + off + 2])
        return b[names + off + 6: names + off + 6 + 2 * n].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        idx, prefix = stack.pop()
        p = tree + idx * node
        noff, flags = struct.unpack(">IH", b[p: p + 6])
        nm = name(noff) if idx else ""
        if flags & 2:
            cnt, first = struct.unpack(">II", b[p + 6: p + 14])
            for c in range(first, first + cnt):
                stack.append((c, prefix + nm + "/" if idx else ""))
        else:
            (doff,) = struct.unpack(">I", b[p + 10: p + 14])
            (sz,) = struct.unpack(">I", b[data + doff: data + doff + 4])
            raw = b[data + doff + 4: data + doff + 4 + sz]
            if flags & 4:  # zstd: not needed for images (rcc stores them uncompressed)
                continue
            if flags & 1:
                raw = zlib.decompress(raw[4:])
            yield prefix + nm, raw


# ------------------------------------ enumeration ---------------------------------------
def list_candidates(extract):
    """[(package, relpath, opener)] for every image file (and every image inside a .rcc)."""
    out = []
    for pkg in sorted(os.listdir(extract)):
        root = os.path.join(extract, pkg)
        if pkg.startswith(".") or not os.path.isdir(root):
            continue
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for fn in sorted(fns):
                full = os.path.join(dp, fn)
                rel = os.path.relpath(full, root)
                low = fn.lower()
                if low.endswith(IMAGE_EXT):
                    out.append((pkg, rel, ("file", full)))
                elif low.endswith(".rcc"):
                    for rpath, raw in read_rcc(full):
                        if rpath.lower().endswith(IMAGE_EXT):
                            out.append((pkg, rel + ":" + rpath, ("bytes", raw)))
    return out


def open_image(opener):
    kind, v = opener
    img = Image.open(v if kind == "file" else io.BytesIO(v))
    img.seek(0)
    img = ImageOps.exif_transpose(img)
    return img


def to_rgba_or_rgb(img):
    """-> (RGB image, alpha uint8 array or None when fully opaque)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        a = np.asarray(rgba)[:, :, 3]
        if a.min() >= 250:
            return rgba.convert("RGB"), None
        return rgba, a
    return img.convert("RGB"), None


def n_colors(img):
    t = img.convert("RGBA").resize((64, 64), Image.BILINEAR)
    bg = Image.new("RGBA", t.size, (128, 128, 128, 255))
    arr = np.asarray(Image.alpha_composite(bg, t).convert("RGB")).reshape(-1, 3).astype(np.int32)
    return len(np.unique(arr[:, 0] * 65536 + arr[:, 1] * 256 + arr[:, 2]))


def select_sources(cands, args, log):
    groups = [(g, re.compile(pk), re.compile(pr), cap, re.compile(ex) if ex else None) for g, pk, pr, cap, ex in GROUPS]
    by_group = collections.defaultdict(list)
    rejected = collections.Counter()
    seen = {}
    for pkg, rel, opener in cands:
        grp = None
        for g, pk, pr, cap, ex in groups:
            if pk.search(pkg) and pr.search("/" + rel) and not (ex and ex.search("/" + rel)):
                grp = g
                break
        if grp is None:
            continue
        raw = open(opener[1], "rb").read() if opener[0] == "file" else opener[1]
        h = hashlib.sha1(raw).hexdigest()
        if h in seen:
            rejected[grp + ": duplicate file"] += 1
            continue
        try:
            img = open_image(("bytes", raw))
            img.load()
        except Exception:
            rejected[grp + ": does not decode"] += 1
            continue
        w, hh = img.size
        if min(w, hh) < args.min_side:
            rejected[grp + f": short side < {args.min_side}"] += 1
            continue
        if max(w, hh) / min(w, hh) > 4:
            rejected[grp + ": aspect > 4"] += 1
            continue
        _, alpha = to_rgba_or_rgb(img)
        if alpha is not None and (alpha > 127).mean() < 0.10:
            rejected[grp + ": < 10% opaque"] += 1
            continue
        nc = n_colors(img)
        if nc < args.min_colors:
            rejected[grp + f": < {args.min_colors} colours (flat art)"] += 1
            continue
        seen[h] = rel
        by_group[grp].append(dict(package=pkg, path=rel, group=grp, size=[w, hh],
                                  alpha=alpha is not None, sha1=h, opener=opener))
    sources = []
    for g, pk, pr, cap, ex in groups:
        items = sorted(by_group[g], key=lambda s: (s["package"], s["path"]))
        if cap is not None and len(items) > cap:
            rng = np.random.default_rng([args.seed, zlib.crc32(g.encode())])
            keep = sorted(rng.choice(len(items), cap, replace=False).tolist())
            rejected[g + ": over group cap (seeded subsample)"] += len(items) - cap
            items = [items[i] for i in keep]
        log(f"  {g:24s} eligible {len(by_group[g]):4d}  kept {len(items):4d}")
        sources.extend(items)
    for k, v in sorted(rejected.items()):
        log(f"    skipped {v:5d}  {k}")
    return sources


def split_key(src):
    for pat in SPLIT_KEYS:
        m = re.search(pat, "/" + src["path"])
        if m:
            return src["package"] + ":" + m.group(1)
    return src["package"] + ":" + src["path"]


def split_sources(sources, frac, seed):
    """Stratified by package: ~frac of each package's split keys go to validation."""
    keys_by_pkg = collections.defaultdict(set)
    for s in sources:
        pkgfam = "wesnoth-1.16" if s["package"].startswith("wesnoth-1.16-") else s["package"]
        s["family"] = pkgfam
        keys_by_pkg[pkgfam].add(split_key(s))
    val_keys = set()
    for fam in sorted(keys_by_pkg):
        keys = sorted(keys_by_pkg[fam])
        rng = np.random.default_rng([seed, zlib.crc32(("split:" + fam).encode())])
        n_val = max(1, int(round(frac * len(keys))))
        val_keys.update(keys[i] for i in rng.permutation(len(keys))[:n_val])
    for s in sources:
        s["split"] = "val" if split_key(s) in val_keys else "train"
    return sources


# --------------------------------------- crops ------------------------------------------
def random_color(rng):
    return tuple(int(x) for x in rng.integers(0, 256, 3))


def make_background(rng, w, h, photo_pool):
    r = rng.random()  # 1/3 solid colour, 1/3 linear gradient, 1/3 photo crop
    if r < 1 / 3:
        return Image.new("RGB", (w, h), random_color(rng)), "solid"
    if r < 2 / 3 or not photo_pool:
        c0 = np.array(random_color(rng), np.float32)
        c1 = np.array(random_color(rng), np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx / max(w - 1, 1) - 0.5) * np.cos(ang) + (yy / max(h - 1, 1) - 0.5) * np.sin(ang)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        arr = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB"), "gradient"
    photo = photo_pool[int(rng.integers(len(photo_pool)))]
    pw, ph = photo.size
    scale = max(w / pw, h / ph) * rng.uniform(1.0, 1.6)
    nw, nh = max(w, int(np.ceil(pw * scale))), max(h, int(np.ceil(ph * scale)))
    big = photo.resize((nw, nh), Image.BILINEAR)
    x0, y0 = int(rng.integers(0, nw - w + 1)), int(rng.integers(0, nh - h + 1))
    bg = big.crop((x0, y0, x0 + w, y0 + h))
    if rng.random() < 0.5:
        bg = bg.transpose(Image.FLIP_LEFT_RIGHT)
    return bg, "photo"


def crops_for_source(src, img, k, sizes, min_side, seed, photo_pool):
    """k crops of one source -> ({size: uint8 [k,size,size,3]}, [record])."""
    rng = np.random.default_rng([seed, zlib.crc32((src["package"] + ":" + src["path"]).encode())])
    rgb, alpha = to_rgba_or_rgb(img)
    out = {s: np.empty((k, s, s, 3), np.uint8) for s in sizes}
    recs = []
    for i in range(k):
        bgkind = None
        if alpha is not None:
            w, h = rgb.size
            m = max(w, h)
            pads = [int(rng.uniform(0, 0.25) * m) for _ in range(4)]  # left, top, right, bottom
            cw, ch = w + pads[0] + pads[2], h + pads[1] + pads[3]
            bg, bgkind = make_background(rng, cw, ch, photo_pool)
            canvas = bg.convert("RGBA")
            canvas.alpha_composite(rgb, (pads[0], pads[1]))
            base = canvas.convert("RGB")
        else:
            base = rgb
        W, H = base.size
        short = min(W, H)
        lo = min(1.0, max(0.3, min_side / short))
        side = max(1, int(round(short * rng.uniform(lo, 1.0))))
        x = int(rng.integers(0, W - side + 1))
        y = int(rng.integers(0, H - side + 1))
        sq = base.crop((x, y, x + side, y + side))
        flip = bool(rng.random() < 0.5)
        if flip:
            sq = sq.transpose(Image.FLIP_LEFT_RIGHT)
        for s in sizes:
            out[s][i] = center_crop_arr(sq, s)
        recs.append(dict(package=src["package"], path=src["path"], group=src["group"],
                         box=[x, y, side], canvas=[W, H], flip=flip, background=bgkind))
    return out, recs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="data cache dir (env STYLED_VQ_DATA; default %(default)s)")
    ap.add_argument("--size", type=int, nargs="+", default=[64],
                    help="output size(s) in px; several sizes share the same crops (default 64)")
    ap.add_argument("--crops", type=int, default=28000, help="total number of crops, both splits (default %(default)s)")
    ap.add_argument("--val-frac", type=float, default=0.05, help="fraction of sources for validation (default %(default)s)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed for everything (default %(default)s)")
    ap.add_argument("--min-side", type=int, default=96, help="min short side of a source in px (default %(default)s)")
    ap.add_argument("--min-colors", type=int, default=400,
                    help="min distinct colours in a 64x64 thumbnail (default %(default)s)")
    ap.add_argument("--n-png", type=int, default=16, help="validation crops to also save as PNG (default %(default)s)")
    ap.add_argument("--list-only", action="store_true", help="select and split sources, print the summary, write nothing")
    args = ap.parse_args(argv)

    t0 = time.time()
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    extract = os.path.join(args.cache, "extract")
    if not os.path.isdir(extract):
        sys.exit(f"{extract} not found: run training/data/fetch_packages.sh first")
    log(f"scanning {extract}")
    cands = list_candidates(extract)
    log(f"{len(cands)} image files; selecting sources")
    sources = select_sources(cands, args, log)
    split_sources(sources, args.val_frac, args.seed)

    # crops per source ~ sqrt(area) (bigger pictures hold more distinct crops), clipped to [0.5, 2] x median
    sq = np.array([np.sqrt(s["size"][0] * s["size"][1]) for s in sources])
    wgt = np.clip(sq / np.median(sq), 0.5, 2.0)
    raw = wgt / wgt.sum() * args.crops
    ks = np.floor(raw).astype(int)
    rem = args.crops - ks.sum()
    ks[np.argsort(-(raw - ks), kind="stable")[:rem]] += 1
    for s, k in zip(sources, ks):
        s["n_crops"] = int(k)

    fams = sorted({s["family"] for s in sources})
    log("\nsources and crops per package family:")
    log(f"  {'family':26s} {'src train':>9s} {'src val':>8s} {'crops train':>11s} {'crops val':>9s}")
    tot = collections.Counter()
    for f in fams:
        c = collections.Counter()
        for s in sources:
            if s["family"] == f:
                c["st" if s["split"] == "train" else "sv"] += 1
                c["ct" if s["split"] == "train" else "cv"] += s["n_crops"]
        tot.update(c)
        log(f"  {f:26s} {c['st']:9d} {c['sv']:8d} {c['ct']:11d} {c['cv']:9d}")
    log(f"  {'TOTAL':26s} {tot['st']:9d} {tot['sv']:8d} {tot['ct']:11d} {tot['cv']:9d}")
    if args.list_only:
        return

    # photo pools for transparent-source backgrounds, per split (no leakage across the split)
    pools = {"train": [], "val": []}
    for s in sources:
        if not s["alpha"] and s["group"] in ("endless-sky/land", "gcompris/photos", "wesnoth/story"):
            im = open_image(s["opener"]).convert("RGB")
            im.thumbnail((512, 512), Image.BILINEAR)
            pools[s["split"]].append(im)
    log(f"\nbackground photo pools: train {len(pools['train'])}, val {len(pools['val'])}")

    sizes = sorted(set(args.size))
    res = {sp: {"arr": {z: [] for z in sizes}, "rec": []} for sp in ("train", "val")}
    for n, s in enumerate(sources):
        img = open_image(s["opener"])
        img.load()
        arrs, recs = crops_for_source(s, img, s["n_crops"], sizes, args.min_side, args.seed, pools[s["split"]])
        for z in sizes:
            res[s["split"]]["arr"][z].append(arrs[z])
        res[s["split"]]["rec"].extend(recs)
        if (n + 1) % 100 == 0:
            log(f"  {n + 1}/{len(sources)} sources, {time.time() - t0:.0f}s")

    # deterministic shuffle of the training crops (validation keeps source order)
    perm = {"train": np.random.default_rng([args.seed, 7]).permutation(len(res["train"]["rec"])),
            "val": np.arange(len(res["val"]["rec"]))}
    for z in sizes:
        outdir = os.path.join(args.cache, f"crops{z}")
        os.makedirs(outdir, exist_ok=True)
        for sp in ("train", "val"):
            arr = np.concatenate(res[sp]["arr"][z])[perm[sp]]
            np.save(os.path.join(outdir, f"{sp}.npy"), arr)
            recs = [res[sp]["rec"][i] for i in perm[sp]]
            with open(os.path.join(outdir, f"{sp}_sources.json"), "w") as f:
                json.dump(recs, f, separators=(",", ":"))
            log(f"wrote {outdir}/{sp}.npy {arr.shape} {arr.nbytes / 2**20:.1f} MiB")
            if sp == "val":
                pngdir = os.path.join(outdir, "val_png")
                os.makedirs(pngdir, exist_ok=True)
                for fn in os.listdir(pngdir):
                    if fn.endswith(".png"):
                        os.remove(os.path.join(pngdir, fn))
                # first crop of n_png different validation sources, spread over the packages
                firsts, seen = [], set()
                for i, r in enumerate(recs):
                    key = (r["package"], r["path"])
                    if key not in seen:
                        seen.add(key)
                        firsts.append(i)
                pick = [firsts[j] for j in np.linspace(0, len(firsts) - 1, min(args.n_png, len(firsts))).round().astype(int)]
                index = []
                for j, i in enumerate(pick):
                    name = f"val_{j:02d}.png"
                    Image.fromarray(arr[i]).save(os.path.join(pngdir, name))
                    index.append(dict(file=name, crop_index=int(i), **recs[i]))
                with open(os.path.join(pngdir, "index.json"), "w") as f:
                    json.dump(index, f, indent=1)
        manifest = dict(
            args=vars(args), size=z, seed=args.seed,
            counts={sp: len(res[sp]["rec"]) for sp in ("train", "val")},
            sources=[{k: v for k, v in s.items() if k != "opener"} for s in sources],
        )
        with open(os.path.join(outdir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=0)
    log(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
