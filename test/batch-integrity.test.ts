/**
 * Integrity of batch outputs (issue 15): the options that change tokens are recorded and
 * checked on resume (15.8), and a finished .npy output is verified before a resume calls
 * it complete (15.10), and file names that are not valid UTF-8 are listed, read and
 * recorded in a reversible form (15.9). A small folder of the fixture model's images, the CLI run in this
 * process (messages and exit codes, not process behaviour).
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runBatch, type RunBatchOptions } from '../src/batch/run-batch';
import { Model } from '../src/model/model';
import { decodeName, encodeName } from '../src/io/byte-names';
import { errorLines, runCliInProcess } from './helpers/cli';
import { FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';
import sharp from 'sharp';
import { encodeImages } from '../src/api/encode';
import { prng, randomRgb, writeImageFolder } from './helpers/image-folder';

const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];

let model: Model;
let tmp: ReturnType<typeof tempDir>;
let photos: string;
let n = 0;

const out = (ext = 'jsonl') => join(tmp.dir, `out-${n++}.${ext}`);
const cli = (...args: string[]) => runCliInProcess([...args, ...M], { cwd: tmp.dir });
const batch = (options: Partial<RunBatchOptions> & { output: string }) =>
  runBatch(model, { inputs: [photos], batchSize: 4, concurrency: 1, preprocessIn: 'main', ...options });

beforeAll(async () => {
  tmp = tempDir('styled-vq-integrity-');
  photos = join(tmp.dir, 'photos');
  await writeImageFolder(photos, { count: 4, seed: 3 });
  // Two with transparency: --background changes their tokens.
  const rand = prng(8);
  for (const name of ['img-100.png', 'img-101.png']) {
    const rgb = randomRgb(80, 60, rand);
    const rgba = Buffer.alloc(80 * 60 * 4);
    for (let i = 0; i < 80 * 60; i++) {
      rgb.copy(rgba, i * 4, i * 3, i * 3 + 3);
      rgba[i * 4 + 3] = i % 80 < 40 ? 0 : 255; // left half fully transparent
    }
    await sharp(rgba, { raw: { width: 80, height: 60, channels: 4 } })
      .png()
      .toFile(join(photos, name));
  }
  model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
});
afterAll(async () => {
  await model?.dispose();
  tmp.cleanup();
});

describe('integrity 15.10: resume verifies a finished .npy output before calling it complete', () => {
  test('without a done marker: a missing or cut-off array is reported with what to do, exit 2', async () => {
    const o = out('npy');
    await batch({ output: o, latents: true });
    rmSync(`${o}.done.json`); // a finished run whose marker is gone (or never written: an older version)
    const stem = o.slice(0, -4);
    const original = readFileSync(`${stem}.latents.npy`);
    truncateSync(`${stem}.latents.npy`, original.length - 10);
    let r = await cli('batch', photos, '-o', o, '--latents', '--resume');
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `latents\\.npy has ${original.length - 10} bytes, expected ${original.length} \\(cut off or changed\\), while .*sources\\.json records a finished run of 6 rows: the output is damaged .*run again with --overwrite to redo it$`,
        ),
      ),
    ]);
    rmSync(o);
    r = await cli('batch', photos, '-o', o, '--latents', '--resume');
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/out-\d+\.npy is missing, while .*--overwrite/)]);
    expect(r.stderr).not.toMatch(/already complete/);
    // What the message says to do works.
    r = await cli('batch', photos, '-o', o, '--latents', '--overwrite', '-q');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(`${stem}.latents.npy`)).toEqual(original);
    expect(existsSync(`${o}.done.json`)).toBe(true);
  });

  test('with a done marker: its sizes and sha256 catch the damage, and the output is redone', async () => {
    const o = out('npy');
    await batch({ output: o });
    const whole = readFileSync(o);
    truncateSync(o, whole.length - 36 * 4);
    const r = await cli('batch', photos, '-o', o, '--resume', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ alreadyComplete: false, done: 6 });
    expect(r.stderr).toMatch(
      /the done marker of .* did not hold \(out-\d+\.npy has \d+ bytes, the marker says \d+\); redone/,
    );
    expect(readFileSync(o)).toEqual(whole);
  });
});

/** A ustar archive of (name bytes, data) members, built by hand so a name can hold any bytes. */
function ustar(members: [Buffer, Buffer][]): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, data] of members) {
    const h = Buffer.alloc(512);
    name.copy(h, 0);
    h.write('0000644\0', 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write('00000000000\0', 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write('0', 156, 'latin1');
    h.write('ustar\0' + '00', 257, 'latin1');
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

const WHITE = { background: [255, 255, 255] as const };
const jsonLines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('integrity 15.8: the options that change tokens are recorded and checked on resume', () => {
  test('records say how alpha was handled (encode and batch); --background changes the tokens of transparent images', async () => {
    const dropped = out();
    const white = out();
    await batch({ output: dropped });
    await batch({ output: white, alpha: WHITE });
    const [a, b] = [jsonLines(dropped), jsonLines(white)];
    expect(a.map((r) => r.preprocessing.alpha)).toEqual(Array(6).fill('drop'));
    expect(b.map((r) => r.preprocessing.alpha)).toEqual(Array(6).fill('background:255,255,255'));
    expect(b.slice(0, 4).map((r) => r.tokens)).toEqual(a.slice(0, 4).map((r) => r.tokens)); // opaque: the same
    expect(b[4].tokens).not.toEqual(a[4].tokens);
    const { records } = await encodeImages(model, [join(photos, 'img-100.png')], { alpha: { background: [0, 0, 0] } });
    expect(records[0].preprocessing?.alpha).toBe('background:0,0,0');
    // The done marker records it too, and a rerun with other options is refused, naming the flag.
    const r = await cli('batch', photos, '-o', white);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        /was marked done with another --background \(alpha: \{"background":\[255,255,255\]\} then, "drop" now\)/,
      ),
    ]);
  });

  test('--resume with another --background is refused in one line naming the flag; with the same it finishes', async () => {
    const o = out();
    await batch({ output: o, alpha: WHITE });
    const whole = readFileSync(o, 'utf8');
    rmSync(`${o}.done.json`);
    writeFileSync(o, `${whole.split('\n').slice(0, 2).join('\n')}\n`); // an interrupted run: 2 of 6 records
    let r = await cli('batch', photos, '-o', o, '--resume');
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        /out-\d+\.jsonl line 1 was made with --background 255,255,255, this run is without --background \(alpha dropped\); resume with the same --background as the first run, or/,
      ),
    ]);
    r = await cli('batch', photos, '-o', o, '--resume', '--background', '0,0,0');
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/this run is with --background 0,0,0;/)]);
    r = await cli('batch', photos, '-o', o, '--resume', '--background', 'white', '-q');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(o, 'utf8')).toEqual(whole);
    // The rest of the preprocessing too: a record made with another resize is not this run's.
    rmSync(`${o}.done.json`);
    const first = JSON.parse(whole.split('\n')[0]);
    first.preprocessing.resize = 'bilinear';
    writeFileSync(o, `${JSON.stringify(first)}\n`);
    r = await cli('batch', photos, '-o', o, '--resume', '--background', 'white');
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(
        /line 1 was made with other preprocessing \(.*"bilinear".*\) than the loaded model's .*resume with the same --model/,
      ),
    ]);
  });

  test('a finished .npy output records it in its sidecar, and a resume checks it', async () => {
    const o = out('npy');
    await batch({ output: o, alpha: WHITE });
    const sidecar = JSON.parse(readFileSync(o.replace(/\.npy$/, '.sources.json'), 'utf8'));
    expect(sidecar.alpha).toBe('background:255,255,255');
    rmSync(`${o}.done.json`);
    const r = await cli('batch', photos, '-o', o, '--resume');
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      expect.stringMatching(/sources\.json was made with --background 255,255,255, this run is without --background/),
    ]);
  });
});

describe('integrity 15.9: file names that are not valid UTF-8', () => {
  test('the escape: bytes -> name -> the same bytes; valid UTF-8 names are unchanged', () => {
    const rand = prng(42);
    for (let k = 0; k < 500; k++) {
      const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * 256)));
      expect(encodeName(decodeName(bytes))).toEqual(bytes);
    }
    for (const name of ['plain.png', 'café.jpg', '写真.png', 'emoji-😀.png', '\uFFFD.png'])
      expect(decodeName(Buffer.from(name))).toBe(name);
    // Python's surrogateescape: 0xNN -> U+DCNN (a CESU-8 surrogate is not UTF-8 either).
    expect(decodeName(Buffer.from([0x61, 0xff, 0xed, 0xa0, 0x80, 0x62]))).toBe('a\udcff\udced\udca0\udc80b');
  });

  test('batch lists, reads and records them (folder, list file, resume); encode reads one named on the command line', async () => {
    const dir = join(tmp.dir, 'bytes');
    mkdirSync(dir);
    const png = readFileSync(join(photos, 'img-000.png'));
    const raw = Buffer.concat([Buffer.from(dir), Buffer.from('/a'), Buffer.from([0xff, 0xfe]), Buffer.from('b.png')]);
    writeFileSync(raw, png); // a real file whose name is not UTF-8 (Linux allows any bytes)
    writeFileSync(Buffer.concat([Buffer.from(dir), Buffer.from('/c'), Buffer.from([0xe9]), Buffer.from('.png')]), png);
    copyFileSync(join(photos, 'img-000.png'), join(dir, 'plain.png'));
    expect(readdirSync(dir)).toHaveLength(3);

    const o = out();
    const s = await batch({ inputs: [dir], output: o });
    expect(s).toMatchObject({ done: 3, failed: 0 });
    const recs = jsonLines(o);
    expect(recs.map((r) => r.source)).toEqual([
      join(dir, 'a\udcff\udcfeb.png'),
      join(dir, 'c\udce9.png'),
      join(dir, 'plain.png'),
    ]);
    expect(encodeName(recs[0].source)).toEqual(raw); // reversible: the exact bytes
    expect(readFileSync(o, 'latin1')).toContain('a\\udcff\\udcfeb.png'); // written as JSON escapes, plain ASCII
    expect(recs[0].tokens).toEqual(recs[2].tokens); // the same image bytes, read through the byte name

    // --resume trusts the records of such names; a list file may name them too.
    writeFileSync(o, `${readFileSync(o, 'utf8').split('\n')[0]}\n`);
    expect(await batch({ inputs: [dir], output: o, resume: true })).toMatchObject({ skipped: 1, done: 2 });
    const list = join(tmp.dir, 'bytes.txt');
    writeFileSync(
      list,
      Buffer.concat([Buffer.from('bytes/a'), Buffer.from([0xff, 0xfe]), Buffer.from('b.png\nbytes/plain.png\n')]),
    );
    const fromList = out();
    expect(await batch({ inputs: [list], output: fromList })).toMatchObject({ done: 2, failed: 0 });
    expect(jsonLines(fromList).map((r) => r.source)).toEqual([
      join(tmp.dir, 'bytes/a\udcff\udcfeb.png'),
      join(tmp.dir, 'bytes/plain.png'),
    ]);

    // A webdataset tar member whose name is not UTF-8 (a ustar header holds bytes).
    const tar = join(tmp.dir, 'shard.tar');
    writeFileSync(
      tar,
      ustar([
        [Buffer.from([0x61, 0xff, 0x2e, 0x70, 0x6e, 0x67]), png],
        [Buffer.from('ok.png'), png],
      ]),
    );
    const fromTar = out();
    expect(await batch({ inputs: [tar], output: fromTar })).toMatchObject({ done: 2, failed: 0 });
    const tarRecs = jsonLines(fromTar);
    expect(tarRecs.map((r) => r.source)).toEqual([`${tar}/a\udcff.png`, `${tar}/ok.png`]);
    expect(tarRecs[0].tokens).toEqual(recs[2].tokens);

    // The CLI receives the name as bytes (the shell builds it): encode reads the file, not "not found".
    const bin = join(ROOT, 'bin', 'styled-vq.js');
    const r = spawnSync(
      'sh',
      [
        '-c',
        `exec "$0" "$1" encode "$(printf 'bytes/a\\377\\376b.png')" --model "$2" --device cpu`,
        process.execPath,
        bin,
        FIXTURE_MODEL,
      ],
      { cwd: tmp.dir, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec.source).toBe('bytes/a\udcff\udcfeb.png');
    expect(rec.tokens).toEqual(recs[2].tokens);
  });
});
