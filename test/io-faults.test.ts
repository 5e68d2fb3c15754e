/**
 * I/O failures (issue 10 point 11): a full disk, a file-size limit and a read-only folder
 * give one line naming the file and the cause, exit 2, never a stack trace or "internal
 * error", and a batch output stays resumable. The full disk is a real 1 MB tmpfs when this
 * runs as root (CI's container); otherwise `ulimit -f` gives the same kind of failure.
 * The read-only folder is a read-only bind mount as root, else a folder without write
 * permission.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { errorLines } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';
import { writeImageFolder } from './helpers/image-folder';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
const isRoot = process.getuid?.() === 0;

let tmp: ReturnType<typeof tempDir>;
let imgs: string;
let full: string; // a tmpfs when we can mount one
let mounted = false;
let readOnly: string;
let roMounted = false;

/** Run the CLI; `fileLimitKb` runs it under `ulimit -f` (EFBIG once a file passes the limit). */
function run(args: string[], fileLimitKb?: number): { code: number; stdout: string; stderr: string } {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const cmd = fileLimitKb ? `ulimit -f ${fileLimitKb * 2}; exec ${quoted}` : `exec ${quoted}`; // ulimit -f counts 512-byte blocks
  const r = spawnSync('/bin/sh', ['-c', cmd], { cwd: tmp.dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function expectIoFailure(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect({ code: r.code, lines: errorLines(r.stderr) }).toEqual({ code: 2, lines: [expect.stringMatching(pattern)] });
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}
const NO_SPACE = /no space left on the device|file too large for this file system \(or ulimit -f\)/;
/** Fill the tmpfs up to `leaveKb` free (or, without a tmpfs, limit files to that size). */
function squeeze(leaveKb: number): { limit?: number; free: () => void } {
  if (!mounted) return { limit: leaveKb, free: () => undefined };
  const fill = join(full, 'fill');
  rmSync(fill, { force: true });
  const { stdout } = spawnSync('df', ['-k', '--output=avail', full], { encoding: 'utf8' });
  const availKb = Number(stdout.trim().split('\n')[1]);
  writeFileSync(fill, Buffer.alloc(Math.max(0, availKb - leaveKb) * 1024));
  return { free: () => rmSync(fill, { force: true }) };
}
const clearFull = () => {
  for (const f of readdirSync(full)) rmSync(join(full, f), { recursive: true, force: true });
};

beforeAll(async () => {
  tmp = tempDir('styled-vq-io-');
  imgs = join(tmp.dir, 'imgs');
  await writeImageFolder(imgs, { count: 24, width: 80, height: 60, format: 'png', seed: 3 });
  full = join(tmp.dir, 'full');
  mkdirSync(full);
  if (isRoot) mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]).status === 0;
  readOnly = join(tmp.dir, 'ro');
  mkdirSync(readOnly);
  writeFileSync(join(readOnly, 'existing.txt'), 'x');
  if (isRoot) {
    roMounted =
      spawnSync('mount', ['--bind', readOnly, readOnly]).status === 0 &&
      spawnSync('mount', ['-o', 'remount,ro,bind', readOnly]).status === 0;
  } else chmodSync(readOnly, 0o555);
});
afterAll(() => {
  if (mounted) spawnSync('umount', [full]);
  if (roMounted) spawnSync('umount', [readOnly]);
  else if (existsSync(readOnly)) chmodSync(readOnly, 0o755);
  tmp.cleanup();
});

describe('a full disk', () => {
  test('the test has a full disk to work with (tmpfs as root, else ulimit -f)', () => {
    const disk = squeeze(4);
    const r = spawnSync(
      '/bin/sh',
      [
        '-c',
        `${disk.limit ? `ulimit -f ${disk.limit * 2}; ` : ''}exec '${process.execPath}' -e "require('fs').writeFileSync('${join(full, 'probe')}', Buffer.alloc(64 * 1024))"`,
      ],
      { encoding: 'utf8' },
    );
    disk.free();
    rmSync(join(full, 'probe'), { force: true });
    expect(r.stderr).toMatch(mounted ? /ENOSPC/ : /EFBIG/);
  });

  test.each(['jsonl', 'npy'])(
    'batch to %s: one line, exit 2; after freeing space --resume finishes it exactly',
    (format) => {
      clearFull();
      const out = join(full, `out.${format}`);
      const reference = join(tmp.dir, `reference.${format === 'npy' ? 'jsonl' : 'jsonl'}`);
      if (!existsSync(reference)) expect(run(['batch', imgs, '-o', reference, '--latents', '-q', ...M]).code).toBe(0);
      const disk = squeeze(40);
      const r = run(['batch', imgs, '-o', out, '--latents', '--batch-size', '4', ...M], disk.limit);
      expectIoFailure(
        r,
        new RegExp(
          `Cannot write ${full}/out\\.${format}(\\.journal\\.jsonl)?: (${NO_SPACE.source}); the records written so far are kept: .*--resume`,
        ),
      );
      disk.free();
      const again = run(['batch', imgs, '-o', out, '--latents', '--resume', '-q', ...M]);
      expect(again).toMatchObject({ code: 0, stderr: '' });
      if (format === 'jsonl') expect(readFileSync(out, 'utf8')).toBe(readFileSync(reference, 'utf8'));
      else {
        const sources = JSON.parse(readFileSync(join(full, 'out.sources.json'), 'utf8')).sources;
        expect(sources).toEqual(
          readFileSync(reference, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l).source),
        );
      }
    },
  );

  test('encode -o, decode, concat and split: one line naming the file, nothing half-written', () => {
    clearFull();
    const recs = join(tmp.dir, 'recs.jsonl');
    expect(
      run([
        'encode',
        join(imgs, readdirSync(imgs)[0]),
        join(imgs, readdirSync(imgs)[1]),
        '--latents',
        '-o',
        recs,
        '-q',
        ...M,
      ]).code,
    ).toBe(0);
    const codes = join(tmp.dir, 'codes.json');
    writeFileSync(
      codes,
      JSON.stringify(Array.from({ length: 2 }, () => Array.from({ length: 4096 }, (_, i) => i % 16))),
    );
    const combined = join(tmp.dir, 'combined.jsonl');
    expect(
      run([
        'concat',
        recs,
        codes,
        '-o',
        combined,
        '--match',
        'order',
        '--styled-vocab',
        '1024',
        '--external-vocab',
        '16',
        '-q',
      ]).code,
    ).toBe(0);

    let disk = squeeze(4);
    expectIoFailure(
      run(['encode', join(imgs, readdirSync(imgs)[0]), '--latents', '-o', join(full, 'e.json'), ...M], disk.limit),
      new RegExp(`Cannot write ${full}/e\\.json: (${NO_SPACE.source})`),
    );
    disk.free();
    disk = squeeze(8);
    expectIoFailure(
      run(
        [
          'concat',
          recs,
          codes,
          '-o',
          join(full, 'c.jsonl'),
          '--match',
          'order',
          '--styled-vocab',
          '1024',
          '--external-vocab',
          '16',
        ],
        disk.limit,
      ),
      new RegExp(`Cannot write ${full}/c\\.jsonl: (${NO_SPACE.source})`),
    );
    disk.free();
    disk = squeeze(8);
    expectIoFailure(
      run(['split', combined, '-o', join(full, 'parts'), '--external-out', 'single'], disk.limit),
      new RegExp(`Cannot write ${full}/parts: (${NO_SPACE.source})`),
    );
    disk.free();
    disk = squeeze(1);
    expectIoFailure(
      run(['decode', recs, '--size', '400x400', '-o', join(full, 'd.png'), ...M], disk.limit),
      new RegExp(`Cannot write ${full}/d-\\d\\.png: (${NO_SPACE.source})`),
    );
    disk.free();
    // Nothing half-written: no temporaries, no partial outputs.
    expect(readdirSync(full).filter((f) => f !== 'fill')).toEqual([]);
  });
});

describe('a read-only folder', () => {
  const CAUSE = /read-only file system|permission denied/;
  test.each([
    ['encode -o', () => ['encode', join(EXAMPLES, 'pier.jpg'), '-o', join(readOnly, 'x.json'), ...M]],
    ['preprocess -o', () => ['preprocess', join(EXAMPLES, 'pier.jpg'), '--size', '16', '-o', join(readOnly, 'x.png')]],
    ['batch', () => ['batch', imgs, '-o', join(readOnly, 'x.jsonl'), ...M]],
    ['batch --overwrite of a file there', () => ['batch', imgs, '-o', join(readOnly, 'existing.txt.jsonl'), ...M]],
    ['split', () => ['split', join(tmp.dir, 'combined.jsonl'), '-o', join(readOnly, 'parts')]],
    [
      'a new folder inside it',
      () => ['preprocess', join(EXAMPLES, 'pier.jpg'), '--size', '16', '-o', join(readOnly, 'new', 'x.png')],
    ],
  ])('%s: one line naming the path and the cause, exit 2', (_what, args) => {
    const r = run(args());
    expectIoFailure(r, new RegExp(`Cannot (write|open|create folder) ${readOnly}.*: (${CAUSE.source})`));
  });
});

test('an input that cannot be read (permission) is one line too', () => {
  const secret = join(tmp.dir, 'secret.png');
  copyFileSync(join(EXAMPLES, 'pier.jpg'), secret);
  chmodSync(secret, 0o000);
  try {
    const r = run(['encode', secret, ...M]);
    if (isRoot)
      expect(r.code).toBe(0); // root reads it anyway
    else
      expect({ code: r.code, lines: errorLines(r.stderr) }).toEqual({
        code: 2,
        lines: [expect.stringMatching(/secret\.png: .*(permission|EACCES)/)],
      });
  } finally {
    chmodSync(secret, 0o644);
  }
});
