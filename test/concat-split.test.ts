/**
 * concat and split: styled tokens (from a real batch run on the fixture model) joined with
 * external VQ codes in both layouts, taken apart again losslessly, and every way the
 * inputs can disagree reported instead of dropped.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { decodeRecords } from '../src/api/decode';
import { runBatch } from '../src/batch/run-batch';
import { concatCodes, type ConcatOptions } from '../src/concat/run-concat';
import { readLayout } from '../src/concat/layout';
import { splitSequences, uniqueNames } from '../src/concat/run-split';
import { Model } from '../src/model/model';
import { encodeNpy, readNpy } from '../src/tokens/npy';
import type { TokenRecord } from '../src/tokens/record';
import { readTokenFile } from '../src/tokens/token-file';
import { runCli } from './helpers/cli';
import { FIXTURE_MODEL, tempDir } from './helpers/fixtures';
import { prng, writeBadFiles, writeImageFolder } from './helpers/image-folder';
import { failure } from './helpers/errors';

const K = 1024;
const V = 16384;
let tmp: ReturnType<typeof tempDir>;
let model: Model;
let tokensJsonl: string;
let tokensNpy: string;
let good: TokenRecord[];
let failedSource: string;
/** codes/<stem>.npy, (1, 256) int64, one per good image (plus one stray). */
let codesDir: string;
const codes = new Map<string, number[]>();
let n = 0;

const rand = prng(123);
const randomCodes = (len = 256) => Array.from({ length: len }, () => Math.floor(rand() * V));
const stem = (p: string) =>
  p
    .split('/')
    .pop()!
    .replace(/\.[^.]+$/, '');
const fresh = (name: string) => join(tmp.dir, `${name}-${n++}`);
const modelInfo = { vocabSize: K, numTokens: 36, ref: { name: 'fixture-tiny', fingerprint: '' } };
const concat = (o: Partial<ConcatOptions> & { external: string }) =>
  concatCodes({ styled: tokensJsonl, output: `${fresh('combined')}.jsonl`, model: modelInfo, ...o });
const jsonLines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

function writeInt64Npy(path: string, values: number[], shape: number[]): void {
  writeFileSync(
    path,
    encodeNpy(
      BigInt64Array.from(values, (v) => BigInt(v)),
      shape,
    ),
  );
}

beforeAll(async () => {
  tmp = tempDir('styled-vq-concat-');
  const photos = join(tmp.dir, 'photos');
  await writeImageFolder(photos, { count: 6, seed: 8 });
  const bad = await writeBadFiles(join(tmp.dir, 'photos'));
  failedSource = bad.empty;
  model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
  modelInfo.ref.fingerprint = model.fingerprint;
  // Only one bad file, to keep one failed row in the mix.
  const list = join(tmp.dir, 'list.txt');
  writeFileSync(
    list,
    readdirSync(photos)
      .filter((f) => f.startsWith('img') || f === 'bad-empty.jpg')
      .sort()
      .map((f) => `photos/${f}`)
      .join('\n'),
  );
  tokensJsonl = join(tmp.dir, 'tokens.jsonl');
  tokensNpy = join(tmp.dir, 'tokens.npy');
  await runBatch(model, { inputs: [list], output: tokensJsonl });
  await runBatch(model, { inputs: [list], output: tokensNpy });
  good = jsonLines(tokensJsonl).filter((r) => !('error' in r));
  expect(good).toHaveLength(6);
  codesDir = join(tmp.dir, 'codes');
  mkdirSync(codesDir);
  for (const r of good) {
    const c = randomCodes();
    codes.set(stem(r.source), c);
    writeInt64Npy(join(codesDir, `${stem(r.source)}.npy`), c, [1, 256]);
  }
});
afterAll(async () => {
  await model?.dispose();
  tmp.cleanup();
});

describe('shared layout', () => {
  test('concat -> split is lossless: the same tokens and the same .npy arrays back, and decode takes the tokens', async () => {
    const s = await concat({ external: codesDir, special: { bos: true, sep: true, eos: true } });
    expect(s).toMatchObject({
      written: 6,
      matchedBy: 'stem',
      failed: [failedSource],
      unmatchedStyled: [],
      unmatchedExternal: [],
    });

    // The layout says how to read the sequences.
    const layout = await readLayout(s.layoutFile);
    expect(layout.styled).toEqual({
      model: { name: 'fixture-tiny', fingerprint: model.fingerprint },
      vocab_size: K,
      tokens_per_image: 36,
    });
    expect(layout.external).toEqual({
      tokenizer: 'llamagen-vq16',
      vocab_size: V,
      tokens_per_image: 256,
      npy: { shape: [1, 256], dtype: 'int64' },
      aug_index: null,
    });
    expect(layout.sequences.tokens).toEqual({
      parts: ['bos', 'styled', 'sep', 'external', 'eos'],
      length: 295,
      vocab_size: K + V + 3,
      offsets: { styled: 0, external: K },
      special: { bos: K + V, sep: K + V + 1, eos: K + V + 2 },
    });
    const lines = jsonLines(s.output);
    expect(lines.map((l) => l.source)).toEqual(good.map((r) => r.source));
    expect(lines[0].tokens).toEqual([
      K + V,
      ...good[0].tokens,
      K + V + 1,
      ...codes.get(stem(good[0].source))!.map((c) => c + K),
      K + V + 2,
    ]);

    const out = fresh('parts');
    const r = await splitSequences({ input: s.output, outDir: out });
    expect(r).toMatchObject({ written: 6, skipped: [], layoutFile: s.layoutFile });
    const back = (await readTokenFile(join(out, 'tokens.jsonl'))).map((l) => l.record as TokenRecord);
    expect(back.map((b) => [b.source, b.tokens, b.model])).toEqual(good.map((g) => [g.source, g.tokens, g.model]));
    for (const g of good) {
      const name = `${stem(g.source)}.npy`;
      expect(readFileSync(join(out, 'external', name))).toEqual(readFileSync(join(codesDir, name)));
    }
    const decoded = await decodeRecords(model, await readTokenFile(join(out, 'tokens.jsonl')));
    expect(decoded.images).toHaveLength(6);
    expect(decoded.images[0].image).toMatchObject({ width: 64, height: 64 });
  });

  test('generator output: bare arrays without BOS/EOS are accepted; ids out of range are errors naming line and position', async () => {
    const s = await concat({ external: codesDir, special: { bos: true, sep: true, eos: true } });
    const seqs = jsonLines(s.output).map((l) => l.tokens as number[]);
    const gen = join(tmp.dir, 'generated.jsonl');
    writeFileSync(gen, `${seqs.map((q, i) => JSON.stringify(i % 2 ? q.slice(1, -1) : q)).join('\n')}\n`);
    const out = fresh('gen');
    const r = await splitSequences({ input: gen, layout: s.layoutFile, outDir: out, externalOut: 'single' });
    expect(r.written).toBe(6);
    const ext = await readNpy(join(out, 'external.npy'));
    expect(ext).toMatchObject({ dtype: 'int64', shape: [6, 256] });
    expect(Array.from(ext.data as BigInt64Array, Number)).toEqual(good.flatMap((g) => codes.get(stem(g.source))!));
    expect(jsonLines(join(out, 'tokens.jsonl')).map((t) => t.source)).toEqual([
      'sequence-0',
      'sequence-1',
      'sequence-2',
      'sequence-3',
      'sequence-4',
      'sequence-5',
    ]);
    // The records as one JSON array work too, and keep their sources.
    const asJson = join(tmp.dir, 'combined.json');
    writeFileSync(asJson, JSON.stringify(jsonLines(s.output)));
    const j = await splitSequences({ input: asJson, layout: s.layoutFile, outDir: fresh('json') });
    expect(jsonLines(j.files.tokens).map((t) => [t.source, t.tokens])).toEqual(good.map((g) => [g.source, g.tokens]));

    const tampered: [string, (q: number[]) => number[], RegExp][] = [
      [
        'an external id past K+V',
        (q) => q.map((v, i) => (i === 100 ? K + V : v)),
        /line 2: "tokens" position 100: id 17408 is not an external id \(expected \[1024, 17408\)\); it is the BOS id/,
      ],
      [
        'an external id where a styled one goes',
        (q) => q.map((v, i) => (i === 5 ? K + 7 : v)),
        /position 5: id 1031 is not a styled id \(expected \[0, 1024\)\); it is an external id/,
      ],
      [
        'a negative id',
        (q) => q.map((v, i) => (i === 3 ? -1 : v)),
        /position 3: id -1 is not a styled id .* outside the vocabulary/,
      ],
      ['a missing SEP', (q) => q.filter((_, i) => i !== 37), /has 294 ids; the layout expects 295/],
      [
        'an id past the whole vocabulary',
        (q) => q.map((v, i) => (i === 294 ? K + V + 3 : v)),
        /has 295 ids|position 294/,
      ],
    ];
    for (const [, change, pattern] of tampered) {
      writeFileSync(gen, `${[seqs[0], change(seqs[1]), seqs[2]].map((q) => JSON.stringify(q)).join('\n')}\n`);
      const dir = fresh('bad');
      expect((await failure(splitSequences({ input: gen, layout: s.layoutFile, outDir: dir }))).message).toMatch(
        pattern,
      );
      expect(existsSync(dir)).toBe(false); // nothing written
      expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      const skip = await splitSequences({ input: gen, layout: s.layoutFile, outDir: dir, skipInvalid: true });
      expect(skip.written).toBe(2);
      expect(skip.skipped).toEqual([{ where: `${gen} line 2`, error: expect.stringMatching(pattern) }]);
    }
  });
});

describe('separate layout', () => {
  test('two sequences with their own vocabularies, from the batch .npy and codes in row order; lossless', async () => {
    // One .npy (M, 256) int32 in the order of the batch rows, failed row included.
    const rows = jsonLines(tokensJsonl).map((r) => ('error' in r ? randomCodes() : codes.get(stem(r.source))!));
    const all = join(tmp.dir, 'all-codes.npy');
    writeFileSync(all, encodeNpy(Int32Array.from(rows.flat()), [rows.length, 256]));
    const s = await concat({ styled: tokensNpy, external: all, layout: 'separate', special: { bos: true, eos: true } });
    expect(s).toMatchObject({ written: 6, matchedBy: 'order', failed: [failedSource] });
    expect(s.layout.sequences).toEqual({
      styled: {
        parts: ['bos', 'styled', 'eos'],
        length: 38,
        vocab_size: K + 2,
        offsets: { styled: 0 },
        special: { bos: K, eos: K + 1 },
      },
      external: {
        parts: ['bos', 'external', 'eos'],
        length: 258,
        vocab_size: V + 2,
        offsets: { external: 0 },
        special: { bos: V, eos: V + 1 },
      },
    });
    const line = jsonLines(s.output)[0];
    expect(line.styled).toEqual([K, ...good[0].tokens, K + 1]);
    expect(line.external).toEqual([V, ...codes.get(stem(good[0].source))!, V + 1]);

    const out = fresh('sep');
    await splitSequences({ input: s.output, outDir: out });
    expect(jsonLines(join(out, 'tokens.jsonl')).map((t) => t.tokens)).toEqual(good.map((g) => g.tokens));
    for (const g of good) {
      const arr = await readNpy(join(out, 'external', `${stem(g.source)}.npy`)); // named after the source: rows have no file names
      expect(arr).toMatchObject({ dtype: 'int32', shape: [256] });
      expect(Array.from(arr.data as Int32Array)).toEqual(codes.get(stem(g.source)));
    }
    await expect(concat({ external: all, layout: 'separate', special: { sep: true } })).rejects.toThrow(
      /separate layout has no separator/,
    );
  });
});

describe('external code formats', () => {
  test('(1, A, 256) augmentations: one must be chosen, and that one is used', async () => {
    const dir = join(tmp.dir, 'aug');
    mkdirSync(dir);
    for (const g of good)
      writeInt64Npy(join(dir, `${stem(g.source)}.npy`), [...randomCodes(), ...codes.get(stem(g.source))!], [1, 2, 256]);
    expect((await failure(concat({ external: dir }))).message).toMatch(
      /holds 2 augmentations of each image; choose one with augIndex 0\.\.1/,
    );
    expect((await failure(concat({ external: dir, augIndex: 2 }))).message).toMatch(/^augIndex 2 is out of range/);
    const s = await concat({ external: dir, augIndex: 1 });
    expect(s.layout.external).toMatchObject({ aug_index: 1, npy: { shape: [1, 256], dtype: 'int64' } });
    expect(jsonLines(s.output)[2].tokens.slice(36)).toEqual(codes.get(stem(good[2].source))!.map((c) => c + K));
  });

  test('JSONL objects matched by stem, and a JSON array matched by order', async () => {
    const jsonl = join(tmp.dir, 'codes.jsonl');
    writeFileSync(
      jsonl,
      [...good]
        .reverse()
        .map((g) => JSON.stringify({ source: `elsewhere/${stem(g.source)}.png`, codes: codes.get(stem(g.source)) }))
        .join('\n'),
    );
    const a = await concat({ external: jsonl, special: { eos: true } });
    expect(a.matchedBy).toBe('stem');
    expect(jsonLines(a.output).map((l) => l.tokens.slice(36, -1))).toEqual(
      good.map((g) => codes.get(stem(g.source))!.map((c) => c + K)),
    );
    expect(a.layout.sequences.tokens.special).toEqual({ eos: K + V });

    const json = join(tmp.dir, 'codes.json');
    const rows = jsonLines(tokensJsonl).map((r) => ('error' in r ? randomCodes() : codes.get(stem(r.source))!));
    writeFileSync(json, JSON.stringify(rows));
    const b = await concat({ external: json });
    expect(b).toMatchObject({ matchedBy: 'order', written: 6 });
    expect(jsonLines(b.output).map((l) => l.tokens)).toEqual(jsonLines(a.output).map((l) => l.tokens.slice(0, -1)));
  });

  test('an external id >= V is an error naming the file and position', async () => {
    const dir = join(tmp.dir, 'out-of-range');
    mkdirSync(dir);
    for (const g of good) {
      const c = [...codes.get(stem(g.source))!];
      if (g === good[4]) c[17] = V;
      writeInt64Npy(join(dir, `${stem(g.source)}.npy`), c, [1, 256]);
    }
    const output = `${fresh('never')}.jsonl`;
    const e = await failure(concat({ external: dir, output }));
    expect(e.message).toBe(
      `${join(dir, `${stem(good[4].source)}.npy`)} position 17: code ${V} is outside the external vocabulary [0, ${V})`,
    );
    expect(existsSync(output)).toBe(false);
    // A larger --external-vocab accepts it.
    expect((await concat({ external: dir, externalVocab: V + 1 })).layout.external.vocab_size).toBe(V + 1);
  });
});

describe('mismatches are reported, never dropped silently', () => {
  test('unmatched images on either side: an error by default; with allowUnmatched, written and listed', async () => {
    const dir = join(tmp.dir, 'partial');
    mkdirSync(dir);
    for (const g of good.slice(1))
      writeFileSync(join(dir, `${stem(g.source)}.npy`), readFileSync(join(codesDir, `${stem(g.source)}.npy`)));
    writeInt64Npy(join(dir, 'stranger.npy'), randomCodes(), [1, 256]);
    const output = `${fresh('partial')}.jsonl`;
    const e = await failure(concat({ external: dir, output }));
    expect(e.message).toMatch(
      /Unmatched images: 1 record\(s\) without external codes \(.*img-000\.png\); 1 external entry without a record \(.*stranger\.npy\)\. Nothing written/,
    );
    expect(existsSync(output)).toBe(false);
    const s = await concat({ external: dir, output, allowUnmatched: true });
    expect(s).toMatchObject({
      written: 5,
      unmatchedStyled: [good[0].source],
      unmatchedExternal: [join(dir, 'stranger.npy')],
      failed: [failedSource],
    });
  });

  test('by order, different counts are an error; records of another model need --force', async () => {
    const short = join(tmp.dir, 'short.npy');
    writeFileSync(short, encodeNpy(Int32Array.from(randomCodes(256 * 3)), [3, 256]));
    expect((await failure(concat({ external: short }))).message).toMatch(
      /has 7 records \(failed inputs included\) but .*short\.npy has codes for 3 images/,
    );
    const other = { ...modelInfo, ref: { name: 'other', fingerprint: '0000000000000000' } };
    expect((await failure(concat({ external: codesDir, model: other }))).message).toMatch(
      /fingerprint 0000000000000000.*force: true/,
    );
    expect((await concat({ external: codesDir, model: other, force: true })).layout.styled.model.fingerprint).toBe(
      model.fingerprint,
    );
    // A newer package with the same tokens (model.json same_tokens_as) takes them without --force.
    const successor = { ...modelInfo, ref: { ...other.ref, fingerprints: ['0000000000000000', model.fingerprint] } };
    expect((await concat({ external: codesDir, model: successor })).layout.styled.model.fingerprint).toBe(
      model.fingerprint,
    );
  });

  test('an edited layout is refused', async () => {
    const s = await concat({ external: codesDir, special: { bos: true } });
    const edited = JSON.parse(readFileSync(s.layoutFile, 'utf8'));
    edited.sequences.tokens.special.bos = 5;
    const file = join(tmp.dir, 'edited.layout.json');
    writeFileSync(file, JSON.stringify(edited));
    await expect(splitSequences({ input: s.output, layout: file, outDir: fresh('x') })).rejects.toThrow(
      /sequences disagree/,
    );
  });

  test('integrity 15.16: a FIFO named *.npy in the codes folder (or given directly) is refused, not read forever', async () => {
    const dir = join(tmp.dir, 'fifo-codes');
    cpSync(codesDir, dir, { recursive: true });
    const fifo = join(dir, 'zz-pipe.npy');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO for reading blocks until a writer comes: a concat that read it would never settle (the
    // jest timeout), so settling with this message is the behaviour.
    await expect(concat({ external: dir })).rejects.toThrow(/External codes .*zz-pipe\.npy is not a regular file/);
    await expect(concat({ external: fifo })).rejects.toThrow(/External codes .*zz-pipe\.npy is not a regular file/);
    // And nothing holds it open for reading: a non-blocking open for writing finds no reader (ENXIO).
    const noReader = (() => {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        return 'a reader has it open';
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      }
    })();
    expect(noReader).toBe('ENXIO');
  });

  test('integrity 15.7: colliding output names are made unique deterministically (a, a-2, a)', () => {
    const names = uniqueNames(['a', 'a-2', 'a', 'a', 'a-2', 'b/c', 'b_c', '']);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      'a.npy',
      'a-2.npy',
      'a-2-2.npy',
      'a-3.npy',
      'a-2-4.npy',
      'b_c.npy',
      'b_c-6.npy',
      'sequence-7.npy',
    ]);
    expect(uniqueNames(['a', 'a-2', 'a'])).toEqual(uniqueNames(['a', 'a-2', 'a']));
  });

  test('integrity 15.9: per-image codes whose file names are not UTF-8 pair with the records of those images', async () => {
    const dir = fresh('byte-codes');
    mkdirSync(dir);
    const raw = Buffer.concat([Buffer.from(`${dir}/a`), Buffer.from([0xff]), Buffer.from('.npy')]);
    const [ca, cb] = [randomCodes(), randomCodes()];
    writeFileSync(
      raw,
      encodeNpy(
        BigInt64Array.from(ca, (v) => BigInt(v)),
        [1, 256],
      ),
    );
    writeInt64Npy(join(dir, 'b.npy'), cb, [1, 256]);
    // Records as batch writes them for photos/a\xff.png and photos/b.png (the source escaped, io/byte-names.ts).
    const styled = `${fresh('byte-tokens')}.jsonl`;
    writeFileSync(
      styled,
      [good[0], good[1]]
        .map((r, i) => `${JSON.stringify({ ...r, source: i ? 'photos/b.png' : 'photos/a\udcff.png' })}\n`)
        .join(''),
    );
    const s = await concat({ styled, external: dir });
    expect(s).toMatchObject({ written: 2, matchedBy: 'stem' });
    const lines = jsonLines(s.output);
    expect(lines.map((l) => l.external_source)).toEqual([join(dir, 'a\udcff.npy'), join(dir, 'b.npy')]);
    expect(lines[0].tokens.slice(-256)).toEqual(ca.map((c) => c + K));
  });

  test('integrity 15.12: when the layout cannot be written, no combined file is left behind', async () => {
    const output = `${fresh('nolayout')}.jsonl`;
    const layoutDir = join(tmp.dir, 'layout-dir');
    mkdirSync(layoutDir);
    // The layout's folder turns into a file while concat runs: its write fails at the end.
    const sabotage = () => {
      if (statSync(layoutDir).isDirectory()) {
        rmSync(layoutDir, { recursive: true });
        writeFileSync(layoutDir, 'not a folder');
      }
    };
    await expect(
      concat({ external: codesDir, output, layoutOutput: join(layoutDir, 'x.layout.json'), onProgress: sabotage }),
    ).rejects.toThrow();
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dirname(output)).filter((n) => n.includes(basename(output)))).toEqual([]);
  });

  test('integrity 15.6: a layout whose external dtype cannot hold the vocabulary is refused, never narrowed', async () => {
    const s = await concat({ external: codesDir });
    const edited = JSON.parse(readFileSync(s.layoutFile, 'utf8'));
    expect(edited.external.vocab_size).toBeGreaterThan(256);
    edited.external.npy.dtype = 'uint8';
    const file = join(tmp.dir, 'narrow.layout.json');
    writeFileSync(file, JSON.stringify(edited));
    const out = fresh('narrow');
    await expect(splitSequences({ input: s.output, layout: file, outDir: out })).rejects.toThrow(
      /external\.npy\.dtype uint8 holds codes up to 255, but vocab_size is \d+; refusing to narrow codes/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

test('the CLI: concat and split with exit codes, --json summaries and a usage error', () => {
  const M = ['--model', FIXTURE_MODEL];
  const combined = join(tmp.dir, 'cli.jsonl');
  const c = runCli(['concat', tokensJsonl, codesDir, '-o', combined, '--bos', '--eos', '--json', ...M]);
  expect(c.stderr).toBe('');
  expect(c.code).toBe(0);
  expect(JSON.parse(c.stdout)).toMatchObject({
    written: 6,
    layoutFile: join(tmp.dir, 'cli.layout.json'),
    failed: [failedSource],
  });
  const out = join(tmp.dir, 'cli-parts');
  const sp = runCli(['split', combined, '-o', out, '--json']);
  expect(sp.code).toBe(0);
  expect(JSON.parse(sp.stdout)).toMatchObject({ written: 6, skipped: [] });
  const again = runCli(['split', combined, '-o', out]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/styled-vq: error: Output folder .*cli-parts is not empty/);
  const noVocab = runCli([
    'concat',
    tokensJsonl,
    codesDir,
    '-o',
    join(tmp.dir, 'k.jsonl'),
    '--styled-vocab',
    '1024',
    '--layout',
    'separate',
    '--sep',
  ]);
  expect(noVocab.code).toBe(1);
  expect(noVocab.stderr).toMatch(/separate layout has no separator/);
});
