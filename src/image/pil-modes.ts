/**
 * Pixel-mode conversions that copy Pillow 9.4 (libImaging/Convert.c, AlphaComposite.c)
 * integer arithmetic exactly, so that decoded pixels match `training/styled_vq/preprocess.py`
 * `load_rgb` before any resampling happens.
 */

/** Pillow's MULDIV255: a * b / 255, rounded, with integer ops only. */
const muldiv255 = (a: number, b: number): number => {
  const tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
};

/**
 * CMYK (not inverted: 0 = no ink) to RGB as Pillow's `cmyk2rgb`:
 * nk = 255 - K; R = clip(nk - C * nk / 255). No ICC profile is involved on the PIL side
 * (sharp would convert through a CMYK profile, which is why we ask it for raw CMYK).
 * An optional 5th band (alpha) is passed through.
 */
export function cmykToRgb(src: Uint8Array, pixels: number, srcChannels: 4 | 5): RgbaPixelsData {
  const outCh = srcChannels === 5 ? 4 : 3;
  const out = new Uint8Array(pixels * outCh);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += srcChannels, o += outCh) {
    const nk = 255 - src[s + 3];
    out[o] = clip8(nk - muldiv255(src[s], nk));
    out[o + 1] = clip8(nk - muldiv255(src[s + 1], nk));
    out[o + 2] = clip8(nk - muldiv255(src[s + 2], nk));
    if (outCh === 4) out[o + 3] = src[s + 4];
  }
  return { data: out, channels: outCh };
}

export interface RgbaPixelsData {
  data: Uint8Array;
  channels: 3 | 4;
}

const clip8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * 16-bit samples to 8 bits by keeping the high byte (v >> 8). This is what Pillow does for
 * 16-bit RGB/RGBA/LA PNGs (raw modes "RGB;16B" etc.) and what preprocess.py does explicitly
 * for 16-bit greyscale (mode "I", which PIL's own convert would clip at 255 instead).
 * Grey (1 band) and grey+alpha (2 bands) are widened to RGB/RGBA by replication, as PIL's
 * L -> RGB does.
 */
export function sixteenBitToRgb(src: Uint16Array, pixels: number, srcChannels: 1 | 2 | 3 | 4): RgbaPixelsData {
  const hasAlpha = srcChannels === 2 || srcChannels === 4;
  const outCh = hasAlpha ? 4 : 3;
  const out = new Uint8Array(pixels * outCh);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += srcChannels, o += outCh) {
    if (srcChannels <= 2) {
      const g = src[s] >> 8;
      out[o] = g;
      out[o + 1] = g;
      out[o + 2] = g;
      if (hasAlpha) out[o + 3] = src[s + 1] >> 8;
    } else {
      out[o] = src[s] >> 8;
      out[o + 1] = src[s + 1] >> 8;
      out[o + 2] = src[s + 2] >> 8;
      if (hasAlpha) out[o + 3] = src[s + 3] >> 8;
    }
  }
  return { data: out, channels: outCh };
}

/** RGBA -> RGB keeping the colour under transparent pixels: PIL's default `convert('RGB')`. */
export function dropAlpha(src: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += 4, o += 3) {
    out[o] = src[s];
    out[o + 1] = src[s + 1];
    out[o + 2] = src[s + 2];
  }
  return out;
}

/**
 * RGBA over an opaque background, as `Image.alpha_composite(Image.new('RGBA', size, bg+(255,)), im)`
 * followed by convert('RGB'). Pillow's AlphaComposite.c integer version (7 extra bits of
 * precision, divisions by 255 done with the shift trick) is reproduced literally; with an
 * opaque background outA is always 255, so only the colour math matters.
 */
export function compositeOnBackground(
  src: Uint8Array,
  pixels: number,
  background: readonly [number, number, number],
): Uint8Array {
  const PB = 7;
  const shiftForDiv255 = (a: number): number => ((a >>> 8) + a) >>> 8;
  const out = new Uint8Array(pixels * 3);
  const [br, bg, bb] = background;
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += 4, o += 3) {
    const a = src[s + 3];
    if (a === 0) {
      out[o] = br;
      out[o + 1] = bg;
      out[o + 2] = bb;
      continue;
    }
    const blend = 255 * (255 - a); // dst alpha is 255
    const outa255 = a * 255 + blend;
    // All intermediates are < 2^32 as in C's UINT32, and exact in doubles.
    const coef1 = Math.floor((a * 255 * 255 * (1 << PB)) / outa255);
    const coef2 = 255 * (1 << PB) - coef1;
    const half = 0x80 << PB;
    out[o] = shiftForDiv255(src[s] * coef1 + br * coef2 + half) >>> PB;
    out[o + 1] = shiftForDiv255(src[s + 1] * coef1 + bg * coef2 + half) >>> PB;
    out[o + 2] = shiftForDiv255(src[s + 2] * coef1 + bb * coef2 + half) >>> PB;
  }
  return out;
}
