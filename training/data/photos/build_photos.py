#!/usr/bin/env python3
"""Build the real-photo evaluation sets from the unpacked Debian packages.

Input : $STYLED_VQ_DATA/photos-extract/<package>/...   (made by fetch_photos.sh)
        photos.txt (which files, set, license, credit), packages.txt (pinned versions)
Output (in this folder, committed):
        photos64.npy  + photos64_sources.json    the "eval" photos, uint8 [N, 64, 64, 3]
        holdout64.npy + holdout64_sources.json   the "holdout" photos (acceptance only)
        contact_sheet.png                         every eval crop, 3x nearest neighbour
No contact sheet is written for the holdout set on purpose: it is the "photos not seen"
check, so nobody tuning a model should look at it.

Every photo goes through styled_vq.preprocess.preprocess(path, size), the reference ADM
center crop that the CLI reproduces bit for bit (EXIF orientation applied, alpha dropped).
One crop per photo, no randomness: the output depends only on the files and on PIL.

The license recorded per photo is the one in photos.txt. The script also resolves the
license that the package's machine-readable copyright file gives for the path (DEP-5,
last matching stanza wins) and stores it as `debian_copyright`; where that comes from a
path-specific stanza, it must equal the photos.txt license (checked).

Usage: python3 -m training.data.photos.build_photos [--size 64] [--check]
  --check  rebuild in memory and compare with the committed .npy/.json; exit 1 on change.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

# Run from the repository root as python3 -m training.data.photos.build_photos.
from styled_vq.paths import DATA_ROOT as DEFAULT_CACHE
from styled_vq.preprocess import load_rgb, preprocess
from training.data.source_licenses import parse_dep5, resolve

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)                      # training/data
SETS = {"eval": "photos", "holdout": "holdout"}

# installed-path prefix -> upstream path prefix used in the package's copyright file
SOURCE_PREFIX = {
    "mate-backgrounds": ("usr/share/backgrounds/mate/", ""),
    "lomiri-wallpapers-16.04": ("usr/share/backgrounds/", "16.04/"),
    "lomiri-wallpapers-20.04": ("usr/share/backgrounds/", "20.04/"),
    "plasma-workspace-wallpapers": ("usr/share/wallpapers/", ""),
    "lxqt-themes": ("usr/share/lxqt/", ""),
}


def read_pins(path):
    pins = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            pkg, ver = line.split("=", 1)
            pins[pkg] = ver
    return pins


def read_list(path):
    rows = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        if len(f) != 5 or f[0] not in SETS:
            raise SystemExit(f"photos.txt:{n}: want 5 tab-separated fields, set in {list(SETS)}: {line!r}")
        rows.append(dict(set=f[0], package=f[1], path=f[2], license=f[3], credit=f[4]))
    return rows


def debian_license(cache, pkg, path, stanzas_cache):
    if pkg not in stanzas_cache:
        cr = os.path.join(cache, "photos-extract", pkg, "usr/share/doc", pkg, "copyright")
        # lstrip: plasma-workspace-wallpapers' copyright starts with a blank line
        stanzas_cache[pkg] = parse_dep5(open(cr, encoding="utf-8", errors="replace").read().lstrip())
    st = stanzas_cache[pkg]
    if st is None:
        return "(copyright file not machine-readable)"
    a, b = SOURCE_PREFIX.get(pkg, ("", ""))
    lic = resolve(st, b + path[len(a):] if path.startswith(a) else path) or "?"
    # matplotlib: `License:` with the text inline and no short name
    return lic.replace("(unnamed)", "inline license text")


def build(cache, size):
    pins = read_pins(os.path.join(HERE, "packages.txt"))
    training = read_pins(os.path.join(DATA, "packages.txt"))
    rows = read_list(os.path.join(HERE, "photos.txt"))
    out = {s: ([], []) for s in SETS}
    seen, stanzas = {}, {}
    for r in rows:
        pkg, path = r["package"], r["path"]
        if pkg in training:
            raise SystemExit(f"{pkg} is a training package")
        if pkg not in pins:
            raise SystemExit(f"{pkg} is not pinned in photos/packages.txt")
        full = os.path.join(cache, "photos-extract", pkg, path)
        raw = open(full, "rb").read()
        sha = hashlib.sha256(raw).hexdigest()
        if sha in seen:
            raise SystemExit(f"{pkg}/{path} is byte-identical to {seen[sha]}")
        seen[sha] = f"{pkg}/{path}"
        with Image.open(full) as im:
            mode, stored = im.mode, list(im.size)
            orient = int(im.getexif().get(0x0112, 1))
            alpha_min = int(np.asarray(im.convert("RGBA"))[..., 3].min())
        if alpha_min < 255:
            raise SystemExit(f"{pkg}/{path} has transparent pixels; pick opaque photos only")
        rgb = load_rgb(full)
        crop = preprocess(full, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        deb = debian_license(cache, pkg, path, stanzas)
        if "package default" not in deb and not deb.startswith("(") and deb != r["license"]:
            raise SystemExit(f"{pkg}/{path}: photos.txt says {r['license']}, copyright file says {deb}")
        arrs, recs = out[r["set"]]
        recs.append(dict(index=len(recs), package=pkg, version=pins[pkg], path=path,
                         license=r["license"], credit=r["credit"], debian_copyright=deb,
                         sha256=sha, size=list(rgb.size), stored_size=stored, mode=mode,
                         exif_orientation=orient))
        arrs.append(crop)
    return {s: (np.stack(a), recs) for s, (a, recs) in out.items()}


def contact_sheet(arr, scale=3, cols=9, gap=2, label=12):
    n, s = arr.shape[0], arr.shape[1] * scale
    rows = (n + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (s + gap) + gap, rows * (s + gap + label) + gap), "white")
    d = ImageDraw.Draw(sheet)
    for i in range(n):
        x = gap + (i % cols) * (s + gap)
        y = gap + (i // cols) * (s + gap + label)
        sheet.paste(Image.fromarray(arr[i]).resize((s, s), Image.NEAREST), (x, y))
        d.text((x + 2, y + s), str(i), fill="black")
    return sheet


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    sets = build(args.cache, args.size)
    bad = 0
    for s, stem in SETS.items():
        arr, recs = sets[s]
        npy = os.path.join(HERE, f"{stem}{args.size}.npy")
        js = os.path.join(HERE, f"{stem}{args.size}_sources.json")
        if args.check:
            same = os.path.exists(npy) and np.array_equal(np.load(npy), arr) \
                and os.path.exists(js) and json.load(open(js, encoding="utf-8")) == recs
            print(f"{stem}{args.size}: {'unchanged' if same else 'DIFFERS'} ({len(recs)} photos)")
            bad += not same
            continue
        np.save(npy, arr)
        with open(js, "w", encoding="utf-8") as f:
            json.dump(recs, f, indent=1, ensure_ascii=False)
            f.write("\n")
        pk = sorted({r["package"] for r in recs})
        print(f"wrote {npy} {arr.shape} from {len(pk)} package(s): {', '.join(pk)}")
    if not args.check:
        sheet = os.path.join(HERE, "contact_sheet.png")
        contact_sheet(sets["eval"][0]).save(sheet, optimize=True)
        print(f"wrote {sheet}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
