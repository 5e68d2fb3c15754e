/**
 * Image quality against a reference, both 8-bit RGB of the same size.
 *
 * PSNR: 10 * log10(255^2 / MSE) over all pixels and channels (Infinity when identical).
 *
 * SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, the standard parameters): an 11x11 Gaussian
 * window with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, computed on each RGB channel
 * separately over the positions where the window fits entirely ("valid"), averaged over
 * the SSIM map and then over the three channels. This equals scikit-image's
 * `structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=255)`.
 */

export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`psnr: images differ in size (${a.length} vs ${b.length} values)`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  if (sum === 0) return Infinity;
  return 10 * Math.log10((255 * 255) / (sum / a.length));
}

const SSIM_WINDOW = 11;
const SSIM_SIGMA = 1.5;

function gaussian(size: number, sigma: number): Float64Array {
  const w = new Float64Array(size);
  const c = (size - 1) / 2;
  let total = 0;
  for (let i = 0; i < size; i++) {
    w[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    total += w[i];
  }
  for (let i = 0; i < size; i++) w[i] /= total;
  return w;
}

/** Separable 'valid' filtering of an h x w plane. */
function filterValid(src: Float64Array, w: number, h: number, k: Float64Array): Float64Array {
  const n = k.length;
  const ow = w - n + 1;
  const oh = h - n + 1;
  const tmp = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * src[y * w + x + i];
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * tmp[(y + i) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

function ssimPlane(x: Float64Array, y: Float64Array, w: number, h: number, k: Float64Array): number {
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  const n = x.length;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const mx = filterValid(x, w, h, k);
  const my = filterValid(y, w, h, k);
  const sxx = filterValid(xx, w, h, k);
  const syy = filterValid(yy, w, h, k);
  const sxy = filterValid(xy, w, h, k);
  let total = 0;
  for (let i = 0; i < mx.length; i++) {
    const vx = sxx[i] - mx[i] * mx[i];
    const vy = syy[i] - my[i] * my[i];
    const cxy = sxy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + C1) * (2 * cxy + C2)) / ((mx[i] ** 2 + my[i] ** 2 + C1) * (vx + vy + C2));
  }
  return total / mx.length;
}

/** Mean SSIM of two width x height RGB images (see the file comment for the exact definition). */
export function ssim(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  if (a.length !== b.length || a.length !== width * height * 3) {
    throw new Error(`ssim: expected two ${width}x${height} RGB images`);
  }
  // Images smaller than the window use the largest odd window that fits.
  let size = Math.min(SSIM_WINDOW, width, height);
  if (size % 2 === 0) size -= 1;
  const k = gaussian(size, SSIM_SIGMA);
  const pixels = width * height;
  let total = 0;
  for (let c = 0; c < 3; c++) {
    const x = new Float64Array(pixels);
    const y = new Float64Array(pixels);
    for (let i = 0; i < pixels; i++) {
      x[i] = a[i * 3 + c];
      y[i] = b[i * 3 + c];
    }
    total += ssimPlane(x, y, width, height, k);
  }
  return total / 3;
}
