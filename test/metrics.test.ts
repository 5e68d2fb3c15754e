/**
 * PSNR and SSIM. The pinned values come from an independent implementation of
 * scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=255, channel_axis=2) in scipy
 * (gaussian_filter with truncate=3.5, border of 5 cropped), on the same image pair.
 */
import { psnr, ssim } from '../src/metrics/quality';

const W = 20;
const H = 16;
const a = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 7919) % 256);
const b = Uint8Array.from(a, (v, i) => Math.min(255, Math.max(0, v + ((i * 31) % 41) - 20)));

describe('quality metrics', () => {
  test('identical images: PSNR is Infinity, SSIM is 1', () => {
    expect(psnr(a, a)).toBe(Infinity);
    expect(ssim(a, a, W, H)).toBeCloseTo(1, 12);
  });

  test('matches the reference implementation', () => {
    expect(psnr(a, b)).toBeCloseTo(26.867223101691838, 10);
    expect(ssim(a, b, W, H)).toBeCloseTo(0.9871836364467712, 10);
    expect(ssim(b, a, W, H)).toBeCloseTo(ssim(a, b, W, H), 12);
  });

  test('refuses mismatched sizes', () => {
    expect(() => psnr(a, a.subarray(3))).toThrow(/differ in size/);
    expect(() => ssim(a, b, W + 1, H)).toThrow(/expected two 21x16 RGB images/);
  });
});
