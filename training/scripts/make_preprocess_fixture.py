#!/usr/bin/env python3
"""Build the preprocessing parity fixture: test/fixtures/images/ + expected/ outputs.

Two steps:

1. Only with --make-images: write a varied set of input images (sizes from 1x1 to 4.5 MP, portrait
   and landscape, RGBA with colour under transparent pixels, greyscale, 16-bit, palette
   with and without transparency, CMYK, ICC-tagged, EXIF-rotated, animated GIF, WebP)
   from real photographs. The photos come from Debian's endless-sky-data package:

       apt-get download endless-sky-data && dpkg -x endless-sky-data_*.deb /tmp/es
       python3 -m training.scripts.make_preprocess_fixture --make-images \
           --photos /tmp/es/usr/share/games/endless-sky/images/land

2. Always: run the reference `styled_vq.preprocess.preprocess` (Pillow) over every image
   in test/fixtures/images/ at sizes 64 and 256 (plus one tie-rounding case at 100), with
   alpha "drop" and, for images with transparency, "composite" on a coloured background
   (and white at 64); write each result as a lossless 8-bit RGB WebP, plus
   expected/manifest.json, which also holds the float32 model-tensor reference values.

test/preprocess.test.ts asserts that src/image/ reproduces every expected output exactly.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from styled_vq.preprocess import load_rgb, preprocess, to_model_input  # run as python3 -m training.scripts.make_preprocess_fixture

REPO = Path(__file__).resolve().parents[2]

FIXTURE = REPO / "test" / "fixtures" / "images"
EXPECTED = FIXTURE / "expected"
SIZES = (64, 256)
# Composite backgrounds per size (fewer at 256 to keep the fixture small).
BACKGROUNDS = {64: ((255, 255, 255), (30, 120, 200)), 256: ((30, 120, 200),)}
# Extra sizes: 45x40 at 100 gives a bicubic width of exactly 112.5, which Python's round()
# takes to 112 (half-to-even) where Math.round would give 113.
EXTRA_SIZES = {"tie_round_45x40.png": (100,)}


# ----------------------------------------------------------------------------- helpers

def photo(photos: Path, name: str) -> Image.Image:
    return Image.open(photos / f"{name}.jpg").convert("RGB")


def adobe_rgb_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with Adobe RGB (1998) primaries.

    Hand-built so no profile file is needed; lcms (inside sharp) accepts it, and converting
    through it changes pixels, which is what the fixture must show Pillow does NOT do.
    """
    def s15(v: float) -> bytes:
        return struct.pack(">i", int(round(v * 65536)))

    def xyz(x, y, z):
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    def curv(gamma):
        return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"

    def desc(text):
        a = text.encode("ascii") + b"\0"
        return b"desc" + b"\0" * 4 + struct.pack(">I", len(a)) + a + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67

    def text(t):
        return b"text" + b"\0" * 4 + t.encode("ascii") + b"\0"

    tags = [
        (b"desc", desc("styled-vq test Adobe RGB (1998)")),
        (b"cprt", text("No copyright, test data")),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", xyz(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", xyz(0.14919, 0.06322, 0.74457)),
        (b"rTRC", curv(563 / 256)),
        (b"gTRC", curv(563 / 256)),
        (b"bTRC", curv(563 / 256)),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while len(body) % 4:
            body += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntr" + b"RGB " + b"XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 8
        + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def write_png16(path: Path, arr: np.ndarray, trns_grey: int | None = None) -> None:
    """16-bit PNG that Pillow cannot write: RGB/RGBA (HxWx3|4), or grey (HxW) with a tRNS key."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    colour_type = {1: 0, 3: 2, 4: 6}[c]
    # PNG filter 2 ("Up") on every row: photos compress far better than unfiltered.
    rows = np.frombuffer(arr.astype(">u2").tobytes(), np.uint8).reshape(h, -1)
    up = rows.copy()
    up[1:] = rows[1:] - rows[:-1]  # uint8 arithmetic wraps mod 256, as PNG specifies
    raw = b"".join(b"\2" + up[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
    if trns_grey is not None:
        png += chunk(b"tRNS", struct.pack(">H", trns_grey))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def exif_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# ----------------------------------------------------------------------------- inputs

def make_images(photos: Path) -> None:
    FIXTURE.mkdir(parents=True, exist_ok=True)
    out = FIXTURE

    # Several megapixels: a 4x5 mosaic of 720x360 photos, cropped to 2500x1800 (4:2:0, q75).
    names = ["beach0", "city0", "canyon3", "desert2", "badlands4", "bwerner2", "city5", "beach4",
             "canyon1", "city9", "desert5", "beach2", "badlands1", "city3", "canyon6", "beach7-sfiera",
             "desert7", "city12", "badlands7", "canyon8"]
    mosaic = Image.new("RGB", (2880, 1800))
    for i, n in enumerate(names):
        mosaic.paste(photo(photos, n), ((i % 4) * 720, (i // 4) * 360))
    mosaic.crop((190, 0, 2690, 1800)).save(out / "large_2500x1800.jpg", quality=75)

    # Untouched originals: progressive 4:4:4, baseline 4:2:0 and 4:2:2 encodes from elsewhere.
    for n, target in (("beach0", "orig_progressive_720x360.jpg"), ("city0", "orig_420_720x360.jpg"),
                      ("bwerner2", "orig_422_720x360.jpg")):
        (out / target).write_bytes((photos / f"{n}.jpg").read_bytes())

    base = photo(photos, "canyon3")
    # Portrait with odd sides (odd box halvings, non-integer bicubic scale).
    base.crop((100, 0, 333, 360)).resize((333, 517), Image.LANCZOS).save(out / "portrait_333x517.jpg", quality=90)
    # Tiny inputs: upscaled by the bicubic step.
    photo(photos, "city5").resize((20, 30), Image.LANCZOS).save(out / "small_20x30.png")
    photo(photos, "desert2").resize((1, 1), Image.BOX).save(out / "tiny_1x1.png")
    photo(photos, "beach4").resize((45, 40), Image.LANCZOS).save(out / "tie_round_45x40.png")

    # RGBA with real colour under fully transparent pixels (PIL keeps it; sharp's resize would not).
    rgb = photo(photos, "city9").crop((0, 0, 400, 240))
    yy, xx = np.mgrid[0:240, 0:400]
    alpha = np.clip((xx - 100) * 255 // 200, 0, 255).astype(np.uint8)
    alpha[(yy - 120) ** 2 + (xx - 300) ** 2 < 40 ** 2] = 0
    alpha[:, 370:] = 128
    rgba = Image.fromarray(np.dstack([np.asarray(rgb), alpha]), "RGBA")
    rgba.save(out / "rgba_colour_under_alpha_400x240.png")

    grey = photo(photos, "badlands4").convert("L")
    grey.crop((0, 0, 480, 320)).save(out / "grey_480x320.jpg", quality=90)
    la = Image.merge("LA", (grey.crop((0, 0, 300, 200)), Image.fromarray(alpha[:200, 50:350])))
    la.save(out / "grey_alpha_300x200.png")

    # 16-bit: v = hi * 256 + (255 - hi). Truncation (v >> 8 = hi, what PIL does) then differs
    # from rounding (round(v / 257)) on dark and bright pixels, and the data still compresses.
    def to16(hi: np.ndarray) -> np.ndarray:
        return (hi << 8) | (255 - hi)

    g8 = np.asarray(photo(photos, "desert5").convert("L").crop((0, 0, 320, 240)), dtype=np.uint16)
    Image.fromarray(to16(g8), "I;16").save(out / "grey16_320x240.png")
    # 16-bit grey with a tRNS key: transparent exactly where the 16-bit value equals the key.
    k16 = to16(g8[:120, :160].copy())
    k16[k16 == 4242] = 4243
    k16[30:80, 40:120] = 4242
    write_png16(out / "grey16_trns_160x120.png", k16, trns_grey=4242)
    c8 = np.asarray(photo(photos, "beach2").crop((100, 0, 280, 240)), dtype=np.uint16)
    c16 = to16(c8)
    write_png16(out / "rgb16_180x240.png", c16)
    a16 = np.repeat(np.linspace(0, 65535, 180).astype(np.uint16)[None, :], 240, axis=0)
    write_png16(out / "rgba16_180x240.png", np.dstack([c16, a16]))

    pal_src = photo(photos, "bwerner2").crop((0, 0, 360, 240))
    pal_src.quantize(256).save(out / "palette_360x240.png")
    pal = pal_src.quantize(64)
    trns = bytes(255 if i % 4 else (0 if i % 8 == 0 else 100) for i in range(64))
    pal.save(out / "palette_trns_360x240.png", transparency=trns)

    # Transparency without an alpha band: RGB + tRNS key colour, greyscale GIF (PIL mode "L").
    keyed = np.asarray(photo(photos, "desert2").crop((0, 0, 200, 150))).copy()
    keyed[50:100, 40:120] = (12, 34, 56)
    Image.fromarray(keyed, "RGB").save(out / "rgb_trns_200x150.png", transparency=(12, 34, 56))
    gg = np.asarray(photo(photos, "canyon1").convert("L").crop((0, 0, 160, 120))).copy()
    gg[gg == 200] = 201
    gg[30:70, 30:90] = 200
    # optimize=False keeps the identity grey palette, so Pillow reopens it in mode "L".
    Image.fromarray(gg, "L").save(out / "grey_trns_160x120.gif", transparency=200, optimize=False)

    photo(photos, "city3").crop((0, 0, 400, 288)).convert("CMYK").save(out / "cmyk_400x288.jpg", quality=90)
    photo(photos, "canyon6").save(out / "adobergb_icc_720x360.jpg", quality=90, icc_profile=adobe_rgb_icc())

    # EXIF orientation: the stored pixels are landscape; a viewer shows them rotated.
    photo(photos, "beach7-sfiera").crop((0, 0, 480, 300)).save(
        out / "exif6_480x300.jpg", quality=90, exif=exif_with_orientation(6))
    photo(photos, "desert7").crop((0, 0, 480, 300)).save(
        out / "exif3_480x300.jpg", quality=90, exif=exif_with_orientation(3))
    photo(photos, "city12").crop((0, 0, 300, 200)).save(
        out / "exif8_300x200.jpg", quality=90, exif=exif_with_orientation(8))

    # Animated GIF; frame 0 has a transparent index whose palette colour is not black.
    frames = []
    for i, n in enumerate(("badlands7", "canyon8", "beach4")):
        q = photo(photos, n).crop((0, 0, 240, 160)).quantize(128)
        if i == 0:
            idx = np.asarray(q).copy()
            idx[40:90, 60:160] = 7
            q2 = Image.fromarray(idx, "P")
            q2.putpalette(q.getpalette())
            q = q2
        frames.append(q)
    frames[0].save(out / "animated_240x160.gif", save_all=True, append_images=frames[1:],
                   transparency=7, duration=120, loop=0, disposal=2)

    photo(photos, "city9").crop((100, 0, 600, 333)).save(out / "lossy_500x333.webp", quality=80)
    rgba.crop((50, 0, 350, 200)).save(out / "lossless_rgba_300x200.webp", lossless=True, exact=True)

    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"inputs: {len(list(out.iterdir()))} files, {total / 1e6:.2f} MB")


# ----------------------------------------------------------------------------- expected

def has_transparency(path: Path) -> bool:
    img = Image.open(path)
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info or img.mode.endswith("A")


def model_tensor_cases() -> dict:
    """float32 values for uint8 -> model input (to_model_input) and model output -> uint8.

    The output rule is np.rint((np.clip(x, -1, 1) + 1) * 127.5) in float32 (round half to
    even). Inputs include values whose scaled float32 lands exactly on k + 0.5.
    """
    lut = to_model_input(np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2))[0, 0]
    rng = np.random.default_rng(7)
    xs = [np.float32(v) for v in (-3.0, -1.0, -0.9999999, 0.0, 0.5, 0.9999999, 1.0, 2.5)]
    for k in range(0, 255, 3):
        c = np.float32((k + 0.5) / 127.5 - 1)
        for cand in (c, np.nextafter(c, np.float32(2)), np.nextafter(c, np.float32(-2))):
            if (cand + np.float32(1)) * np.float32(127.5) == np.float32(k + 0.5):
                xs.append(cand)
    xs += list(rng.uniform(-1.2, 1.2, 200).astype(np.float32))
    x = np.array(xs, dtype=np.float32)
    out = np.rint((np.clip(x, -1, 1) + np.float32(1)) * np.float32(127.5)).astype(np.uint8)
    return {
        "toModelInput": [float(v) for v in lut],
        "fromModelOutput": {"x": [float(v) for v in x], "expected": [int(v) for v in out]},
        "exactTies": int(sum(((v + np.float32(1)) * np.float32(127.5)) % 1 == 0.5 for v in x)),
    }


def make_expected() -> None:
    EXPECTED.mkdir(parents=True, exist_ok=True)
    for old in EXPECTED.glob("*.webp"):
        old.unlink()
    cases = []
    inputs = sorted(p for p in FIXTURE.iterdir() if p.is_file())
    for path in inputs:
        w, h = load_rgb(path).size
        for size in SIZES + EXTRA_SIZES.get(path.name, ()):
            alphas = [("drop", None)]
            if has_transparency(path):
                alphas += [("composite", bg) for bg in BACKGROUNDS.get(size, BACKGROUNDS[64])]
            for alpha, bg in alphas:
                arr = preprocess(path, size, alpha, bg if bg else (255, 255, 255))
                assert arr.shape == (size, size, 3) and arr.dtype == np.uint8, (path, arr.shape)
                tag = "drop" if bg is None else "bg%02x%02x%02x" % bg
                # Lossless WebP: exact like PNG, about 30% smaller.
                name = f"{path.stem}__{path.suffix[1:]}__{size}__{tag}.webp"
                Image.fromarray(arr, "RGB").save(EXPECTED / name, lossless=True, quality=100, method=6)
                cases.append({
                    "input": path.name,
                    "size": size,
                    "alpha": "drop" if bg is None else {"background": list(bg)},
                    "expected": name,
                    "originalWidth": w,
                    "originalHeight": h,
                    "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
                })
    manifest = {
        "generator": "training/scripts/make_preprocess_fixture.py",
        "reference": "styled_vq.preprocess.preprocess",
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "cases": cases,
        "modelTensor": model_tensor_cases(),
    }
    (EXPECTED / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in EXPECTED.iterdir())
    print(f"expected: {len(cases)} cases, {total / 1e6:.2f} MB")


def main() -> None:
    # Pillow nags about palette transparency given as bytes; that input is deliberate.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-images", action="store_true", help="(re)write the input images from --photos")
    ap.add_argument("--photos", type=Path, help="directory of endless-sky-data land/*.jpg photos")
    args = ap.parse_args()
    if args.make_images:
        if not args.photos or not args.photos.is_dir():
            ap.error("--make-images needs --photos DIR (see the docstring)")
        make_images(args.photos)
    # New inputs always need new expected outputs.
    make_expected()


if __name__ == "__main__":
    main()
