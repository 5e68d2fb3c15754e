/**
 * The CLI in scripts and pipes (issue 10, points 1-4 and 12): one overwrite policy for
 * every command, `-` for stdin/stdout, stdout always one compact record per line, data on
 * stdout and messages on stderr, and `batch --overwrite` that keeps the old output until
 * the new run has started.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorLines, pngSize, runCli, runCliInProcess } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const PIER = join(EXAMPLES, 'pier.jpg');
const GLACIER = join(EXAMPLES, 'glacier.jpg');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];

let tmp: ReturnType<typeof tempDir>;
let cwd: string;
beforeAll(() => {
  tmp = tempDir('styled-vq-safety-');
  cwd = tmp.dir;
  copyFileSync(PIER, join(cwd, 'photo.png')); // a JPEG named .png, as the report had it: its bytes must survive
  copyFileSync(GLACIER, join(cwd, 'glacier.jpg'));
});
afterAll(() => tmp.cleanup());

const cli = (...args: string[]) => runCli(args, { cwd });
/** The CLI with bytes on stdin; stdout as bytes. */
function piped(args: string[], input: Buffer | string): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, input, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
function expectFailure(r: { code: number; stderr: string }, code: number, pattern: RegExp): void {
  const lines = errorLines(r.stderr);
  expect({ code: r.code, lines }).toEqual({ code, lines: [expect.stringMatching(pattern)] });
  expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
}
const bytes = (name: string) => readFileSync(join(cwd, name));

describe('one overwrite policy (point 1)', () => {
  test('encode photo.png -o photo.json && decode photo.json leaves photo.png alone', () => {
    const before = bytes('photo.png');
    expect(cli('encode', 'photo.png', '-o', 'photo.json', ...M).code).toBe(0);
    expectFailure(
      cli('decode', 'photo.json', ...M),
      1,
      /^styled-vq: error: Output -o photo\.png exists; add --overwrite to replace it$/,
    );
    expect(bytes('photo.png').equals(before)).toBe(true);
    // --overwrite replaces it, as asked
    expect(cli('decode', 'photo.json', '--overwrite', ...M).code).toBe(0);
    expect(pngSize(join(cwd, 'photo.png'))).toEqual([64, 64]);
    copyFileSync(PIER, join(cwd, 'photo.png'));
  });

  test.each([
    ['encode', ['encode', 'glacier.jpg', '-o', 'taken.jsonl']],
    ['decode', ['decode', 'photo.json', '-o', 'taken.png']],
    ['reconstruct', ['reconstruct', 'glacier.jpg', '-o', 'taken.png']],
    ['preprocess', ['preprocess', 'glacier.jpg', '-o', 'taken.png']],
    ['dequantize', ['dequantize', 'photo.json', '-o', 'taken.npy']],
    [
      'concat',
      ['concat', 'photo.json', 'ext.json', '-o', 'taken.jsonl', '--styled-vocab', '1024', '--external-vocab', '16'],
    ],
  ])('%s refuses an existing output without --overwrite, replaces it with', (_cmd, args) => {
    const out = args[args.indexOf('-o') + 1];
    writeFileSync(join(cwd, 'ext.json'), JSON.stringify({ photo: [1, 2, 3] }));
    writeFileSync(join(cwd, out), 'precious');
    expectFailure(
      cli(...args, ...M),
      1,
      new RegExp(`Output -o ${out.replace('.', '\\.')} exists; add --overwrite to replace it`),
    );
    expect(bytes(out).toString()).toBe('precious');
    const r = cli(...args, ...M, '--overwrite');
    expect(r).toMatchObject({ code: 0 });
    expect(bytes(out).toString()).not.toBe('precious');
  });

  test('an input of the same run is never an output, even with --overwrite or through a link', () => {
    symlinkSync('glacier.jpg', join(cwd, 'alias.jpg'));
    expectFailure(
      cli('preprocess', 'glacier.jpg', '-o', 'alias.jpg', '--overwrite', '--size', '16'),
      1,
      /Output -o alias\.jpg is also an input of this run/,
    );
    expectFailure(
      cli('encode', 'photo.json', '-o', './photo.json', '--overwrite', ...M),
      1,
      /is also an input of this run/,
    );
  });

  test('-o new/dir/x.png creates the missing folders', () => {
    expect(cli('preprocess', 'glacier.jpg', '--size', '16', '-o', join('new', 'deeper', 'x.png')).code).toBe(0);
    expect(pngSize(join(cwd, 'new', 'deeper', 'x.png'))).toEqual([16, 16]);
  });

  test('an output path that is a symlink is replaced by a file; the link target is never written through', () => {
    writeFileSync(join(cwd, 'target.txt'), 'keep me');
    symlinkSync('target.txt', join(cwd, 'link.png'));
    expectFailure(
      cli('preprocess', 'glacier.jpg', '--size', '16', '-o', 'link.png'),
      1,
      /link\.png exists \(a symlink\); add --overwrite/,
    );
    expect(cli('preprocess', 'glacier.jpg', '--size', '16', '-o', 'link.png', '--overwrite').code).toBe(0);
    expect(lstatSync(join(cwd, 'link.png')).isSymbolicLink()).toBe(false);
    expect(bytes('target.txt').toString()).toBe('keep me');
  });
});

describe('- for stdin and stdout (point 2)', () => {
  test('cat pier.jpg | encode - prints the record of the piped image', () => {
    const r = piped(['encode', '-', ...M], readFileSync(PIER));
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout.toString());
    expect(rec).toMatchObject({ source: '<stdin>', original_size: [720, 360] });
    const direct = JSON.parse(cli('encode', PIER, ...M).stdout);
    expect(rec.tokens).toEqual(direct.tokens);
  });

  test('encode | decode - -o - --format png: an image on stdout; without --format one clear line', () => {
    const rec = cli('encode', PIER, ...M).stdout;
    const r = piped(['decode', '-', '-o', '-', '--format', 'png', ...M], rec);
    expect(r.code).toBe(0);
    expect(r.stdout.subarray(1, 4).toString()).toBe('PNG');
    expect([r.stdout.readUInt32BE(16), r.stdout.readUInt32BE(20)]).toEqual([64, 64]);
    expectFailure(
      piped(['decode', '-', '-o', '-', ...M], rec),
      1,
      /-o - writes the image to stdout: name its format with --format png, jpeg or webp/,
    );
  });

  test('reconstruct - and preprocess - read stdin; -o - writes stdout; dequantize - reads records', () => {
    const pre = piped(['preprocess', '-', '--size', '32', '-o', '-', '--format', 'jpeg'], readFileSync(PIER));
    expect(pre.code).toBe(0);
    expect(pre.stdout.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const rec = piped(['reconstruct', '-', '-o', '-', '--format', 'webp', ...M], readFileSync(PIER));
    expect(rec.code).toBe(0);
    expect(rec.stdout.subarray(8, 12).toString()).toBe('WEBP');
    expect(rec.stderr).toMatch(/PSNR/); // stdout holds the image, the numbers are a message
    const deq = piped(['dequantize', '-', ...M], cli('encode', PIER, ...M).stdout);
    expect(deq.code).toBe(0);
    expect(JSON.parse(deq.stdout.toString()).latents).toHaveLength(36);
  });
});

describe('- for concat and split (point 2)', () => {
  test('encode | concat - codes | split - --layout-file: the same sequences as from files', () => {
    const recs = cli('encode', PIER, GLACIER, ...M).stdout;
    writeFileSync(join(cwd, 'pipe-recs.jsonl'), recs);
    writeFileSync(
      join(cwd, 'pipe-codes.json'),
      JSON.stringify([
        [1, 2, 3, 4],
        [4, 3, 2, 1],
      ]),
    );
    const fromFile = cli(
      'concat',
      'pipe-recs.jsonl',
      'pipe-codes.json',
      '-o',
      'pipe-a.jsonl',
      '--match',
      'order',
      '--styled-vocab',
      '1024',
      '--external-vocab',
      '8',
    );
    expect(fromFile.code).toBe(0);
    const piped1 = piped(
      [
        'concat',
        '-',
        'pipe-codes.json',
        '-o',
        'pipe-b.jsonl',
        '--layout-file',
        'pipe-b.layout.json',
        '--match',
        'order',
        '--styled-vocab',
        '1024',
        '--external-vocab',
        '8',
      ],
      recs,
    );
    expect(piped1.code).toBe(0);
    expect(bytes('pipe-b.jsonl').equals(bytes('pipe-a.jsonl'))).toBe(true);
    expectFailure(
      piped(['split', '-', '-o', 'pipe-parts'], bytes('pipe-a.jsonl')),
      1,
      /split - reads the sequences from stdin: name their layout with --layout-file/,
    );
    const sp = piped(['split', '-', '--layout-file', 'pipe-a.layout.json', '-o', 'pipe-parts'], bytes('pipe-a.jsonl'));
    expect(sp.code).toBe(0);
    const back = readFileSync(join(cwd, 'pipe-parts', 'tokens.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).tokens);
    expect(back).toEqual(
      recs
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).tokens),
    );
  });
});

describe('stdout records and streams (points 3 and 4)', () => {
  test('for f in *.jpg; do encode "$f" >> t.jsonl; done makes a file decode reads; so does --pretty', () => {
    const one = cli('encode', PIER, ...M);
    expect(one.stdout.trim().split('\n')).toHaveLength(1); // one image: one compact line
    const two = cli('encode', PIER, GLACIER, ...M);
    expect(two.stdout.trim().split('\n')).toHaveLength(2);
    const pretty = cli('encode', GLACIER, '--pretty', ...M).stdout;
    expect(pretty.split('\n').length).toBeGreaterThan(5);
    writeFileSync(join(cwd, 't.jsonl'), one.stdout + two.stdout + pretty);
    const r = cli('decode', 't.jsonl', '-o', join('loop', 'img.png'), '--json', ...M);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).outputs.map((o: { source: string }) => o.source)).toEqual([
      PIER,
      PIER,
      GLACIER,
      GLACIER,
    ]);
  });

  test('-q: nothing on stderr, data alone on stdout; status lines go to stderr', () => {
    const q = cli('encode', PIER, '-o', 'q.json', '-q', ...M);
    expect(q).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const loud = cli('preprocess', PIER, '--size', '16', '-o', 'loud.png');
    expect(loud.stdout).toBe('');
    expect(loud.stderr).toMatch(/^wrote loud\.png \(16x16 from 720x360\)/);
    const d = cli('decode', 'q.json', '-o', 'q.png', '-q', ...M);
    expect(d).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  test('doctor exits non-zero when the default model is unusable', () => {
    const r = runCli(['doctor', '--device', 'cpu'], { cwd, env: { STYLED_VQ_MODEL: join(cwd, 'no-such-model') } });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/model +not usable/);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^styled-vq: error: the model is not usable: /)]);
  });
});

describe('batch --overwrite keeps the old output until the new run has started (point 12)', () => {
  let old: Buffer;
  beforeAll(() => {
    mkdirSync(join(cwd, 'imgs'));
    copyFileSync(PIER, join(cwd, 'imgs', 'a.jpg'));
    expect(cli('batch', 'imgs', '-o', 'b.jsonl', '-q', ...M).code).toBe(0);
    old = bytes('b.jsonl');
  });

  test('no images: the old output is intact', () => {
    mkdirSync(join(cwd, 'empty', 'sub'), { recursive: true });
    copyFileSync(PIER, join(cwd, 'empty', 'sub', 'x.jpg'));
    expectFailure(
      cli('batch', 'empty', '-o', 'b.jsonl', '--overwrite', ...M),
      2,
      /No images found in empty; empty has images in subfolders: add -r/,
    );
    expect(bytes('b.jsonl').equals(old)).toBe(true);
  });

  test('a model that fails to load: the old output is intact', () => {
    expectFailure(
      cli('batch', 'imgs', '-o', 'b.jsonl', '--overwrite', '--model', join(cwd, 'nope'), '--device', 'cpu'),
      2,
      /nope/,
    );
    expect(bytes('b.jsonl').equals(old)).toBe(true);
  });

  test('a run that starts replaces it (--force is the old name)', () => {
    copyFileSync(GLACIER, join(cwd, 'imgs', 'b.jpg'));
    expect(cli('batch', 'imgs', '-o', 'b.jsonl', '--force', '-q', ...M).code).toBe(0);
    expect(bytes('b.jsonl').toString().trim().split('\n')).toHaveLength(2);
    expect(existsSync(join(cwd, 'b.jsonl'))).toBe(true);
  });
});

describe('messages a user can act on (point 7)', () => {
  test('one bad file among many: encode says how to keep going, and --continue-on-error does', () => {
    writeFileSync(join(cwd, 'notes.txt'), 'not an image');
    const r = cli('encode', PIER, 'notes.txt', GLACIER, ...M);
    expectFailure(
      r,
      2,
      /notes\.txt: .*\(nothing written; --continue-on-error records it and goes on, and batch does that for whole folders\)$/,
    );
    const ok = cli('encode', PIER, 'notes.txt', GLACIER, '--continue-on-error', ...M);
    expect(ok.code).toBe(0);
    const recs = ok.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.map((x) => (x.error ? 'error' : 'tokens'))).toEqual(['tokens', 'error', 'tokens']);
    expect(ok.stderr).toMatch(/failed: notes\.txt/);
  });

  test('raw yargs messages become one line naming the flag and what to do', async () => {
    // Messages and exit codes only: run in this process (test/helpers/cli.ts).
    const cli = (...args: string[]) => runCliInProcess(args, { cwd });
    expectFailure(
      await cli('decode'),
      1,
      /^styled-vq: error: decode needs <tokens>: e\.g\. styled-vq decode tokens \(see styled-vq decode --help\)$/,
    );
    expectFailure(
      await cli('preprocess', PIER),
      1,
      /^styled-vq: error: preprocess needs --output \(see styled-vq preprocess --help\)$/,
    );
    expectFailure(await cli('encode', PIER, '-o'), 1, /^styled-vq: error: -o needs a value/);
    expectFailure(
      await cli('batch', 'x', '-o', 'x.jsonl', '--resume', '--overwrite'),
      1,
      /--resume and --overwrite cannot be used together/,
    );
    expectFailure(
      await cli('info', '--threads', 'many'),
      1,
      /^styled-vq: error: Expected positive integer for --threads but received "many" of type string/,
    );
  });
});
