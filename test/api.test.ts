/**
 * The library on the fixture package with real ONNX Runtime: deterministic tokens (across
 * runs, batch sizes and model instances), encode -> decode shapes and ranges, error
 * records, record validation, reconstruct metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeLatents, decodeRecords, decodeTokens } from '../src/api/decode';
import { encodeImage, encodeImages } from '../src/api/encode';
import { dequantizeTokens, quantizeLatents } from '../src/api/quantize';
import { reconstruct } from '../src/api/reconstruct';
import { DEFAULTS, defaultBatchSize } from '../src/defaults';
import { StyledVqError } from '../src/errors';
import { Model } from '../src/model/model';
import { isErrorRecord, type TokenRecord } from '../src/tokens/record';
import { EXAMPLES, FIXTURE_MODEL } from './helpers/fixtures';
import { pngOf } from './helpers/cli';

const PIER = join(EXAMPLES, 'pier.jpg');
const GLACIER = join(EXAMPLES, 'glacier.jpg');
const GRADIENT = { source: 'gradient.png', data: pngOf(90, 70) };
const INPUTS = [PIER, GLACIER, GRADIENT, PIER, GLACIER];

let model: Model;
beforeAll(async () => {
  model = await Model.load(FIXTURE_MODEL, { device: 'cpu' });
});
afterAll(() => model.dispose());

const tokensOf = (records: unknown[]) => (records as TokenRecord[]).map((r) => r.tokens);

describe('encode', () => {
  test('same image -> same tokens across runs, batch sizes and model instances', async () => {
    const one = await Promise.all(INPUTS.map((i) => encodeImage(model, i)));
    for (const batchSize of [1, 2, 5, 8]) {
      const { records } = await encodeImages(model, INPUTS, { batchSize });
      expect(tokensOf(records)).toEqual(one.map((r) => r.tokens));
    }
    const again = await Model.load(FIXTURE_MODEL, { device: 'cpu', threads: 1 });
    try {
      const { records } = await encodeImages(again, INPUTS, { batchSize: 3 });
      expect(tokensOf(records)).toEqual(one.map((r) => r.tokens));
    } finally {
      await again.dispose();
    }
    expect(one[0].tokens).toEqual(one[3].tokens);
    expect(one[0].tokens).not.toEqual(one[1].tokens);
  });

  test('records carry the model, source, size, tokens in range, and latents on request', async () => {
    const { records, execution } = await encodeImages(model, [PIER, readFileSync(GLACIER)], { latents: true });
    expect(execution).toEqual({ device: 'cpu', provider: 'cpu' });
    const [a, b] = records as TokenRecord[];
    expect(a).toMatchObject({
      format: 'styled-vq-tokens',
      version: 1,
      model: { name: 'fixture-tiny', fingerprint: model.fingerprint },
      source: PIER,
      original_size: [720, 360],
    });
    expect(b.source).toBe('<buffer>');
    for (const r of [a, b]) {
      expect(r.tokens).toHaveLength(36);
      expect(r.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 1024)).toBe(true);
      expect(r.latents).toHaveLength(36);
      expect(r.latents!.every((row) => row.length === 16 && row.every(Number.isFinite))).toBe(true);
    }
  });

  test('the tokens are the quantized latents', async () => {
    const { records } = await encodeImages(model, [PIER], { latents: true });
    const rec = records[0] as TokenRecord;
    const latents = { data: Float32Array.from(rec.latents!.flat()), dims: [1, 36, 16] };
    expect(Array.from((await quantizeLatents(model, latents)).data)).toEqual(rec.tokens);
  });

  test('a bad input throws by default, or becomes an error record in place', async () => {
    const bad = { source: 'empty.png', data: new Uint8Array(0) };
    await expect(encodeImages(model, [PIER, bad])).rejects.toThrow(/empty\.png|empty/);
    const { records } = await encodeImages(model, [PIER, bad, GLACIER], { continueOnError: true, batchSize: 2 });
    expect(records.map((r) => isErrorRecord(r))).toEqual([false, true, false]);
    expect(records[1]).toMatchObject({ source: 'empty.png', model: { fingerprint: model.fingerprint } });
    expect((records[1] as { error: string }).error).toMatch(/empty/);
  });

  test('progress is reported per batch', async () => {
    const seen: number[] = [];
    await encodeImages(model, INPUTS, { batchSize: 2, onProgress: (done) => seen.push(done) });
    expect(seen).toEqual([2, 4, 5]);
  });

  test('without batchSize, the batch size suits the device the model runs on (CPU: 8; CUDA 64; WebGPU 32)', async () => {
    const seen: number[] = [];
    await encodeImages(model, [...INPUTS, ...INPUTS], { onProgress: (done) => seen.push(done) });
    expect(model.execution!.provider).toBe('cpu');
    expect(seen).toEqual([DEFAULTS.batchSizes.cpu.interactive, 10]);
    expect([
      defaultBatchSize('cuda'),
      defaultBatchSize('cuda', 'batch'),
      defaultBatchSize('webgpu'),
      defaultBatchSize(undefined, 'batch'),
    ]).toEqual([64, 256, 32, 32]);
  });

  test('bad options are usage errors', async () => {
    await expect(encodeImages(model, [PIER], { batchSize: 0 })).rejects.toThrow(
      'Expected positive integer for batchSize but received 0 of type number',
    );
  });
});

describe('decode', () => {
  test('tokens -> images of the model size; latents and tokens paths agree', async () => {
    const { records } = await encodeImages(model, [PIER, GLACIER]);
    const tokens = tokensOf(records);
    const images = await decodeTokens(model, tokens, { batchSize: 1 });
    expect(images).toHaveLength(2);
    for (const im of images) {
      expect(im.width).toBe(64);
      expect(im.height).toBe(64);
      expect(im.rgb).toHaveLength(64 * 64 * 3);
    }
    const batch = { data: Int32Array.from(tokens.flat()), dims: [2, 36] };
    const latents = await dequantizeTokens(model, batch);
    expect(latents.dims).toEqual([2, 36, 16]);
    const viaLatents = await decodeLatents(model, latents);
    expect(viaLatents.map((i) => Buffer.from(i.rgb))).toEqual(images.map((i) => Buffer.from(i.rgb)));
  });

  test('raw decoder output is finite, pixels are 0..255 (clamped)', async () => {
    const { records } = await encodeImages(model, [PIER]);
    const latents = await dequantizeTokens(model, {
      data: Int32Array.from((records[0] as TokenRecord).tokens),
      dims: [1, 36],
    });
    const raw = await model.decode(latents);
    expect(raw.dims).toEqual([1, 3, 64, 64]);
    expect(raw.data.every(Number.isFinite)).toBe(true);
    const [im] = await decodeLatents(model, latents);
    // Pixel (c, y, x) of the CHW output is byte (y * 64 + x) * 3 + c: clamped to [-1, 1], scaled, rounded.
    const plane = 64 * 64;
    let worst = 0;
    for (let i = 0; i < raw.data.length; i++) {
      const byte = im.rgb[(i % plane) * 3 + Math.floor(i / plane)];
      const clamped = Math.min(1, Math.max(-1, raw.data[i]));
      worst = Math.max(worst, Math.abs(byte - (clamped + 1) * 127.5));
    }
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-4);
    expect(new Set(im.rgb).size).toBeGreaterThan(10); // not a flat image
  });

  test('decodeRecords checks every record first: count, range, model', async () => {
    const rec = (await encodeImage(model, PIER)) as TokenRecord;
    const at = (record: TokenRecord, where = 'r.json') => [{ record, where }];
    await expect(decodeRecords(model, at({ ...rec, tokens: rec.tokens.slice(0, 35) }))).rejects.toThrow(
      'r.json: expected 36 tokens, found 35',
    );
    await expect(decodeRecords(model, at({ ...rec, tokens: [...rec.tokens.slice(1), 4096] }))).rejects.toThrow(
      /token 4096 at position 35/,
    );
    const other = { ...rec, model: { name: 'x', fingerprint: 'aaaaaaaaaaaaaaaa' } };
    const err = await decodeRecords(model, at(other)).catch((e) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.message).toContain('aaaaaaaaaaaaaaaa');
    expect(err.message).toContain(model.fingerprint);
    const forced = await decodeRecords(model, at(other), { force: true });
    expect(forced.images).toHaveLength(1);
    await expect(decodeRecords(model, at(rec), { useLatents: true })).rejects.toThrow(/has no latents/);
  });

  test('dequantize refuses ids outside the codebook', async () => {
    const ids = new Int32Array(36);
    ids[3] = 1024;
    await expect(model.dequantize({ data: ids, dims: [1, 36] })).rejects.toThrow(
      'Token id 1024 (image 0, position 3) is outside the codebook [0, 1024)',
    );
  });

  test('wrong shapes are refused before running', async () => {
    await expect(model.encode({ data: new Float32Array(3 * 32 * 32), dims: [1, 3, 32, 32] })).rejects.toThrow(
      'Expected images of shape [B,3,64,64] but received [1,3,32,32]',
    );
    await expect(model.decode({ data: new Float32Array(10), dims: [1, 36, 16] })).rejects.toThrow(
      /10 values do not fill shape/,
    );
  });
});

describe('reconstruct', () => {
  test('PSNR and SSIM against the preprocessed input', async () => {
    const r = await reconstruct(model, PIER);
    expect(r.input.rgb).toHaveLength(64 * 64 * 3);
    expect(r.output.rgb).toHaveLength(64 * 64 * 3);
    expect(r.tokens).toEqual((await encodeImage(model, PIER)).tokens);
    expect(r.psnr).toBeGreaterThan(0);
    expect(Number.isFinite(r.psnr)).toBe(true);
    expect(r.ssim).toBeGreaterThan(-1);
    expect(r.ssim).toBeLessThanOrEqual(1);
    expect(r.via).toBe('tokens');
    const c = await reconstruct(model, PIER, { continuous: true });
    expect(c.via).toBe('latents');
  });
});
