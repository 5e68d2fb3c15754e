/**
 * The shipped default model (models/DEFAULT), end to end in ONNX Runtime: it must load
 * and verify, and its 36 tokens must carry real information about the image — a
 * reconstruction clearly better than the image's own mean colour (what a model that
 * ignores its input would give at best) on the shipped example photos.
 */
import * as path from 'path';
import { defaultModelDir, Model, psnr, reconstruct } from '../src';

const EXAMPLES = ['pier.jpg', 'glacier.jpg'].map((f) => path.join(__dirname, '..', 'examples', f));

function meanColourPsnr(rgb: Uint8Array): number {
  const mean = [0, 0, 0];
  for (let i = 0; i < rgb.length; i++) mean[i % 3] += rgb[i];
  const n = rgb.length / 3;
  const flat = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) flat[i] = Math.round(mean[i % 3] / n);
  return psnr(rgb, flat);
}

describe('shipped default model', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(defaultModelDir(), { device: 'cpu' });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  test('is a trained package, not the test fixture', () => {
    expect(model.manifest.name).not.toMatch(/fixture/);
    expect((model.manifest.training as Record<string, unknown>).weights).not.toBe('random');
  });

  test.each(EXAMPLES)('reconstructs %s through 36 tokens better than its mean colour', async (file) => {
    const r = await reconstruct(model, file);
    expect(r.tokens).toHaveLength(36);
    const baseline = meanColourPsnr(r.input.rgb);
    expect(r.psnr).toBeGreaterThan(baseline + 2);
    expect(r.ssim).toBeGreaterThan(0.2);
  });
});
