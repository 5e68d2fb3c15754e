/**
 * Prefix decoding, explain and mix as a library, on the fixture package (which has a
 * mean-latent prefix fill) with real ONNX Runtime: k = 36 is a plain decode, k = 0 is the
 * fill alone, mix K = 36 / K = 0 are A / B, and a package without a fill is refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeLatents, decodeTokens } from '../src/api/decode';
import { encodeImage } from '../src/api/encode';
import { explain } from '../src/api/explain';
import { evaluatePrefixLengths } from '../src/api/evaluate';
import { keepMask, mix, mixSweep, mixTokens, rangeMask } from '../src/api/mix';
import { decodePrefix, fillAfterPrefix, prefixFillOf } from '../src/api/prefix';
import { reconstruct } from '../src/api/reconstruct';
import { StyledVqError } from '../src/errors';
import { labelledGrid } from '../src/image/labelled-grid';
import { GRAPH_ROLES } from '../src/model/manifest';
import { Model } from '../src/model/model';
import { computeFingerprint } from '../src/model/verify';
import { copyFixtureModel, EXAMPLES, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

const PIER = join(EXAMPLES, 'pier.jpg');
const GLACIER = join(EXAMPLES, 'glacier.jpg');

let model: Model;
let a: number[];
let b: number[];
beforeAll(async () => {
  model = await Model.load(FIXTURE_MODEL, { device: 'cpu' });
  a = (await encodeImage(model, PIER)).tokens;
  b = (await encodeImage(model, GLACIER)).tokens;
});
afterAll(() => model.dispose());

/** What `fn` throws, as { kind, message }. */
async function failure(fn: () => unknown): Promise<{ kind: string; message: string }> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StyledVqError);
    return { kind: (err as StyledVqError).kind, message: (err as Error).message };
  }
  throw new Error('expected a failure');
}

describe('decodePrefix', () => {
  test('k = 36 equals a plain decode exactly; k = 0 is the all-fill image, whatever the tokens', async () => {
    const plain = await decodeTokens(model, [a, b]);
    const full = await decodePrefix(model, [a, b], 36);
    expect(full.map((i) => Buffer.from(i.rgb))).toEqual(plain.map((i) => Buffer.from(i.rgb)));

    const fill = prefixFillOf(model);
    const [fillImage] = await decodeLatents(model, { data: fill, dims: [1, 36, 16] });
    const [zeroA, zeroB] = await decodePrefix(model, [a, b], 0);
    expect(Buffer.from(zeroA.rgb)).toEqual(Buffer.from(fillImage.rgb));
    expect(Buffer.from(zeroB.rgb)).toEqual(Buffer.from(fillImage.rgb));
    // The fill is what model.json says, as float32.
    const values = JSON.parse(readFileSync(join(FIXTURE_MODEL, 'model.json'), 'utf8')).prefix_fill.values as number[][];
    expect(Array.from(fill)).toEqual(Array.from(Float32Array.from(values.flat())));
  });

  test('positions before k keep their latents, the rest become the fill; one k per image works', async () => {
    const latents = await model.dequantize({ data: Int32Array.from([...a, ...b]), dims: [2, 36] });
    const out = fillAfterPrefix(model, latents, [5, 30]);
    const fill = prefixFillOf(model);
    const row = 36 * 16;
    expect(Array.from(out.data.subarray(0, 5 * 16))).toEqual(Array.from(latents.data.subarray(0, 5 * 16)));
    expect(Array.from(out.data.subarray(5 * 16, row))).toEqual(Array.from(fill.subarray(5 * 16)));
    expect(Array.from(out.data.subarray(row, row + 30 * 16))).toEqual(
      Array.from(latents.data.subarray(row, row + 30 * 16)),
    );
    expect(Array.from(out.data.subarray(row + 30 * 16))).toEqual(Array.from(fill.subarray(30 * 16)));

    const both = await decodePrefix(model, [a, b], [5, 30]);
    const [five] = await decodePrefix(model, [a], 5);
    const [thirty] = await decodePrefix(model, [b], 30);
    expect(Buffer.from(both[0].rgb)).toEqual(Buffer.from(five.rgb));
    expect(Buffer.from(both[1].rgb)).toEqual(Buffer.from(thirty.rgb));
    expect(Buffer.from(five.rgb)).not.toEqual(Buffer.from(thirty.rgb));
  });

  test('k out of range is a usage error naming k', async () => {
    for (const k of [-1, 37, 1.5]) {
      expect(await failure(() => decodePrefix(model, [a], k))).toEqual({
        kind: 'usage',
        message: expect.stringMatching(/^Expected integer between 0 and 36 for k but received/),
      });
    }
    expect((await failure(() => decodePrefix(model, [a, b], [1, 40]))).message).toMatch(/for k\[1\]/);
  });

  test('a package without prefix_fill: one-line model error; its fingerprint is the v1 one', async () => {
    const tmp = tempDir();
    try {
      const dir = copyFixtureModel(tmp.dir);
      const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      delete manifest.prefix_fill;
      const hashes = Object.fromEntries(GRAPH_ROLES.map((r) => [r, { sha256: manifest.files[r].sha256 }]));
      manifest.fingerprint = computeFingerprint(hashes as never);
      // The fixture before it had a fill: token files made then still match a package without one.
      expect(manifest.fingerprint).toBe('52242a7d0fca2369');
      writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
      const old = await Model.load(dir, { device: 'cpu' });
      try {
        const f = await failure(() => decodePrefix(old, [a], 4));
        expect(f.kind).toBe('model');
        expect(f.message).toMatch(/has no prefix fill/);
        expect(f.message).not.toMatch(/\n/);
        expect((await failure(() => explain(old, PIER))).message).toMatch(/has no prefix fill/);
        // mix needs no fill: every position holds a real token.
        expect((await mix(old, a, b, keepMask(old, 4))).width).toBe(64);
      } finally {
        await old.dispose();
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe('explain', () => {
  test('one decode per k, with the PSNR / SSIM reconstruct reports at k = 36; deterministic', async () => {
    const r = await explain(model, PIER, { ks: [0, 1, 8, 36] });
    expect(r.steps.map((s) => s.k)).toEqual([0, 1, 8, 36]);
    expect(r.input).toMatchObject({ width: 64, height: 64 });
    const rec = await reconstruct(model, PIER);
    expect(r.tokens).toEqual(rec.tokens);
    expect(Buffer.from(r.steps[3].image.rgb)).toEqual(Buffer.from(rec.output.rgb));
    expect(r.steps[3].psnr).toBe(rec.psnr);
    expect(r.steps[3].ssim).toBe(rec.ssim);
    const again = await explain(model, PIER, { ks: [0, 1, 8, 36] });
    expect(again.steps.map((s) => [s.psnr, s.ssim])).toEqual(r.steps.map((s) => [s.psnr, s.ssim]));
    expect((await explain(model, PIER)).steps.map((s) => s.k)).toEqual([1, 2, 4, 8, 16, 36]);
  });

  test('bad ks: out of range, repeated, empty', async () => {
    expect((await failure(() => explain(model, PIER, { ks: [1, 37] }))).message).toMatch(/for ks\[1\]/);
    expect((await failure(() => explain(model, PIER, { ks: [4, 4] }))).message).toMatch(/without repeats for ks/);
    expect((await failure(() => explain(model, PIER, { ks: [] }))).kind).toBe('usage');
  });

  test('evaluate measures 0 and 36 always, sorted', () => {
    expect(evaluatePrefixLengths(model, [16, 1])).toEqual([0, 1, 16, 36]);
    expect(evaluatePrefixLengths(model)).toEqual([0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 36]);
  });
});

describe('mix', () => {
  test('K = 36 decodes A, K = 0 decodes B; the sweep has 37 images with those ends', async () => {
    const [decA, decB] = await decodeTokens(model, [a, b]);
    expect(Buffer.from((await mix(model, a, b, keepMask(model, 36))).rgb)).toEqual(Buffer.from(decA.rgb));
    expect(Buffer.from((await mix(model, a, b, keepMask(model, 0))).rgb)).toEqual(Buffer.from(decB.rgb));
    const sweep = await mixSweep(model, a, b);
    expect(sweep).toHaveLength(37);
    expect(Buffer.from(sweep[0].rgb)).toEqual(Buffer.from(decB.rgb));
    expect(Buffer.from(sweep[36].rgb)).toEqual(Buffer.from(decA.rgb));
    const [eight] = await decodeTokens(model, [[...a.slice(0, 8), ...b.slice(8)]]);
    expect(Buffer.from(sweep[8].rgb)).toEqual(Buffer.from(eight.rgb));
  });

  test('ranges: from A, from B, both (must partition), bad text', async () => {
    const t = mixTokens(a, b, rangeMask(model, '0-3,10'));
    expect(t.slice(0, 4)).toEqual(a.slice(0, 4));
    expect(t[10]).toBe(a[10]);
    expect(t.slice(4, 10)).toEqual(b.slice(4, 10));
    expect(rangeMask(model, undefined, '8-35')).toEqual(keepMask(model, 8));
    expect(rangeMask(model, '0-7', '8-35')).toEqual(keepMask(model, 8));
    expect((await failure(() => rangeMask(model, '0-8', '8-35'))).message).toMatch(/fromA and fromB both name 8:/);
    expect((await failure(() => rangeMask(model, '0-6', '8-35'))).message).toMatch(/leave 7 unnamed/);
    expect((await failure(() => rangeMask(model, '0-36'))).message).toMatch(/for fromA/);
    expect((await failure(() => rangeMask(model, '7-3'))).kind).toBe('usage');
    expect((await failure(() => keepMask(model, 37))).message).toMatch(/for keep/);
  });
});

describe('labelledGrid', () => {
  test('size from tiles, scale, columns and label lines; same input, same pixels', async () => {
    const tile = { rgb: new Uint8Array(4 * 3 * 3).fill(10), width: 4, height: 3 };
    const tiles = Array.from({ length: 5 }, (_, i) => ({ image: tile, label: ['k', String(i)] }));
    const g = await labelledGrid(tiles, { scale: 10, columns: 2 });
    // 8 px gaps, 3 rows of (30 px tile + 4 + 2 lines x 17 px)
    expect([g.width, g.height]).toEqual([8 + 2 * (40 + 8), 8 + 3 * (30 + 4 + 34 + 8)]);
    expect(g.rgb.length).toBe(g.width * g.height * 3);
    // Nearest-neighbour: the enlarged tile is flat, no blur at its edge.
    expect(g.rgb[(8 * g.width + 8) * 3]).toBe(10);
    expect(g.rgb[((8 + 29) * g.width + 8 + 39) * 3]).toBe(10);
    expect(Buffer.from((await labelledGrid(tiles, { scale: 10, columns: 2 })).rgb)).toEqual(Buffer.from(g.rgb));
    // Text is drawn: the label band is not plain background.
    const band = g.rgb.subarray((8 + 30) * g.width * 3, (8 + 30 + 38) * g.width * 3);
    expect(band.some((v) => v < 128)).toBe(true);
  });
});
