/**
 * uint8 RGB <-> the models' float32 tensors: [B, 3, H, W] (CHW), values in [-1, 1].
 * Pure JS (no sharp): these run once per batch on the hot path.
 */
import { usageError } from '../errors';

/**
 * x -> float32(float32(x) / 127.5) - 1, the exact float32 value of preprocess.py's
 * `arr.astype(np.float32) / 127.5 - 1.0` (NumPy keeps float32 for a Python-float operand).
 * Doing the division and the subtraction in double and rounding each to float32 gives the
 * correctly rounded float32 result, so a 256-entry table is exact.
 */
const TO_MODEL = (() => {
  const lut = new Float32Array(256);
  for (let x = 0; x < 256; x++) lut[x] = Math.fround(x / 127.5) - 1;
  return lut;
})();

/** Stacks size x size HWC RGB images into one [B, 3, size, size] float32 tensor in [-1, 1]. */
export function toModelInput(images: readonly Uint8Array[], size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(images.length * 3 * plane);
  images.forEach((rgb, b) => {
    if (rgb.length !== plane * 3) {
      throw usageError(`Expected ${plane * 3} bytes (${size}x${size} RGB) for image ${b} but received ${rgb.length}`);
    }
    const base = b * 3 * plane;
    for (let i = 0, p = 0; i < plane; i++, p += 3) {
      out[base + i] = TO_MODEL[rgb[p]];
      out[base + plane + i] = TO_MODEL[rgb[p + 1]];
      out[base + 2 * plane + i] = TO_MODEL[rgb[p + 2]];
    }
  });
  return out;
}

/**
 * float32 value from the decoder -> 0..255, in float32 like
 * `np.rint((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)` on a float32 array:
 * clamp first (the decoder is unbounded), then scale, then round half to even.
 * NaN maps to 0 (NumPy's cast of NaN is undefined; a fixed value keeps output deterministic).
 */
function toByte(x: number): number {
  if (!(x > -1)) return 0; // x <= -1, or NaN
  if (x >= 1) return 255;
  const v = Math.fround(Math.fround(x + 1) * 127.5);
  const f = Math.floor(v);
  const d = v - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  return r > 255 ? 255 : r;
}

/**
 * Image `index` of a [B, 3, height, width] float32 decoder output -> HWC RGB bytes.
 */
export function fromModelOutput(output: Float32Array, width: number, height: number, index = 0): Uint8Array {
  const plane = width * height;
  const base = index * 3 * plane;
  if (!(Number.isInteger(index) && index >= 0) || base + 3 * plane > output.length) {
    throw usageError(
      `Expected image index ${index} of a [B, 3, ${height}, ${width}] tensor but the data holds ${output.length} ` +
        `values`,
    );
  }
  const out = new Uint8Array(plane * 3);
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[p] = toByte(output[base + i]);
    out[p + 1] = toByte(output[base + plane + i]);
    out[p + 2] = toByte(output[base + 2 * plane + i]);
  }
  return out;
}
