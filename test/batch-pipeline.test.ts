/**
 * `batch` as a library (runBatch) on the fixture model: one record per input in input
 * order, bad files as error records, independence from batch size and concurrency, the
 * overwrite rules, resume after torn writes, and the .npy output.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeImages } from '../src/api/encode';
import { runBatch, type RunBatchOptions } from '../src/batch/run-batch';
import { Model } from '../src/model/model';
import { readNpy } from '../src/tokens/npy';
import type { AnyRecord, TokenRecord } from '../src/tokens/record';
import { FIXTURE_MODEL, tempDir } from './helpers/fixtures';
import { writeBadFiles, writeImageFolder } from './helpers/image-folder';
import { failure } from './helpers/errors';

let model: Model;
let tmp: ReturnType<typeof tempDir>;
let photos: string;
let good: string[];
let bad: Awaited<ReturnType<typeof writeBadFiles>>;
/** Every input of `photos`, in the order batch lists them. */
let listing: string[];
let reference: string;
let n = 0;

const out = (ext = 'jsonl') => join(tmp.dir, `out-${n++}.${ext}`);
const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
const records = (path: string): AnyRecord[] => lines(path).map((l) => JSON.parse(l));
/**
 * What must not change between runs: sources, order, tokens, which inputs failed. (Error
 * texts from libvips can differ between concurrent runs, and ONNX Runtime's float results
 * move in the last bits with the batch composition, so neither is compared byte for byte.)
 */
const canonical = (path: string) =>
  records(path).map((r) =>
    'error' in r ? { source: r.source, failed: true } : { source: r.source, tokens: r.tokens },
  );
const batch = (options: Partial<RunBatchOptions> & { output: string }) =>
  runBatch(model, { inputs: [photos], batchSize: 4, concurrency: 2, ...options });

beforeAll(async () => {
  tmp = tempDir('styled-vq-batch-');
  photos = join(tmp.dir, 'photos');
  good = await writeImageFolder(photos, { count: 21, seed: 11 });
  bad = await writeBadFiles(photos);
  writeFileSync(join(photos, 'README.txt'), 'not an image extension: ignored');
  writeFileSync(join(photos, '.hidden.png'), 'hidden: never listed');
  listing = [...good, bad.empty, bad.text, bad.truncated].sort();
  model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
  reference = out();
  await batch({ output: reference });
});
afterAll(async () => {
  await model?.dispose();
  tmp.cleanup();
});

describe('batch output', () => {
  test('every input exactly once, in input order; bad files are error records with the reason', async () => {
    const recs = records(reference);
    expect(recs.map((r) => r.source)).toEqual(listing);
    const errors = Object.fromEntries(
      recs.filter((r) => 'error' in r).map((r) => [r.source, (r as { error: string }).error]),
    );
    expect(Object.keys(errors).sort()).toEqual([bad.empty, bad.text, bad.truncated].sort());
    expect(errors[bad.empty]).toMatch(/empty/);
    expect(errors[bad.text]).toMatch(/not an image/);
    expect(errors[bad.truncated]).toMatch(/truncated|corrupt/);
    // The tokens are what encode gives for the same images.
    const direct = await encodeImages(model, good);
    const tokens = recs.filter((r): r is TokenRecord => !('error' in r));
    expect(tokens.map((r) => r.tokens)).toEqual(direct.records.map((r) => (r as TokenRecord).tokens));
    expect(tokens.map((r) => r.original_size)).toEqual(direct.records.map((r) => (r as TokenRecord).original_size));
    expect(new Set(tokens.map((r) => r.tokens.join(','))).size).toBe(good.length); // the images really differ
  });

  test('the summary counts done, failed, skipped and ignored files', async () => {
    const s = await batch({ output: out() });
    expect(s).toMatchObject({
      done: 21,
      failed: 3,
      skipped: 0,
      total: 24,
      ignored: 1,
      interrupted: false,
      format: 'jsonl',
    });
    expect(s.imagesPerSecond).toBeGreaterThan(0);
    expect(s.preprocess.mode).toBe('main'); // ts sources: no compiled worker (the CLI tests cover workers)
    expect(s.preprocess.fallback).toMatch(/TypeScript sources/);
  });

  test.each([
    [1, 1],
    [5, 3],
    [32, 8],
  ])('the output does not depend on batch size %i and concurrency %i', async (batchSize, concurrency) => {
    const o = out();
    await batch({ output: o, batchSize, concurrency });
    expect(canonical(o)).toEqual(canonical(reference));
  });

  test('latents are stored on request, float32 [36][16]', async () => {
    const o = out();
    await batch({ output: o, latents: true });
    const recs = records(o).filter((r): r is TokenRecord => !('error' in r));
    const direct = await encodeImages(model, good, { latents: true, batchSize: 4 });
    expect(recs.map((r) => r.latents)).toHaveLength(21);
    recs.forEach((r, i) => {
      const want = (direct.records[i] as TokenRecord).latents!.flat();
      expect(r.latents).toHaveLength(36);
      expect(r.latents!.every((row) => row.length === 16)).toBe(true);
      // Same image, same model: equal up to float32 noise from ORT's kernels.
      expect(Math.max(...r.latents!.flat().map((v, k) => Math.abs(v - want[k])))).toBeLessThan(1e-5);
    });
  });
});

describe('inputs', () => {
  test('a list file (relative to its folder, comments skipped), a glob and a recursive folder, in the order given', async () => {
    const nested = join(tmp.dir, 'nested');
    const deep = await writeImageFolder(join(nested, 'b', 'deeper'), { count: 2, seed: 3 });
    const top = await writeImageFolder(join(nested, 'a'), { count: 2, seed: 4 });
    const list = join(tmp.dir, 'list.txt');
    writeFileSync(list, `# chosen images\nphotos/${good[3].split('/').pop()}\n\nphotos/${good[1].split('/').pop()}\n`);
    const o = out();
    const s = await batch({ output: o, inputs: [list, join(nested, '**', '*.png'), nested], recursive: true });
    const sources = records(o).map((r) => r.source);
    expect(sources).toEqual([good[3], good[1], ...top, ...deep, ...top, ...deep]);
    expect(s.failed).toBe(0);
    // Without --recursive a folder lists only its own files.
    await expect(batch({ output: out(), inputs: [nested] })).rejects.toThrow(/No images found in .*nested/);
  });

  test('missing inputs are refused before any work; a glob that matches nothing finds no images', async () => {
    const e = await failure(batch({ output: out(), inputs: [join(tmp.dir, 'nope')] }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(/no such file or folder/);
    const g = await failure(batch({ output: out(), inputs: [join(tmp.dir, 'nope', '*.jpg')] }));
    expect(g.message).toMatch(/No images found/);
  });
});

describe('overwrite rules', () => {
  test('an existing output is refused without --force or --resume, and replaced with --force', async () => {
    const o = out();
    writeFileSync(o, 'precious\n');
    const e = await failure(batch({ output: o }));
    expect(e.kind).toBe('usage');
    expect(e.message).toMatch(/Output exists: .*resume: true .*overwrite: true/);
    expect(readFileSync(o, 'utf8')).toBe('precious\n');
    await batch({ output: o, force: true });
    expect(canonical(o)).toEqual(canonical(reference));
    await expect(batch({ output: o, force: true, resume: true })).rejects.toThrow(/choose one/);
  });

  test('resume refuses an output that is not a batch of these inputs with this model', async () => {
    const o = out();
    // A torn first line would be cut; a complete line of something else is never thrown away.
    writeFileSync(o, '{"a": 1}\n');
    expect((await failure(batch({ output: o, resume: true }))).message).toMatch(/not a styled-vq batch output/);
    const recs = lines(reference);
    writeFileSync(o, `${[recs[0], recs[2]].join('\n')}\n`);
    expect((await failure(batch({ output: o, resume: true }))).message).toMatch(
      /line 2 records .* but input 2 is now .*inputs .* changed/,
    );
    writeFileSync(o, `${recs[0].replace(/"fingerprint":"[0-9a-f]+"/, '"fingerprint":"ffffffffffffffff"')}\n`);
    expect((await failure(batch({ output: o, resume: true }))).message).toMatch(
      /fingerprint ffffffffffffffff.*dtype fp32\); resume with the same model and dtype as the first run, or/,
    );
    writeFileSync(o, `${recs.slice(0, 4).join('\n')}\n`); // 3 error records (no latents either way), then tokens
    expect((await failure(batch({ output: o, resume: true, latents: true }))).message).toMatch(
      /line 4 has no latents: the first run did not use latents: true/,
    );
  });
});

describe('resume', () => {
  const cases: [string, (recs: string[]) => string][] = [
    ['a cut-off last line', (r) => `${r.slice(0, 9).join('\n')}\n${r[9].slice(0, 40)}`],
    [
      'a zero-filled hole followed by a complete line (power cut)',
      (r) => `${r.slice(0, 5).join('\n')}\n${'\0'.repeat(300)}\n${r[7]}\n`,
    ],
    [
      'a 70 MB run of zero bytes, over the record limit, then a complete line (issue 15.15: skipped, not held)',
      (r) => `${r.slice(0, 5).join('\n')}\n${'\0'.repeat(70 * 1024 * 1024)}\n${r[7]}\n`,
    ],
    ['a complete last line without its newline', (r) => r.slice(0, 12).join('\n')],
    ['an empty file', () => ''],
  ];
  test.each(cases)('after %s: every input exactly once, equal to a clean run', async (_, damage) => {
    const recs = lines(reference);
    const o = out();
    const damaged = damage(recs);
    writeFileSync(o, damaged);
    const trusted = damaged
      .split('\n')
      .slice(0, -1)
      .filter((l, i) => l === recs[i]).length;
    const s = await batch({ output: o, resume: true, batchSize: 3 });
    expect(canonical(o)).toEqual(canonical(reference));
    expect(lines(o).slice(0, trusted)).toEqual(recs.slice(0, trusted)); // trusted lines are kept as they were
    expect(s.skipped).toBe(trusted);
    expect(s.done + s.failed).toBe(recs.length - trusted);
    expect(s.repairedBytes).toBe(
      Buffer.byteLength(damaged) -
        Buffer.byteLength(
          recs
            .slice(0, trusted)
            .map((l) => `${l}\n`)
            .join(''),
        ),
    );
  });

  test('resume of a finished output has nothing to do; a missing output starts from scratch', async () => {
    const o = out();
    writeFileSync(o, readFileSync(reference));
    const s = await batch({ output: o, resume: true });
    expect(s).toMatchObject({ done: 0, failed: 0, skipped: 24, skippedFailed: 3, total: 24 });
    const fresh = out();
    expect((await batch({ output: fresh, resume: true })).done).toBe(21);
    expect(canonical(fresh)).toEqual(canonical(reference));
  });

  test('an abort signal stops after the current chunk; the output is whole lines and resumable', async () => {
    const o = out();
    const controller = new AbortController();
    const s = await batch({
      output: o,
      batchSize: 5,
      onProgress: (p) => p.written >= 10 && controller.abort(),
      signal: controller.signal,
    });
    expect(s.interrupted).toBe(true);
    expect(canonical(o)).toEqual(canonical(reference).slice(0, 10));
    expect(readFileSync(o, 'utf8').endsWith('\n')).toBe(true);
    const r = await batch({ output: o, resume: true });
    expect(r).toMatchObject({ skipped: 10, interrupted: false });
    expect(canonical(o)).toEqual(canonical(reference));
  });
});

const python = '/usr/bin/python3';
const numpyHere = existsSync(python) && spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

describe('npy output', () => {
  let npy: string;
  beforeAll(async () => {
    npy = out('npy');
    await batch({ output: npy, latents: true });
  });

  test('int32 [N,36] with -1 rows for failures, float32 [N,36,16] latents, and the sidecar of sources', async () => {
    const stem = npy.slice(0, -4);
    const tokens = await readNpy(npy);
    const latents = await readNpy(`${stem}.latents.npy`);
    const sidecar = JSON.parse(readFileSync(`${stem}.sources.json`, 'utf8'));
    const recs = records(reference);
    expect(tokens).toMatchObject({ dtype: 'int32', shape: [24, 36] });
    expect(latents).toMatchObject({ dtype: 'float32', shape: [24, 36, 16] });
    expect(sidecar).toMatchObject({
      format: 'styled-vq-batch-sources',
      version: 1,
      model: recs[0].model,
      shape: [24, 36],
      tokens: npy.split('/').pop(),
    });
    expect(sidecar.sources).toEqual(listing);
    expect(sidecar.failed.map((f: { source: string }) => f.source)).toEqual(
      recs.filter((r) => 'error' in r).map((r) => r.source),
    );
    recs.forEach((r, i) => {
      const row = Array.from(tokens.data.subarray(i * 36, (i + 1) * 36) as Int32Array);
      if ('error' in r) {
        expect(row).toEqual(Array(36).fill(-1));
        expect(Number.isNaN((latents.data as Float32Array)[i * 576])).toBe(true);
      } else expect(row).toEqual(r.tokens);
    });
    expect(existsSync(`${npy}.journal.jsonl`)).toBe(false);
  });

  (numpyHere ? test : test.skip)('numpy loads the arrays as they are', () => {
    const stem = npy.slice(0, -4);
    const code = [
      'import json, sys, numpy as np',
      `t = np.load(${JSON.stringify(npy)}); l = np.load(${JSON.stringify(`${stem}.latents.npy`)})`,
      `s = json.load(open(${JSON.stringify(`${stem}.sources.json`)}))`,
      'print(json.dumps({"t": [str(t.dtype), list(t.shape)], "l": [str(l.dtype), list(l.shape)], "first": t[s["failed"][0]["row"]].tolist()[:3], "sum": int(t[t >= 0].sum())}))',
    ].join('\n');
    const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout);
    const recs = records(reference).filter((x): x is TokenRecord => !('error' in x));
    expect(got).toEqual({
      t: ['int32', [24, 36]],
      l: ['float32', [24, 36, 16]],
      first: [-1, -1, -1],
      sum: recs.reduce((a, x) => a + x.tokens.reduce((b, v) => b + v, 0), 0),
    });
  });

  test('an interrupted npy run leaves only its journal; resume finishes it equal to a clean run', async () => {
    const o = out('npy');
    const controller = new AbortController();
    const s = await batch({
      output: o,
      latents: true,
      onProgress: (p) => p.written >= 8 && controller.abort(),
      signal: controller.signal,
    });
    expect(s.interrupted).toBe(true);
    expect(existsSync(o)).toBe(false);
    expect(s.files).toEqual([`${o}.journal.jsonl`]);
    appendFileSync(`${o}.journal.jsonl`, '{"format":"styled-vq-tok'); // and a torn write on top
    await expect(batch({ output: o, latents: true })).rejects.toThrow(/interrupted run's journal.*resume: true/);
    const r = await batch({ output: o, latents: true, resume: true });
    expect(r).toMatchObject({ skipped: 8, total: 24, interrupted: false });
    expect(readFileSync(o)).toEqual(readFileSync(npy));
    expect(readFileSync(o.replace(/\.npy$/, '.latents.npy'))).toEqual(
      readFileSync(npy.replace(/\.npy$/, '.latents.npy')),
    );
    // Once finished, resume has nothing to do (and says so); more inputs make it refuse.
    expect(await batch({ output: o, latents: true, resume: true })).toMatchObject({
      alreadyComplete: true,
      done: 0,
      skipped: 24,
    });
    const extra = join(tmp.dir, 'extra');
    mkdirSync(extra);
    await writeImageFolder(extra, { count: 1, seed: 99 });
    await expect(batch({ output: o, latents: true, resume: true, inputs: [photos, extra] })).rejects.toThrow(
      /more inputs now/,
    );
  });
});
