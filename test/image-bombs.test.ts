/**
 * Small files that decode to gigabytes (issue 15.14). The pixel limit alone let a 38-byte
 * lossless WebP of 16383 x 16383 (exactly at the limit) take 2.2 GB and 40 s: the decoded
 * size in bytes is capped too (DEFAULTS.maxDecodedBytes, 512 MiB: Pillow's own bomb limit
 * in 8-bit RGB), and both it and the aspect-ratio bound of the PIL-exact upscale are
 * checked from the header, before any pixel is decoded. Memory is checked as a bound in a
 * child process (its peak RSS), never as a time.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DEFAULTS } from '../src/defaults';
import { preprocessImage } from '../src/image';
import { errorLines } from './helpers/cli';
import { FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';

/** The audit's file: a lossless WebP, 16383 x 16383 of one colour, in 38 bytes. */
const WEBP_BOMB = Buffer.from('524946461e000000574542505650384c110000002ffebfff0f0750b22257a6ff8188e87f0000', 'hex');
const BOMB_MESSAGE =
  'image is 16383x16383 and would decode to 767.9 MiB, over the limit of 512 MiB (raise --max-decoded-bytes if ' +
  'this is intended)';

let tmp: ReturnType<typeof tempDir>;
let bomb: string;
beforeAll(() => {
  tmp = tempDir('styled-vq-bombs-');
  bomb = join(tmp.dir, 'bomb.webp');
  writeFileSync(bomb, WEBP_BOMB);
});
afterAll(() => tmp.cleanup());

test('the fixture is the 38-byte WebP, within the pixel limit', async () => {
  expect(WEBP_BOMB.length).toBe(38);
  const meta = await sharp(WEBP_BOMB).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['webp', 16383, 16383]);
  expect(meta.width! * meta.height!).toBeLessThanOrEqual(DEFAULTS.maxPixels);
  expect(DEFAULTS.maxDecodedBytes).toBe(512 * 1024 * 1024);
});

test('the 38-byte WebP is refused from its header: one line, and the process stays under 1 GB', () => {
  // The library in a fresh process, so that its peak RSS is this decode's alone.
  const script = `
    const { preprocessImage } = require(${JSON.stringify(join(ROOT, 'dist/src/image'))});
    preprocessImage(process.argv[1], { size: 64 }).then(
      () => console.log(JSON.stringify({ ok: true, maxRssKb: process.resourceUsage().maxRSS })),
      (e) => console.log(JSON.stringify({ message: e.message, maxRssKb: process.resourceUsage().maxRSS })),
    );`;
  const r = spawnSync(process.execPath, ['-e', script, bomb], { encoding: 'utf8' });
  const out = JSON.parse(r.stdout);
  expect(out.message).toBe(
    `${bomb}: image is 16383x16383 and would decode to 767.9 MiB, over the limit of 512 MiB (raise ` +
      `maxDecodedBytes if this is intended)`,
  );
  expect(out.maxRssKb).toBeLessThan(1024 * 1024); // decoding it took 2.2 GB
});

test('encode and batch: one line naming the flag; batch records it as a failed input', () => {
  const env = { ...process.env, STYLED_VQ_MODEL: FIXTURE_MODEL };
  const bin = join(ROOT, 'bin', 'styled-vq.js');
  const r = spawnSync(process.execPath, [bin, 'encode', bomb, '--device', 'cpu'], { encoding: 'utf8', env });
  expect({ code: r.status, lines: errorLines(r.stderr) }).toEqual({
    code: 2,
    lines: [`styled-vq: error: ${bomb}: ${BOMB_MESSAGE}`],
  });
  const out = join(tmp.dir, 'out.jsonl');
  const b = spawnSync(process.execPath, [bin, 'batch', tmp.dir, '-o', out, '--device', 'cpu', '-q'], {
    encoding: 'utf8',
    env,
  });
  expect(b.status).toBe(2); // every input failed
  const records = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // Records are data: they keep the library's field names, as for maxPixels.
  const error = `${bomb}: ${BOMB_MESSAGE.replace('--max-decoded-bytes', 'maxDecodedBytes')}`;
  expect(records).toEqual([expect.objectContaining({ source: bomb, error })]);
});

describe('decoded bytes count bands and sample depth', () => {
  const png = async (channels: 1 | 3 | 4, depth?: 'ushort') => {
    const image = sharp(Buffer.alloc(100 * 100 * channels, 200), { raw: { width: 100, height: 100, channels } });
    const space = depth ? 'rgb16' : channels === 1 ? 'b-w' : 'srgb';
    const data = await image.toColourspace(space).png().toBuffer();
    const meta = await sharp(data).metadata();
    expect([meta.channels, meta.depth]).toEqual([channels, depth ?? 'uchar']);
    return data;
  };

  test.each([
    ['8-bit RGB', 3, undefined, 100 * 100 * 3],
    ['8-bit grey (widened to RGB)', 1, undefined, 100 * 100 * 3],
    ['8-bit RGBA', 4, undefined, 100 * 100 * 4],
    ['16-bit RGBA', 4, 'ushort', 100 * 100 * 4 * 2],
  ] as const)(
    '%s: %d bands x depth; refused one byte under, accepted at the limit',
    async (_, channels, depth, bytes) => {
      const data = await png(channels, depth);
      await expect(preprocessImage(data, { size: 64, maxDecodedBytes: bytes - 1 })).rejects.toThrow(
        /image is 100x100 and would decode to .* MiB, over the limit of .* \(raise maxDecodedBytes if this is intended\)/,
      );
      expect((await preprocessImage(data, { size: 64, maxDecodedBytes: bytes })).rgb.length).toBe(64 * 64 * 3);
    },
  );
});

test('an aspect ratio too extreme for the upscale is refused from the header, before decoding', async () => {
  // A 16000x2 PNG cut after 1000 bytes: its header is whole, its pixels are not. Refused for
  // its shape (the header), not as truncated (which decoding would find).
  const raw = Buffer.alloc(16000 * 2 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  const cut = (
    await sharp(raw, { raw: { width: 16000, height: 2, channels: 3 } })
      .png()
      .toBuffer()
  ).subarray(0, 1000);
  await expect(preprocessImage(cut, { size: 64 })).rejects.toThrow(
    '<buffer of 1000 bytes>: image is 16000x2, an aspect ratio too extreme to resize: its short side at 64 would ' +
      'make 512000x64 pixels, over the limit of 16777216',
  );
});

test('batch --max-decoded-bytes is recorded in the done marker with the other options that change tokens', async () => {
  const dir = join(tmp.dir, 'ok');
  mkdirSync(dir);
  await sharp({ create: { width: 80, height: 60, channels: 3, background: '#336699' } }).toFile(join(dir, 'a.png'));
  const out = join(tmp.dir, 'ok.jsonl');
  const bin = join(ROOT, 'bin', 'styled-vq.js');
  const args = [bin, 'batch', dir, '-o', out, '--max-decoded-bytes', '1000000', '--device', 'cpu', '-q'];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, STYLED_VQ_MODEL: FIXTURE_MODEL },
  });
  expect(r.status).toBe(0);
  expect(JSON.parse(readFileSync(`${out}.done.json`, 'utf8')).options).toMatchObject({ maxDecodedBytes: 1000000 });
});
