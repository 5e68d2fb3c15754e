/**
 * ADM's `center_crop_arr` (guided-diffusion), as in training/styled_vq/preprocess.py:
 *   while min(w, h) >= 2 * size: BOX-resize to (w // 2, h // 2)
 *   BICUBIC-resize so the short side becomes `size` (both sides round()ed half-to-even)
 *   crop size x size at floor offsets.
 * Resizes go through pil-resample.ts, so the result equals PIL's bit for bit.
 *
 * Images smaller than `size` (down to 1x1) are upscaled by the same bicubic step, as PIL
 * does; a 1x1 input becomes a flat square of its colour. We accept them rather than refuse:
 * the Python reference accepts them too, and refusing would make batch runs lossy.
 */
import { inputError } from '../errors';
import { pilResize } from './pil-resample';

/**
 * The most pixels the bicubic step may produce (48 MB of RGB). Within the input pixel limit a
 * tiny file can still be 4,000,000x1, which the short-side upscale would turn into
 * 256,000,000x64 (gigabytes, issue 15.14): such extreme aspect ratios are refused before
 * anything is allocated. With size 64 this allows aspect ratios up to 4096:1.
 */
export const MAX_RESAMPLED_PIXELS = 1 << 24;

/** Python 3's round() for the non-negative values we see: ties go to the even neighbour. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f; // exact in binary floating point
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The size centerCropArr's bicubic step makes (after the box halvings), from the input size alone. */
function resampledSize(width: number, height: number, size: number): [number, number] {
  let w = width;
  let h = height;
  while (Math.min(w, h) >= 2 * size) {
    w = Math.floor(w / 2);
    h = Math.floor(h / 2);
  }
  // Same double arithmetic as Python: scale = size / min(...); round(x * scale).
  const scale = size / Math.min(w, h);
  return [roundHalfEven(w * scale), roundHalfEven(h * scale)];
}

/**
 * Refuse an image whose aspect ratio would make the bicubic step exceed MAX_RESAMPLED_PIXELS.
 * Needs only the size, so decodeRgb runs it on the header's size before decoding any pixel.
 */
export function checkResampleSize(width: number, height: number, size: number): void {
  const [bw, bh] = resampledSize(width, height, size);
  if (bw * bh > MAX_RESAMPLED_PIXELS) {
    throw inputError(
      `image is ${width}x${height}, an aspect ratio too extreme to resize: its short side at ${size} would make ` +
        `${bw}x${bh} pixels, over the limit of ${MAX_RESAMPLED_PIXELS}`,
    );
  }
}

export function centerCropArr(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  checkResampleSize(width, height, size);
  let cur = rgb;
  let w = width;
  let h = height;
  while (Math.min(w, h) >= 2 * size) {
    const nw = Math.floor(w / 2);
    const nh = Math.floor(h / 2);
    cur = pilResize(cur, w, h, nw, nh, 'box');
    w = nw;
    h = nh;
  }
  const [bw, bh] = resampledSize(width, height, size);
  cur = pilResize(cur, w, h, bw, bh, 'bicubic');
  const cy = Math.floor((bh - size) / 2);
  const cx = Math.floor((bw - size) / 2);
  const out = new Uint8Array(size * size * 3);
  const rowBytes = size * 3;
  for (let y = 0; y < size; y++) {
    const from = ((cy + y) * bw + cx) * 3;
    out.set(cur.subarray(from, from + rowBytes), y * rowBytes);
  }
  return out;
}
