"""Image preprocessing shared by training, evaluation and the parity fixtures.

The recipe is ADM's center crop (guided-diffusion `center_crop_arr`), which the research
code used: box-halve while the short side is >= 2x the target, bicubic-resize the short
side to the target (sizes rounded half-to-even, as Python's round), center-crop at floor
offsets. The TypeScript side (src/image/) reproduces this bit for bit; change both together.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def load_rgb(path_or_file, alpha: str = "drop", background=(255, 255, 255)) -> Image.Image:
    """Open an image as 8-bit RGB: first frame, EXIF orientation applied, ICC ignored.

    alpha="drop" is what PIL's convert('RGB') does (the colour under transparent pixels is
    kept); alpha="composite" blends onto `background` first.
    """
    img = Image.open(path_or_file)
    img.seek(0)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: PIL's convert('RGB') clips instead of scaling; keep the high byte
        # (what PIL does for 16-bit RGB/RGBA/LA PNGs). A tRNS key becomes an alpha band here,
        # because the 8-bit image can no longer tell the key value apart.
        arr = np.asarray(img, dtype=np.uint32)
        trns = img.info.get("transparency")
        img = Image.fromarray((arr >> 8).astype(np.uint8), "L")
        if trns is not None:
            img.putalpha(Image.fromarray(np.where(arr == trns, 0, 255).astype(np.uint8), "L"))
    if alpha == "composite" and _has_transparency(img):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(bg, rgba)
    return img.convert("RGB")


def _has_transparency(img: Image.Image) -> bool:
    """An alpha band, or a tRNS/GIF transparent key ("transparency" in info) in any mode:
    P, but also L (greyscale GIFs and PNGs) and RGB (PNG tRNS colour key). convert('RGBA')
    turns each of these into the alpha a decoder such as libvips reports."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def center_crop_arr(pil_image: Image.Image, image_size: int) -> np.ndarray:
    """ADM center crop -> uint8 [image_size, image_size, 3]."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def to_model_input(arr: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW in [-1, 1]."""
    return (arr.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def preprocess(path_or_file, image_size: int, alpha: str = "drop", background=(255, 255, 255)) -> np.ndarray:
    return center_crop_arr(load_rgb(path_or_file, alpha, background), image_size)
