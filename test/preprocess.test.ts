/**
 * src/image/ against the Pillow reference (training/styled_vq/preprocess.py).
 * The fixture (test/fixtures/images/ + expected/) is written by
 * training/scripts/make_preprocess_fixture.py; every case must match with 0 difference.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { StyledVqError } from '../src/errors';
import {
  fromModelOutput,
  loadRgb,
  preprocessImage,
  type PreprocessOptions,
  resizeRgb,
  sideBySide,
  toModelInput,
  writeImage,
} from '../src/image';

const FIXTURE = path.join(__dirname, 'fixtures', 'images');
const EXPECTED = path.join(FIXTURE, 'expected');

interface Case {
  input: string;
  size: number;
  alpha: 'drop' | { background: [number, number, number] };
  expected: string;
  originalWidth: number;
  originalHeight: number;
}
interface Manifest {
  cases: Case[];
  modelTensor: { toModelInput: number[]; fromModelOutput: { x: number[]; expected: number[] } };
}
const manifest: Manifest = require(path.join(EXPECTED, 'manifest.json'));

// Expected outputs are lossless RGB WebPs; loadRgb decodes them untouched (no resize).
const readRgb = async (file: string): Promise<Uint8Array> => (await loadRgb(file)).rgb;

function diffStats(a: Uint8Array, b: Uint8Array): { max: number; mean: number; count: number } {
  let max = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) {
      count++;
      sum += d;
      if (d > max) max = d;
    }
  }
  return { max, mean: sum / a.length, count };
}

describe('preprocessImage matches preprocess.py (Pillow 9.4) bit for bit', () => {
  test('the fixture covers the formats the issue lists', () => {
    const inputs = new Set(manifest.cases.map((c) => c.input));
    expect(inputs.size).toBeGreaterThanOrEqual(25);
    for (const ext of ['.jpg', '.png', '.gif', '.webp']) expect([...inputs].some((f) => f.endsWith(ext))).toBe(true);
  });

  test.each(manifest.cases.map((c) => [`${c.input} @${c.size} ${JSON.stringify(c.alpha)}`, c] as const))(
    '%s',
    async (_name, c) => {
      const got = await preprocessImage(path.join(FIXTURE, c.input), { size: c.size, alpha: c.alpha });
      const want = await readRgb(path.join(EXPECTED, c.expected));
      expect(got.size).toBe(c.size);
      expect([got.originalWidth, got.originalHeight]).toEqual([c.originalWidth, c.originalHeight]);
      expect(got.rgb.length).toBe(want.length);
      const d = diffStats(got.rgb, want);
      // Target (and measured) bound: 0 everywhere. Report how far off if that ever changes.
      if (d.count) {
        throw new Error(
          `${c.input} @${c.size}: ${d.count} values differ; max abs diff ${d.max}, mean abs diff ${d.mean.toFixed(4)}`,
        );
      }
    },
  );

  test('a Buffer input gives the same pixels as its path', async () => {
    const file = path.join(FIXTURE, 'animated_240x160.gif');
    const opts: PreprocessOptions = { size: 64, alpha: { background: [30, 120, 200] } };
    const a = await preprocessImage(file, opts);
    const b = await preprocessImage(await fs.readFile(file), opts);
    expect(Buffer.from(b.rgb).equals(Buffer.from(a.rgb))).toBe(true);
  });
});

describe('model tensors', () => {
  test('toModelInput equals numpy float32 x / 127.5 - 1, laid out [B, 3, H, W]', () => {
    const lut = manifest.modelTensor.toModelInput;
    // Two 16x16 images whose pixels run through all 256 values, in different channels.
    const size = 16;
    const a = new Uint8Array(size * size * 3);
    const b = new Uint8Array(size * size * 3);
    for (let i = 0; i < size * size; i++) {
      a.set([i, 255 - i, (i * 7) & 255], i * 3);
      b.set([(i * 3) & 255, i, 0], i * 3);
    }
    const t = toModelInput([a, b], size);
    expect(t.length).toBe(2 * 3 * size * size);
    const plane = size * size;
    for (const [img, src] of [
      [0, a],
      [1, b],
    ] as const) {
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < plane; i++) {
          const got = t[img * 3 * plane + c * plane + i];
          if (got !== lut[src[i * 3 + c]])
            throw new Error(`image ${img} channel ${c} pixel ${i}: ${got} != ${lut[src[i * 3 + c]]}`);
        }
      }
    }
  });

  test('fromModelOutput equals numpy rint((clip(x, -1, 1) + 1) * 127.5) in float32', () => {
    const { x, expected } = manifest.modelTensor.fromModelOutput;
    // Lay the values out as channel 0 of a [1, 3, 1, N] tensor (channels 1 and 2 = -1 -> 0).
    const n = x.length;
    const t = new Float32Array(3 * n).fill(-1);
    t.set(x);
    const rgb = fromModelOutput(t, n, 1);
    const got = Array.from({ length: n }, (_v, i) => rgb[i * 3]);
    expect(got).toEqual(expected);
    expect(fromModelOutput(Float32Array.of(NaN, 5, -5), 1, 1)).toEqual(Uint8Array.of(0, 255, 0));
  });

  test('round trip uint8 -> model -> uint8 is the identity', () => {
    const all = Uint8Array.from({ length: 16 * 16 * 3 }, (_v, i) => i % 256);
    expect(fromModelOutput(toModelInput([all], 16), 16, 16)).toEqual(all);
  });

  test('wrong sizes are usage errors', () => {
    expect(() => toModelInput([new Uint8Array(10)], 16)).toThrow(StyledVqError);
    expect(() => fromModelOutput(new Float32Array(10), 16, 16)).toThrow(/holds 10 values/);
  });
});

/** Asserts a preprocessImage failure is a one-line StyledVqError of kind input naming the file. */
async function expectInputError(input: string | Buffer, pattern: RegExp, opts: Partial<PreprocessOptions> = {}) {
  let caught: unknown;
  try {
    await preprocessImage(input, { size: 64, ...opts });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(StyledVqError);
  const err = caught as StyledVqError;
  expect(err.kind).toBe('input');
  expect(err.message).not.toContain('\n');
  expect(err.message).toMatch(pattern);
  if (typeof input === 'string') expect(err.message.startsWith(`${input}: `)).toBe(true);
  return err;
}

/** PNG chunk CRC (zlib.crc32 only exists from Node 20.15). */
function crc32(bytes: Buffer): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function pngChunk(type: string, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const tb = Buffer.concat([Buffer.from(type, 'ascii'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(tb));
  return Buffer.concat([len, tb, crc]);
}
/** A valid PNG header claiming width x height RGB, with only a few rows of data (a bomb's shape). */
function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = zlib.deflateSync(Buffer.alloc((width * 3 + 1) * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('bad inputs give one clear line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'styled-vq-bad-'));
    const jpg = await fs.readFile(path.join(FIXTURE, 'large_2500x1800.jpg'));
    const png = await fs.readFile(path.join(FIXTURE, 'palette_360x240.png'));
    await fs.writeFile(path.join(dir, 'truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
    await fs.writeFile(path.join(dir, 'header-only.jpg'), jpg.subarray(0, 200));
    await fs.writeFile(path.join(dir, 'truncated.png'), png.subarray(0, png.length >> 1));
    await fs.writeFile(path.join(dir, 'notes.png'), 'this is a text file, not a PNG\n');
    await fs.writeFile(path.join(dir, 'empty.jpg'), '');
    await fs.mkdir(path.join(dir, 'folder.png'));
    await fs.writeFile(path.join(dir, 'bomb.png'), bombPng(30000, 30000));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  test('missing file', () => expectInputError(path.join(dir, 'nope.jpg'), /file not found$/));
  test('missing directory on the path', () =>
    expectInputError(path.join(dir, 'no-such-dir', 'a.png'), /file not found$/));
  test('directory', () => expectInputError(path.join(dir, 'folder.png'), /is a directory/));
  test('zero-byte file', () => expectInputError(path.join(dir, 'empty.jpg'), /file is empty \(0 bytes\)/));
  test('empty buffer', () => expectInputError(Buffer.alloc(0), /image data is empty/));
  test('truncated JPEG', () => expectInputError(path.join(dir, 'truncated.jpg'), /truncated or corrupt/));
  test('JPEG with only its header', () => expectInputError(path.join(dir, 'header-only.jpg'), /truncated or corrupt/));
  test('truncated PNG', () => expectInputError(path.join(dir, 'truncated.png'), /truncated or corrupt/));
  test('text file named .png', () =>
    expectInputError(path.join(dir, 'notes.png'), /not an image \(unsupported or unrecognised format\)/));

  test('30000x30000 is refused by the default pixel limit from its header, without decoding', async () => {
    const before = process.memoryUsage().rss;
    // The file holds 4 of its 30000 rows: decoding it would end in "truncated or corrupt" (after allocating
    // 2.7 GB), so the pixel-limit refusal can only come from the header.
    await expectInputError(path.join(dir, 'bomb.png'), /30000x30000 = 900000000 pixels, over the limit of 268402689/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  test('maxPixels is configurable', async () => {
    const file = path.join(FIXTURE, 'portrait_333x517.jpg');
    await expectInputError(file, /333x517 = 172161 pixels, over the limit of 172160/, { maxPixels: 172160 });
    await expect(preprocessImage(file, { size: 64, maxPixels: 172161 })).resolves.toMatchObject({ size: 64 });
  });

  test('bad options are usage errors before any I/O', async () => {
    await expect(preprocessImage('/nonexistent.png', { size: 0 })).rejects.toMatchObject({ kind: 'usage' });
    await expect(preprocessImage('/nonexistent.png', { size: 64, maxPixels: -1 })).rejects.toMatchObject({
      kind: 'usage',
    });
    await expect(
      preprocessImage('/nonexistent.png', {
        size: 64,
        alpha: { background: [0, 0, 256] as unknown as [number, number, number] },
      }),
    ).rejects.toMatchObject({ kind: 'usage' });
  });
});

test('integrity 15.14: a tiny 4,000,000x1 TIFF is refused before the upscale, in bounded memory', async () => {
  const sharp = require('sharp');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'styled-vq-wide-'));
  const file = path.join(dir, 'wide.tiff');
  await sharp(Buffer.alloc(4_000_000 * 3, 128), { raw: { width: 4_000_000, height: 1, channels: 3 } })
    .tiff({ compression: 'deflate' })
    .toFile(file);
  expect((await fs.stat(file)).size).toBeLessThan(64 * 1024);
  const before = process.memoryUsage().rss;
  const err = await preprocessImage(file, { size: 64 }).catch((e) => e);
  expect(err).toBeInstanceOf(StyledVqError);
  expect(err.message).toMatch(
    /wide\.tiff: image is 4000000x1, an aspect ratio too extreme to resize: its short side at 64 would make 256000000x64 pixels, over the limit of 16777216/,
  );
  // The upscale would allocate 256000000x64 RGB (49 GB): refused before it, memory stays bounded.
  expect(process.memoryUsage().rss - before).toBeLessThan(500 * 1024 * 1024);
  // A wide but reasonable panorama still works (4096:1 is the bound at size 64).
  const ok = await preprocessImage(
    await sharp({ create: { width: 2000, height: 1, channels: 3, background: '#808080' } })
      .png()
      .toBuffer(),
    { size: 64 },
  );
  expect(ok.rgb.length).toBe(64 * 64 * 3);
  await fs.rm(dir, { recursive: true, force: true });
});

describe('writing images', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'styled-vq-write-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const gradient = (w: number, h: number) =>
    Uint8Array.from({ length: w * h * 3 }, (_v, i) => ((i % 3) * 80 + Math.floor(i / 3)) & 255);

  const magic = async (file: string) => {
    const b = await fs.readFile(file);
    if (b.subarray(1, 4).toString('latin1') === 'PNG') return 'png';
    if (b[0] === 0xff && b[1] === 0xd8) return 'jpeg';
    if (b.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
    return 'unknown';
  };

  test('PNG round-trips exactly; JPEG and WebP by extension; no temp files left', async () => {
    const rgb = gradient(40, 30);
    for (const [name, format] of [
      ['out.png', 'png'],
      ['out.jpg', 'jpeg'],
      ['out.JPEG', 'jpeg'],
      ['out.webp', 'webp'],
    ]) {
      await writeImage(rgb, 40, 30, path.join(dir, name));
      expect(await magic(path.join(dir, name))).toBe(format);
      const back = await loadRgb(path.join(dir, name));
      expect([back.width, back.height]).toEqual([40, 30]);
    }
    expect(await readRgb(path.join(dir, 'out.png'))).toEqual(rgb);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('overwrites atomically and reports unusable paths', async () => {
    const file = path.join(dir, 'same.png');
    await writeImage(gradient(8, 8), 8, 8, file);
    await writeImage(new Uint8Array(4 * 4 * 3), 4, 4, file);
    expect((await loadRgb(file)).width).toBe(4);
    await expect(writeImage(gradient(8, 8), 8, 8, path.join(dir, 'x.gif'))).rejects.toMatchObject({ kind: 'usage' });
    await writeImage(gradient(8, 8), 8, 8, path.join(dir, 'missing', 'x.png')); // missing folders are created
    expect((await loadRgb(path.join(dir, 'missing', 'x.png'))).width).toBe(8);
    await expect(writeImage(gradient(8, 8), 8, 8, path.join(file, 'x.png'))).rejects.toThrow(
      /Cannot create folder .*same\.png: a file of that name is in the way/,
    );
    await expect(writeImage(new Uint8Array(5), 8, 8, path.join(dir, 'y.png'))).rejects.toMatchObject({ kind: 'usage' });
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('resizeRgb and sideBySide', async () => {
    const small = await resizeRgb(gradient(40, 30), 40, 30, 20, 10);
    expect(small.length).toBe(20 * 10 * 3);
    const flat = new Uint8Array(5 * 5 * 3).fill(7);
    const both = sideBySide(
      [
        { rgb: small, width: 20, height: 10 },
        { rgb: flat, width: 5, height: 5 },
      ],
      { gap: 2, background: [1, 2, 3] },
    );
    expect([both.width, both.height]).toEqual([27, 10]);
    const px = (x: number, y: number) => Array.from(both.rgb.subarray((y * 27 + x) * 3, (y * 27 + x) * 3 + 3));
    expect(px(0, 0)).toEqual(Array.from(small.subarray(0, 3)));
    expect(px(20, 0)).toEqual([1, 2, 3]); // gap
    expect(px(22, 4)).toEqual([7, 7, 7]); // second image
    expect(px(22, 9)).toEqual([1, 2, 3]); // below the shorter image
  });
});
