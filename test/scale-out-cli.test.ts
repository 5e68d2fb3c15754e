/**
 * `batch --shard` and `merge` as an engine runs them: real CLI processes, two writers on
 * one shard at once, a rerun of a finished shard, SIGTERM mid-shard then resume, and the
 * exit codes a job script sees (0, 1, 2, 75, 143).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorLines, runCli } from './helpers/cli';
import { FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';
import { writeBadFiles, writeImageFolder } from './helpers/image-folder';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
const SLOW = ['--batch-size', '2', '--concurrency', '1'];

let tmp: ReturnType<typeof tempDir>;
let folder: string;
let clean: string;
const cli = (args: string[], env?: Record<string, string | undefined>) => runCli(args, { cwd: tmp.dir, env });
const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);
/** Sources and tokens (float latents and libvips error texts aside, as in batch-cli.test.ts). */
const canonical = (lines: string[]) =>
  lines.map((l) => {
    const r = JSON.parse(l);
    return r.error !== undefined ? { source: r.source, failed: true } : { source: r.source, tokens: r.tokens };
  });

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

async function untilLines(run: Running, path: string, lines: number): Promise<void> {
  let gone = false;
  void run.exited.then(() => (gone = true));
  const deadline = Date.now() + 60_000;
  while (linesOf(path).length < lines) {
    if (gone || Date.now() > deadline)
      throw new Error(
        `the run ended (or stalled) before writing ${lines} lines: ${(await Promise.race([run.exited, { stderr: '' }])).stderr}`,
      );
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeAll(async () => {
  tmp = tempDir('styled-vq-scale-cli-');
  folder = join(tmp.dir, 'photos');
  // 40 JPEGs of 1000+ px: slow enough to preprocess one at a time that a second writer or a SIGTERM lands mid-run.
  await writeImageFolder(folder, { count: 40, width: 100, height: 75, scale: 10, format: 'jpeg', seed: 9 });
  clean = join(tmp.dir, 'clean.jsonl');
  expect(cli(['batch', folder, '-o', clean, '-q', ...M])).toMatchObject({ code: 0 });
});
afterAll(() => tmp.cleanup());

test('two writers on one shard at once: the second exits 75 and touches nothing; the first finishes a clean shard', async () => {
  const args = ['batch', folder, '--shard', '0/2', '-o', 'two.jsonl', '--resume', ...SLOW, '-q', ...M];
  const out = join(tmp.dir, 'two-00000-of-00002.jsonl');
  const a = start(args);
  await untilLines(a, out, 2);
  // Pause the first writer (alive, its heartbeat fresh) so the second surely meets it mid-run.
  a.child.kill('SIGSTOP');
  const held = readFileSync(out);
  const b = cli(args);
  expect(readFileSync(out)).toEqual(held);
  a.child.kill('SIGCONT');
  expect(b.code).toBe(75);
  expect(errorLines(b.stderr)).toEqual([
    expect.stringMatching(
      /^styled-vq: error: .*two-00000-of-00002\.jsonl is being written by another process \(pid \d+ on .*\); exit 75: retry later/,
    ),
  ]);
  const { code } = await a.exited;
  expect(code).toBe(0);
  const lines = linesOf(out);
  expect(canonical(lines)).toEqual(canonical(linesOf(clean)).slice(0, 20));
  expect(existsSync(`${out}.done.json`)).toBe(true);
  expect(existsSync(`${out}.lock`)).toBe(false);
});

test('a rerun on a finished shard exits 0 without starting inference and leaves the output untouched', () => {
  const args = ['batch', folder, '--shard', '1/2', '-o', 'again.jsonl', '--resume', '-q', ...M];
  expect(cli(args).code).toBe(0);
  const out = join(tmp.dir, 'again-00001-of-00002.jsonl');
  const before = { bytes: readFileSync(out), mtime: statSync(out).mtimeMs, marker: readFileSync(`${out}.done.json`) };
  const r = cli([...args.filter((a) => a !== '-q'), '--json']);
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout);
  expect(summary).toMatchObject({ alreadyComplete: true, done: 0, skipped: 20 });
  // No inference session was created (execution is set when one is), no preprocessing worker started.
  expect(summary.execution).toBeUndefined();
  expect(summary.preprocess).toEqual({ mode: 'main', concurrency: 0 });
  expect(errorLines(r.stderr)).toEqual([
    expect.stringMatching(/again-00001-of-00002\.jsonl is already complete \(20 records\); nothing to do/),
  ]);
  expect({ bytes: readFileSync(out), mtime: statSync(out).mtimeMs, marker: readFileSync(`${out}.done.json`) }).toEqual(
    before,
  );
});

test('SIGTERM mid-shard: finishes the batch in flight, exits 143, unmarked and unlocked; --resume completes it; merge proves it', async () => {
  const args = ['batch', folder, '--shards', '2', '-o', 'term.jsonl', '--resume', ...SLOW, ...M];
  const out = join(tmp.dir, 'term-00001-of-00002.jsonl');
  expect(cli(args, { JOB_COMPLETION_INDEX: '0', SLURM_ARRAY_TASK_ID: undefined }).code).toBe(0); // shard 0, index from Kubernetes' variable
  // Shard 1, index from Slurm's variable, stopped by SIGTERM midway.
  const env = { ...process.env, SLURM_ARRAY_TASK_ID: '1' };
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null }>((resolve) => child.on('exit', (code) => resolve({ code })));
  const term: Running = { child, exited: exited.then((e) => ({ ...e, signal: null, stderr })) };
  await untilLines(term, out, 4);
  child.kill('SIGTERM');
  const { code } = await exited;
  expect(code).toBe(143);
  expect(stderr).toMatch(/SIGTERM: stopping after the current batch/);
  expect(stderr).toMatch(
    /styled-vq: error: terminated \(SIGTERM\): \d+ inputs are in .*term-00001-of-00002\.jsonl; to finish, run the same command with --resume/,
  );
  expect(readFileSync(out, 'utf8').endsWith('\n')).toBe(true);
  const partial = linesOf(out).length;
  expect(partial).toBeLessThan(20);
  expect(existsSync(`${out}.done.json`)).toBe(false);
  expect(existsSync(`${out}.lock`)).toBe(false);

  // merge refuses while a shard is unfinished, and prints the --array to resubmit.
  const m = cli(['merge', `${tmp.dir}/term-*.jsonl`, '-o', 'term-all.jsonl']);
  expect(m.code).toBe(2);
  expect(m.stdout).toBe('--array=1\n');
  expect(errorLines(m.stderr)).toEqual([
    expect.stringMatching(
      /^styled-vq: error: 1 of 2 shards are missing, unfinished or changed: rerun them with --array=1$/,
    ),
  ]);
  expect(existsSync(join(tmp.dir, 'term-all.jsonl'))).toBe(false);

  const r = cli([...args, '--json'], { SLURM_ARRAY_TASK_ID: '1' });
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ skipped: partial, done: 20 - partial, shard: { index: 1, count: 2 } });
  const mixed = cli(['merge', tmp.dir, '-o', 'term-all.jsonl']);
  expect(mixed.code).toBe(2); // the folder holds shards of three jobs over the same inputs
  expect(errorLines(mixed.stderr)).toEqual([
    expect.stringMatching(/Shard \d is marked done twice: .* and .*; remove one/),
  ]);
  const ok = cli(['merge', `${tmp.dir}/term-*-of-00002.jsonl`, '-o', 'term-all.jsonl', '--json']);
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ shards: 2, records: 40 });
  expect(canonical(linesOf(join(tmp.dir, 'term-all.jsonl')))).toEqual(canonical(linesOf(clean)));
});

test('exit codes a job script sees: a bad --shard (1), every input failed (2)', async () => {
  const bad = (args: string[], env?: Record<string, string>) => {
    const r = cli(['batch', folder, '-o', 'x.jsonl', ...args, ...M], env);
    return [r.code, errorLines(r.stderr)];
  };
  expect(bad(['--shard', '2'])).toEqual([1, [expect.stringMatching(/Expected I\/N .* for --shard but received "2"/)]]);
  expect(bad(['--shard', '5/5'])).toEqual([
    1,
    [expect.stringMatching(/--shard 5\/5: shard index 5 is out of range; shards are numbered 0 to 4/)],
  ]);
  expect(bad(['--shards', '4'], { SLURM_ARRAY_TASK_ID: '', JOB_COMPLETION_INDEX: '' })).toEqual([
    1,
    [expect.stringMatching(/--shards 4 needs this task's index/)],
  ]);
  expect(bad(['--shards', '4', '--shard-from-env', 'MY_TASK'], { MY_TASK: '9' })).toEqual([
    1,
    [expect.stringMatching(/MY_TASK=9 is out of range for 4 shards/)],
  ]);
  const badDir = join(tmp.dir, 'bad');
  await writeBadFiles(badDir);
  const r = cli(['batch', badDir, '-o', 'bad.jsonl', ...M]);
  expect(r.code).toBe(2);
  expect(errorLines(r.stderr).pop()).toMatch(/every one of the 3 inputs failed .*not marked done/);
  expect(existsSync(join(tmp.dir, 'x.jsonl'))).toBe(false);
});
