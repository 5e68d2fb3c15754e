/**
 * A multi-image `decode` publishes all of its images or none, and a failed run never
 * touches a file it did not write (issue 15.11): images are staged as temporaries and
 * renamed into place only when every one is written; a file replaced under --overwrite is
 * kept until the whole set is in place and put back if publishing fails.
 *
 * The CLI case needs a disk that fills up after the first image: a real 1 MB tmpfs as root
 * (CI's container). Without root, `ulimit -f` fails every image the same way, a weaker
 * check of the same rule (the old file must still survive).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StyledVqError } from '../src/errors';
import { OutputSet } from '../src/io/output-set';
import { errorLines } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
const isRoot = process.getuid?.() === 0;

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('styled-vq-rollback-');
});
afterAll(() => tmp.cleanup());

/** A fresh folder under the test's temp dir. */
function folder(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
const hidden = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.'));

describe('OutputSet (library)', () => {
  test('rollback removes only the staged temporaries: files of the same names from an earlier run survive', async () => {
    const dir = folder('rollback');
    writeFileSync(join(dir, 'out-0.png'), 'earlier run');
    const set = new OutputSet({ overwrite: true });
    await set.write(join(dir, 'out-0.png'), 'this run');
    await set.write(join(dir, 'out-1.png'), 'this run');
    expect(readFileSync(join(dir, 'out-0.png'), 'utf8')).toBe('earlier run'); // staged, not yet in place
    await set.rollback();
    expect(readdirSync(dir)).toEqual(['out-0.png']);
    expect(readFileSync(join(dir, 'out-0.png'), 'utf8')).toBe('earlier run');
  });

  test('--overwrite: a publish that fails half-way puts every replaced file back, byte-identical', async () => {
    const dir = folder('half-way');
    writeFileSync(join(dir, 'a.png'), 'old a');
    const set = new OutputSet({ overwrite: true });
    await set.write(join(dir, 'a.png'), 'new a');
    await set.write(join(dir, 'b.png'), 'new b');
    await set.write(join(dir, 'c.png'), 'new c');
    // b.png becomes a folder with a file in it after staging: its rename must fail.
    mkdirSync(join(dir, 'b.png'));
    writeFileSync(join(dir, 'b.png', 'keep'), 'x');
    const err = await set.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect((err as Error).message).toMatch(new RegExp(`^Cannot write ${dir}/b\\.png: `));
    expect(readFileSync(join(dir, 'a.png'), 'utf8')).toBe('old a');
    expect(readdirSync(dir).sort()).toEqual(['a.png', 'b.png']); // c.png never appeared, no temporaries
    expect(readdirSync(join(dir, 'b.png'))).toEqual(['keep']);
  });

  test('--overwrite: a successful publish replaces the old files and leaves no backups', async () => {
    const dir = folder('replace');
    writeFileSync(join(dir, 'a.png'), 'old a');
    const set = new OutputSet({ overwrite: true });
    await set.write(join(dir, 'a.png'), 'new a');
    await set.write(join(dir, 'b.png'), 'new b');
    await set.commit();
    expect(readdirSync(dir).sort()).toEqual(['a.png', 'b.png']);
    expect(readFileSync(join(dir, 'a.png'), 'utf8')).toBe('new a');
    expect(set.files).toEqual([join(dir, 'a.png'), join(dir, 'b.png')]);
  });

  test('without overwrite: a file that appeared during the run is refused at publish, not replaced', async () => {
    const dir = folder('appeared');
    const set = new OutputSet({ option: 'output' });
    await set.write(join(dir, 'a.png'), 'new a');
    await set.write(join(dir, 'b.png'), 'new b');
    writeFileSync(join(dir, 'b.png'), 'someone else');
    const err = await set.commit().catch((e: unknown) => e);
    expect((err as Error).message).toBe(`Output output ${dir}/b.png exists; add overwrite: true to replace it`);
    expect(readdirSync(dir)).toEqual(['b.png']); // a.png was published, then taken back
    expect(readFileSync(join(dir, 'b.png'), 'utf8')).toBe('someone else');
  });
});

/** The CLI in a child process; `fileLimitKb` runs it under `ulimit -f`. */
function run(args: string[], cwd: string, fileLimitKb?: number) {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const cmd = fileLimitKb ? `ulimit -f ${fileLimitKb * 2}; exec ${quoted}` : `exec ${quoted}`;
  const r = spawnSync('/bin/sh', ['-c', cmd], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('decode of several records (CLI)', () => {
  let full: string;
  let mounted = false;
  beforeAll(() => {
    full = folder('full');
    if (isRoot) mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]).status === 0;
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [full]);
  });

  test("a run that fails after writing its first image leaves the earlier run's images byte-identical", () => {
    const work = folder('cli');
    expect(run(['encode', join(EXAMPLES, 'pier.jpg'), '-o', 'r.json', '-q', ...M], work).code).toBe(0);
    const rec = JSON.stringify(JSON.parse(readFileSync(join(work, 'r.json'), 'utf8')));
    writeFileSync(join(work, 'two.jsonl'), `${rec}\n${rec}\n`);
    // The earlier run: two small images of the same names.
    expect(run(['decode', join(work, 'two.jsonl'), '-o', join(full, 'out.png'), '-q', ...M], work).code).toBe(0);
    const before = readdirSync(full).map((f) => [f, readFileSync(join(full, f))] as const);
    expect(before.map(([f]) => f).sort()).toEqual(['out-0.png', 'out-1.png']);

    // This run: 400x400 images of about 430 KB each; the disk holds one of them.
    const fill = join(full, '.fill');
    let limit: number | undefined;
    if (mounted) {
      const { stdout } = spawnSync('df', ['-k', '--output=avail', full], { encoding: 'utf8' });
      const availKb = Number(stdout.trim().split('\n')[1]);
      writeFileSync(fill, Buffer.alloc(Math.max(0, availKb - 650) * 1024));
    } else limit = 300;
    const args = ['decode', join(work, 'two.jsonl'), '-o', join(full, 'out.png'), '--size', '400x400', ...M];
    const r = run([...args, '--overwrite'], work, limit);
    expect({ code: r.code, lines: errorLines(r.stderr) }).toEqual({
      code: 2,
      lines: [expect.stringMatching(new RegExp(`^styled-vq: error: Cannot write ${full}/out-[01]\\.png: `))],
    });
    if (mounted) expect(r.stderr).toContain('out-1.png: no space left');
    rmSync(fill, { force: true });
    for (const [f, bytes] of before) expect(readFileSync(join(full, f)).equals(bytes)).toBe(true);
    expect(hidden(full)).toEqual([]); // no temporaries or backups left behind

    // With room, the same --overwrite run replaces both, and says so only once they are in place.
    const ok = run([...args, '--overwrite'], work);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/out-0\.png {2}<- {2}.*pier\.jpg\n.*out-1\.png {2}<- {2}/);
    expect(readFileSync(join(full, 'out-0.png')).equals(before[0][1])).toBe(false);
    expect(readdirSync(full).sort()).toEqual(['out-0.png', 'out-1.png']);
  });
});

test('Ctrl-C while images are being decoded: exit 130, one line, and the output folder as it was', async () => {
  const work = folder('sigint');
  expect(run(['encode', join(EXAMPLES, 'pier.jpg'), '-o', 'r.json', '-q', ...M], work).code).toBe(0);
  const rec = JSON.stringify(JSON.parse(readFileSync(join(work, 'r.json'), 'utf8')));
  writeFileSync(join(work, 'many.jsonl'), `${rec}\n`.repeat(100));
  const out = folder('sigint/out');
  writeFileSync(join(out, 'img-00.png'), 'earlier run');
  const args = [BIN, 'decode', 'many.jsonl', '-o', join(out, 'img.png'), '--size', '800x800', '--overwrite', ...M];
  const child = spawn(process.execPath, args, { cwd: work });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Signal once the first staged image exists (a hidden temporary next to the earlier run's file).
  while (readdirSync(out).length < 2 && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  expect(await exited).toBe(130);
  expect(errorLines(stderr)).toEqual([
    'styled-vq: error: SIGINT: stopped; no image was written (outputs appear only when all are decoded)',
  ]);
  expect(readdirSync(out)).toEqual(['img-00.png']);
  expect(readFileSync(join(out, 'img-00.png'), 'utf8')).toBe('earlier run');
});

/** The pid of a process that has exited: whatever it left is provably stale. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

test('after kill -9 the next decode into the same images removes their stale temporaries, and nothing else', async () => {
  const work = folder('kill');
  expect(run(['encode', join(EXAMPLES, 'pier.jpg'), '-o', 'r.json', '-q', ...M], work).code).toBe(0);
  const rec = JSON.stringify(JSON.parse(readFileSync(join(work, 'r.json'), 'utf8')));
  writeFileSync(join(work, 'many.jsonl'), `${rec}\n`.repeat(100));
  const out = folder('kill/out');
  const args = ['decode', 'many.jsonl', '-o', join(out, 'img.png'), ...M];
  const child = spawn(process.execPath, [BIN, ...args, '--size', '800x800'], { cwd: work, stdio: 'ignore' });
  const exited = new Promise<string | null>((resolve) => child.on('exit', (_, signal) => resolve(signal)));
  while (!readdirSync(out).length && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  const left = readdirSync(out);
  expect(left.length).toBeGreaterThan(0);
  for (const f of left) expect(f).toMatch(/^\.img-\d\d\.png\.\d+\.[0-9a-f]{8}\.tmp$/);

  const dead = deadPid();
  writeFileSync(join(out, 'img-07.png'), 'replaced by the killed run'); // its backup below: target in place
  const stale = [`.img-98.png.${dead}.0123abcd.tmp`, `.img-07.png.${dead}.89abcdef.tmp.old`];
  // Not provably stale temporaries of this run's images: a live process's, another file's, a backup whose
  // image is missing (the only copy of a replaced file), other patterns, a symlink.
  const keep = [
    `.img-99.png.${process.pid}.0123abcd.tmp`,
    `.other.png.${dead}.0123abcd.tmp`,
    `.img-08.png.${dead}.0123abcd.tmp.old`,
    `.img-99.png.${dead}.NOTHEX00.tmp`,
    `.img-99.png.${dead}.0123abcd.tmp.bak`,
    '.img-99.png.tmp',
    `img-99.png.${dead}.0123abcd.tmp`,
    `.img.png.${dead}.0123abcd.tmp`, // the name a single record would get: not an output of this run
  ];
  for (const f of [...stale, ...keep]) writeFileSync(join(out, f), 'x');
  const link = `.img-97.png.${dead}.0123abcd.tmp`;
  symlinkSync(join(work, 'r.json'), join(out, link));

  const r = run([...args, '--overwrite'], work);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`removed ${left.length + 2} temporaries an interrupted run had left: `);
  const images = Array.from({ length: 100 }, (_, i) => `img-${String(i).padStart(2, '0')}.png`);
  expect(readdirSync(out).sort()).toEqual([...images, ...keep, link].sort());
  expect(readFileSync(join(work, 'r.json'), 'utf8')).toContain('styled-vq-tokens'); // the link's target untouched
});
