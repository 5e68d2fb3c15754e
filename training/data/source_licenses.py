#!/usr/bin/env python3
"""Resolve the license of every selected source image from its package's copyright file.

Reads $STYLED_VQ_DATA/crops<size>/manifest.json (written by build_crops.py) and the
unpacked /usr/share/doc/<pkg>/copyright files, writes source_licenses.json next to the
manifest and prints a markdown table (sources and crops per package and license).

Machine-readable (DEP-5) copyright files are resolved per file (last matching `Files:`
stanza wins, as the format specifies); a license that only comes from the catch-all
`Files: *` stanza is marked "(package default)". Wesnoth's copyright is free-form and declares
GPL-2+ for the whole game; it is reported as such. Installed paths are mapped back to the
upstream source paths that the copyright files use (see SOURCE_PREFIX); GCompris images
are stored in .rcc archives as .webp converted from .png/.jpg/.svg originals, so they are
matched on the stem.
"""
from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import re

from styled_vq.paths import DATA_ROOT as DEFAULT_CACHE  # run as python3 -m training.data.source_licenses

# installed-path prefix -> upstream path prefix used in the copyright file
SOURCE_PREFIX = {
    "endless-sky-data": ("usr/share/games/endless-sky/", ""),
    "naev-data": ("usr/share/naev/", ""),
    "tuxpaint-stamps-default": ("usr/share/tuxpaint/", ""),
    "stellarium-data": ("usr/share/stellarium/", ""),
}
WESNOTH_LICENSE = "GPL-2+"


def parse_dep5(text):
    """-> [(patterns, license short name)] or None when the file is not DEP-5."""
    if not text.startswith("Format:"):
        return None
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        files = lic = None
        lines = para.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Files:"):
                pats = line[6:].split()
                j = i + 1
                while j < len(lines) and lines[j].startswith((" ", "\t")):
                    pats += lines[j].split()
                    j += 1
                files = pats
            elif line.startswith("License:"):
                lic = line[8:].strip() or "(unnamed)"
        if files and lic:
            stanzas.append(([p[2:] if p.startswith("./") else p for p in files], lic))
    return stanzas


def resolve(stanzas, path, stem_match=False):
    lic = None
    for pats, l in stanzas:
        for p in pats:
            p = p.replace("//", "/")
            if fnmatch.fnmatchcase(path, p) or (
                    stem_match and fnmatch.fnmatchcase(os.path.splitext(path)[0], os.path.splitext(p)[0])):
                lic = l + (" (package default, Files: *)" if p == "*" else "")
    return lic


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    outdir = os.path.join(args.cache, f"crops{args.size}")
    man = json.load(open(os.path.join(outdir, "manifest.json")))
    crops_per = collections.Counter()
    for sp in ("train", "val"):
        for r in json.load(open(os.path.join(outdir, f"{sp}_sources.json"))):
            crops_per[(r["package"], r["path"])] += 1
    cache = {}
    rows = []
    for s in man["sources"]:
        pkg, path = s["package"], s["path"]
        if pkg not in cache:
            cr = os.path.join(args.cache, "extract", pkg, "usr/share/doc", pkg, "copyright")
            cache[pkg] = parse_dep5(open(cr, encoding="utf-8", errors="replace").read())
        st = cache[pkg]
        if pkg.startswith("wesnoth-1.16-"):
            lic = WESNOTH_LICENSE
        elif pkg == "gcompris-qt-data":
            inner = path.split(":", 1)[1]
            lic = resolve(st, inner[len("gcompris/"):] if inner.startswith("gcompris/") else inner, stem_match=True)
        else:
            a, b = SOURCE_PREFIX[pkg]
            lic = resolve(st, b + path[len(a):] if path.startswith(a) else path)
        rows.append(dict(package=pkg, path=path, group=s["group"], split=s["split"], license=lic or "?",
                         crops=crops_per[(pkg, path)]))
    with open(os.path.join(outdir, "source_licenses.json"), "w") as f:
        json.dump(rows, f, indent=0)
    tab = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        fam = "wesnoth-1.16-*" if r["package"].startswith("wesnoth-1.16-") else r["package"]
        tab[(fam, r["license"])][0] += 1
        tab[(fam, r["license"])][1] += r["crops"]
    print("| package | license (from copyright file) | sources | crops |")
    print("|---|---|---:|---:|")
    for (fam, lic), (n, c) in sorted(tab.items()):
        print(f"| {fam} | {lic} | {n} | {c} |")


if __name__ == "__main__":
    main()
