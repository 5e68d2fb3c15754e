/**
 * `styled-vq batch` as users run it: the built CLI in a child process (worker threads for
 * preprocessing), killed with SIGKILL or interrupted with SIGINT mid-run and resumed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBatch } from '../src/batch/run-batch';
import { Model } from '../src/model/model';
import { errorLines, runCli, runCliInProcess } from './helpers/cli';
import { FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';
import { writeBadFiles, writeImageFolder } from './helpers/image-folder';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];

let tmp: ReturnType<typeof tempDir>;
let folder: string;
let images: string[];
let clean: string;

const cli = (...args: string[]) => runCli(args, { cwd: tmp.dir });
const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);
type Rec = { source: string; tokens?: number[]; error?: string };
const canonical = (path: string) =>
  linesOf(path).map((l) => {
    const r = JSON.parse(l) as Rec;
    return r.error !== undefined ? { source: r.source, failed: true } : { source: r.source, tokens: r.tokens };
  });

/** Start the CLI; resolves once `path` holds at least `lines` complete lines. */
async function startAndWaitForLines(
  args: string[],
  path: string,
  lines: number,
): Promise<{ child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null; stderr: string }> }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const deadline = Date.now() + 60_000;
  let gone = false;
  void exited.then(() => (gone = true));
  while (linesOf(path).length < lines) {
    if (gone || Date.now() > deadline)
      throw new Error(`the run ended (or stalled) before writing ${lines} lines: ${stderr}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, exited };
}

beforeAll(async () => {
  tmp = tempDir('styled-vq-batch-cli-');
  folder = join(tmp.dir, 'photos');
  // 60 JPEGs of 1000+ px: slow enough to preprocess (one at a time) that a kill lands mid-run.
  images = await writeImageFolder(folder, { count: 60, width: 100, height: 75, scale: 10, format: 'jpeg', seed: 5 });
  clean = join(tmp.dir, 'clean.jsonl');
  const r = cli('batch', folder, '-o', clean, '-q', ...M);
  expect(r).toMatchObject({ code: 0, stderr: '' });
});
afterAll(() => tmp.cleanup());

test('the clean run: one record per image, in order, each with 36 tokens', () => {
  const recs = canonical(clean);
  expect(recs.map((r) => r.source)).toEqual(images);
  expect(recs.every((r) => r.tokens?.length === 36)).toBe(true);
});

test('kill -9 mid-run, then --resume: every input exactly once, in order, every line valid JSON, tokens of a clean run', async () => {
  const out = join(tmp.dir, 'killed.jsonl');
  const args = ['batch', folder, '-o', out, '--batch-size', '2', '--concurrency', '1', '-q', ...M];
  const { child, exited } = await startAndWaitForLines(args, out, 6);
  child.kill('SIGKILL');
  const { signal } = await exited;
  expect(signal).toBe('SIGKILL');
  const atKill = linesOf(out).length;
  expect(atKill).toBeLessThan(images.length); // it really died mid-run

  // Without --resume the partial output is protected.
  const refused = cli('batch', folder, '-o', out, ...M);
  expect(refused.code).toBe(1);
  expect(errorLines(refused.stderr)).toEqual([expect.stringMatching(/Output exists: .*--resume/)]);

  const r = cli('batch', folder, '-o', out, '--resume', '--json', ...M);
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout);
  expect(summary.skipped).toBeGreaterThanOrEqual(atKill - 2); // a cut-off last line is redone
  expect(summary.skipped + summary.done).toBe(images.length);
  const text = readFileSync(out, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.split('\n').slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
  expect(canonical(out)).toEqual(canonical(clean));
});

test('Ctrl-C (SIGINT): finishes the current batch, says how to resume, exits 130; --resume completes it', async () => {
  const out = join(tmp.dir, 'interrupted.jsonl');
  const args = ['batch', folder, '-o', out, '--batch-size', '2', '--concurrency', '1', ...M];
  const { child, exited } = await startAndWaitForLines(args, out, 4);
  child.kill('SIGINT');
  const { code, stderr } = await exited;
  expect(code).toBe(130);
  expect(stderr).toMatch(/stopping after the current batch/);
  expect(stderr).toMatch(
    /styled-vq: error: interrupted: \d+ inputs are in .*interrupted\.jsonl; to finish, run the same command with --resume/,
  );
  const text = readFileSync(out, 'utf8');
  expect(text.endsWith('\n')).toBe(true); // whole lines only
  const partial = canonical(out);
  expect(partial.length).toBeLessThan(images.length);
  expect(partial).toEqual(canonical(clean).slice(0, partial.length));
  const r = cli(...args, '--resume', '--json');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({
    skipped: partial.length,
    done: images.length - partial.length,
    repairedBytes: 0,
  });
  expect(canonical(out)).toEqual(canonical(clean));
});

test('worker threads give the records the library gives on the main thread, whatever the concurrency', async () => {
  const mixed = join(tmp.dir, 'mixed');
  await writeImageFolder(mixed, { count: 13, seed: 21 });
  await writeBadFiles(mixed);
  const model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
  const inProcess = join(tmp.dir, 'in-process.jsonl');
  try {
    await runBatch(model, { inputs: [mixed], output: inProcess, preprocessIn: 'main', concurrency: 1, batchSize: 1 });
  } finally {
    await model.dispose();
  }
  for (const [c, b] of [
    ['1', '3'],
    ['4', '5'],
  ]) {
    const out = join(tmp.dir, `workers-${c}.jsonl`);
    const r = cli('batch', mixed, '-o', out, '--concurrency', c, '--batch-size', b, '--json', '-q', ...M);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      done: 13,
      failed: 3,
      preprocess: { mode: 'workers', concurrency: Number(c) },
    });
    expect(canonical(out)).toEqual(canonical(inProcess));
  }
});

test('the summary on stderr; nothing with --quiet; --format npy output', () => {
  const out = join(tmp.dir, 'tokens.npy');
  const r = cli('batch', folder, '-o', out, ...M);
  expect(r.code).toBe(0);
  expect(errorLines(r.stderr)).toEqual([
    expect.stringMatching(
      /^styled-vq: batch: 60 done, 0 failed; 60 records in .*tokens\.npy \+ .*tokens\.sources\.json; [\d.]+ s, [\d.]+ images\/s$/,
    ),
  ]);
  const q = cli('batch', folder, '-o', out, '--force', '-q', ...M);
  expect(q).toMatchObject({ code: 0, stderr: '', stdout: '' });
});

test('usage mistakes: exit 1 with one line, before any work', async () => {
  const bad: [string[], RegExp][] = [
    [['batch', folder, ...M], /batch needs --output \(see styled-vq batch --help\)/],
    [['batch', folder, '-o', 'x.jsonl', '--format', 'npy', ...M], /--format npy writes a \.npy file/],
    [['batch', folder, '-o', 'x.png', ...M], /batch writes JSONL \(name it <something>\.jsonl\)/],
    [
      ['batch', folder, '-o', 'x.jsonl', '--resume', '--force', ...M],
      /--resume and --overwrite cannot be used together/,
    ],
    [['batch', join(tmp.dir, 'nothing-here'), '-o', 'x.jsonl', ...M], /no such file or folder/],
    [['batch', folder, '-o', join(images[0], 'x.jsonl'), ...M], /is a file, not a folder/],
    [
      ['batch', folder, '-o', 'x.jsonl', '--batch-size', '0', ...M],
      /Expected positive integer for --batch-size but received "0"/,
    ],
  ];
  // Messages and exit codes, not process behaviour: run in this process (test/helpers/cli.ts).
  for (const [args, pattern] of bad) {
    const r = await runCliInProcess(args, { cwd: tmp.dir });
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(pattern)]);
  }
  expect(existsSync(join(tmp.dir, 'x.jsonl'))).toBe(false);
});
