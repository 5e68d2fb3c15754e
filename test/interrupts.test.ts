/**
 * Interrupts leave no temporaries (issue 15.17): real signals sent to real CLI processes.
 * SIGINT / SIGTERM while `concat` or `split` writes: the temporary file or folder is
 * removed and the exit code is the README's (130 / 143). A run killed outright (SIGKILL)
 * cannot clean up: the next run on the same output removes exactly its stale temporaries
 * (by their name pattern, next to the output, of a process that is gone) and nothing else.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { concatCodes } from '../src/concat/run-concat';
import { runBatch } from '../src/batch/run-batch';
import { Model } from '../src/model/model';
import { encodeNpy } from '../src/tokens/npy';
import { errorLines, runCli } from './helpers/cli';
import { FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';
import { prng, writeImageFolder } from './helpers/image-folder';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const FINGERPRINT = '0123456789abcdef';
const N = 8_000; // sequences for split: enough files that a signal lands while they are written

let tmp: ReturnType<typeof tempDir>;
let tokens: string;
let codes: string;
let combined: string;

const rand = prng(17);
const record = (i: number) =>
  JSON.stringify({
    format: 'styled-vq-tokens',
    version: 1,
    model: { name: 'synthetic', fingerprint: FINGERPRINT },
    source: `img-${i}.png`,
    tokens: Array.from({ length: 36 }, () => Math.floor(rand() * 1024)),
  });
/** Hidden entries of `dir`: where temporaries would be. */
const hidden = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.'));
/** The pid of a process that has exited: whatever it left is provably stale. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

function start(args: string[]): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

/** Resolves once `dir` holds a hidden entry matching `pattern` (the process is mid-write). */
async function waitForTemp(dir: string, pattern: RegExp, exited: Promise<unknown>): Promise<string> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = hidden(dir).find((f) => pattern.test(f));
    if (found) return found;
    if (gone || Date.now() > deadline) throw new Error(`no temporary matching ${pattern} appeared in ${dir}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

beforeAll(async () => {
  tmp = tempDir('styled-vq-interrupts-');
  tokens = join(tmp.dir, 'tokens.jsonl');
  writeFileSync(tokens, `${Array.from({ length: N }, (_, i) => record(i)).join('\n')}\n`);
  codes = join(tmp.dir, 'codes.npy');
  writeFileSync(
    codes,
    encodeNpy(
      Int32Array.from({ length: N * 4 }, () => Math.floor(rand() * 16384)),
      [N, 4],
    ),
  );
  combined = join(tmp.dir, 'combined.jsonl');
  await concatCodes({ styled: tokens, external: codes, output: combined, model: { vocabSize: 1024 } });
});
afterAll(() => tmp.cleanup());

describe('concat', () => {
  const args = (out: string) => ['concat', '-', codes, '-o', out, '--styled-vocab', '1024'];

  test.each([
    ['SIGINT', 130, 'interrupted (SIGINT)'],
    ['SIGTERM', 143, 'terminated (SIGTERM)'],
  ] as const)(
    '%s while the combined file is written: its temporary is removed, exit %i',
    async (signal, code, what) => {
      const dir = join(tmp.dir, `concat-${signal}`);
      mkdirSync(dir);
      const { child, exited } = start(args(join(dir, 'train.jsonl')));
      child.stdin!.write(`${record(0)}\n`); // stdin stays open: concat waits, its temporary open
      await waitForTemp(dir, /^\.train\.jsonl\.\d+\.[0-9a-f]{8}\.tmp$/, exited);
      child.kill(signal);
      const r = await exited;
      expect(r.code).toBe(code);
      expect(errorLines(r.stderr)).toEqual([`styled-vq: error: ${what}; removed the temporary files it was writing`]);
      expect(readdirSync(dir)).toEqual([]);
    },
  );

  test('after SIGKILL the next concat removes its stale temporary, and nothing else', async () => {
    const dir = join(tmp.dir, 'concat-kill');
    mkdirSync(dir);
    const { child, exited } = start(args(join(dir, 'train.jsonl')));
    const left = await waitForTemp(dir, /^\.train\.jsonl\.\d+\.[0-9a-f]{8}\.tmp$/, exited);
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    expect(hidden(dir)).toEqual([left]);
    // Look-alikes that are not provably ours stay: a live process's, another file's, other patterns.
    const keep = [
      `.train.jsonl.${process.pid}.0123abcd.tmp`,
      `.other.jsonl.${deadPid()}.0123abcd.tmp`,
      `.train.jsonl.${deadPid()}.NOTHEX00.tmp`,
      '.train.jsonl.tmp',
      `train.jsonl.${deadPid()}.0123abcd.tmp`,
    ];
    for (const f of keep) writeFileSync(join(dir, f), 'not ours to remove');
    const stale = `.train.layout.json.${deadPid()}.89abcdef.tmp`; // the layout's, from a kill at the very end
    writeFileSync(join(dir, stale), '{');
    const r = runCli([...args(join(dir, 'train.jsonl')).map((a) => (a === '-' ? tokens : a))], { cwd: tmp.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /removed 2 temporaries an interrupted run had left: \.train\.jsonl\.\d+\.[0-9a-f]{8}\.tmp, \.train\.layout\.json/,
    );
    expect(readdirSync(dir).sort()).toEqual([...keep, 'train.jsonl', 'train.layout.json'].sort());
  });
});

describe('split', () => {
  const args = (out: string) => ['split', combined, '-o', out];
  const TEMP = /^\.parts\.\d+\.[0-9a-f]{8}\.tmp$/;

  test('SIGINT while the folder is built: the hidden folder is removed, exit 130', async () => {
    const dir = join(tmp.dir, 'split-int');
    mkdirSync(dir);
    const { child, exited } = start(args(join(dir, 'parts')));
    await waitForTemp(dir, TEMP, exited);
    child.kill('SIGINT');
    const r = await exited;
    expect(r.code).toBe(130);
    expect(errorLines(r.stderr)).toEqual([
      'styled-vq: error: interrupted (SIGINT); removed the temporary files it was writing',
    ]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('after SIGKILL the next split into the same folder removes the stale hidden folder', async () => {
    const dir = join(tmp.dir, 'split-kill');
    mkdirSync(dir);
    const { child, exited } = start(args(join(dir, 'parts')));
    const left = await waitForTemp(dir, TEMP, exited);
    child.kill('SIGKILL');
    await exited;
    expect(readdirSync(dir)).toEqual([left]);
    const r = runCli([...args(join(dir, 'parts')), '--external-out', 'single'], { cwd: tmp.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`removed a temporary an interrupted run had left: ${left}`);
    expect(readdirSync(dir)).toEqual(['parts']);
    expect(readdirSync(join(dir, 'parts')).sort()).toEqual(['external.npy', 'split.json', 'tokens.jsonl']);
  });
});

describe('batch', () => {
  test('--resume removes the temporaries a kill in the .npy finishing step left, and nothing else', async () => {
    const photos = join(tmp.dir, 'photos');
    await writeImageFolder(photos, { count: 5, seed: 2 });
    const out = join(tmp.dir, 'batch', 'tokens.npy');
    const model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
    const controller = new AbortController();
    try {
      const s = await runBatch(model, {
        inputs: [photos],
        output: out,
        batchSize: 2,
        onProgress: (p) => p.written >= 2 && controller.abort(),
        signal: controller.signal,
      });
      expect(s.interrupted).toBe(true);
    } finally {
      await model.dispose();
    }
    // What kill -9 in the finishing step leaves: the arrays and the sidecar half-written next to the journal.
    const dir = join(tmp.dir, 'batch');
    const pid = deadPid();
    const stale = [`.tokens.npy.${pid}.0a1b2c3d.tmp`, `.tokens.sources.json.${pid}.0a1b2c3e.tmp`];
    for (const f of stale) writeFileSync(join(dir, f), 'half');
    const keep = `.tokens.npy.${process.pid}.0a1b2c3f.tmp`; // a live process's: not provably stale
    writeFileSync(join(dir, keep), 'live');
    const r = runCli(
      ['batch', photos, '-o', out, '--resume', '--batch-size', '2', '--model', FIXTURE_MODEL, '--device', 'cpu'],
      { cwd: tmp.dir },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /removed 2 temporaries an interrupted run had left: \.tokens\.npy\.\d+\.0a1b2c3d\.tmp, \.tokens\.sources\.json/,
    );
    expect(readdirSync(dir).sort()).toEqual([keep, 'tokens.npy', 'tokens.npy.done.json', 'tokens.sources.json']);
    expect(existsSync(`${out}.journal.jsonl`)).toBe(false);
  });
});
