/**
 * A real Slurm job array over the built CLI (docs/scale-out.md's recipe): 4 shards of a
 * few hundred generated images, one task `kill -9`ed and one `scancel`ed midway, `merge`
 * refusing with the `--array` of the two, the two resubmitted with exactly that string,
 * `merge` again, and the result byte-identical to a single-process run. Then the whole
 * array once more: every task finds its valid marker and exits 0 at once.
 *
 * Needs Slurm running (`.ci/slurm/up.sh DIR`, SLURM_CONF=DIR/slurm.conf; .ci/run does it).
 * Without it this test fails, loudly: it never skips.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_MODEL, ROOT, tempDir } from '../helpers/fixtures';
import { writeImageFolder } from '../helpers/image-folder';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const SHARDS = 4;
const IMAGES = Number(process.env.STYLED_VQ_SLURM_IMAGES ?? 320);

let tmp: ReturnType<typeof tempDir>;
let photos: string;
let outDir: string;
let script: string;
const log = (line: string) => process.stderr.write(`slurm-array: ${line}\n`);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
const lines = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0);
const shardOut = (i: number) =>
  join(outDir, `tokens-${String(i).padStart(5, '0')}-of-${String(SHARDS).padStart(5, '0')}.jsonl`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Array task states of a job, from scontrol (no accounting database here): { taskId: state }. */
function taskStates(jobId: string): Record<string, string> {
  const out = spawnSync('scontrol', ['-o', 'show', 'job', jobId], { encoding: 'utf8' }).stdout ?? '';
  const states: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const task = /ArrayTaskId=(\S+)/.exec(l)?.[1];
    const state = /JobState=(\S+)/.exec(l)?.[1];
    if (task && state) states[task] = state;
  }
  return states;
}

async function waitForJob(jobId: string, timeoutMs = 300_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = taskStates(jobId);
    const active = Object.values(states).some((s) =>
      /PENDING|RUNNING|COMPLETING|CONFIGURING|REQUEUED|SUSPENDED/.test(s),
    );
    if (Object.keys(states).length && !active) return states;
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} not finished after ${timeoutMs / 1000} s: ${JSON.stringify(states)}`);
    await sleep(500);
  }
}

const sbatch = (array: string) => sh('sbatch', ['--parsable', `--array=${array}`, script]).split(';')[0];

beforeAll(async () => {
  // Fail loudly, never skip: this is the test that proves the recipe on a real engine.
  if (!process.env.SLURM_CONF)
    throw new Error('SLURM_CONF is not set: start Slurm with .ci/slurm/up.sh DIR and export SLURM_CONF=DIR/slurm.conf');
  const info = spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8' });
  if (info.status !== 0 || !/idle|mix|alloc/.test(info.stdout))
    throw new Error(`Slurm is not up (sinfo: ${info.stdout}${info.stderr})`);

  tmp = tempDir('styled-vq-slurm-');
  photos = join(tmp.dir, 'photos');
  outDir = join(tmp.dir, 'out');
  // JPEGs of ~700 px: decoding and resizing them one at a time takes long enough that a kill lands mid-shard.
  await writeImageFolder(photos, { count: IMAGES, width: 100, height: 75, scale: 7, format: 'jpeg', seed: 17 });
  // The recipe of docs/scale-out.md: a fixed shard count (never $SLURM_ARRAY_TASK_COUNT: a
  // resubmission of two indices would change it), --resume so a retry continues, and
  // `exec` so Slurm's signals and exit status are node's own.
  script = join(tmp.dir, 'tokenize.sbatch');
  writeFileSync(
    script,
    [
      '#!/bin/bash',
      `#SBATCH --job-name=styled-vq-tokens`,
      '#SBATCH --cpus-per-task=1',
      `#SBATCH --output=${tmp.dir}/slurm-%A_%a.out`,
      `exec ${process.execPath} ${BIN} batch ${photos} --shards ${SHARDS} -o ${outDir}/tokens.jsonl --resume \\`,
      `  --batch-size 2 --concurrency 1 --model ${FIXTURE_MODEL} --device cpu -q --json`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
});
afterAll(() => {
  if (!tmp) return;
  spawnSync('scancel', ['--name=styled-vq-tokens']);
  tmp.cleanup();
});

test('a 4-task array with one task kill -9ed and one scancelled: merge names them, resubmission finishes them, byte-identical to one run', async () => {
  const single = join(tmp.dir, 'single.jsonl');
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      BIN,
      'batch',
      photos,
      '-o',
      single,
      '--model',
      FIXTURE_MODEL,
      '--device',
      'cpu',
      '--concurrency',
      '1',
      '-q',
      '--json',
    ],
    { encoding: 'utf8' },
  );
  expect(r.status).toBe(0);
  log(
    `single process, 1 preprocessing thread: ${IMAGES} images in ${((Date.now() - t0) / 1000).toFixed(1)} s (${JSON.parse(r.stdout).imagesPerSecond.toFixed(1)} images/s in the run)`,
  );

  const started = Date.now();
  const job = sbatch(`0-${SHARDS - 1}`);
  log(`submitted array job ${job}`);
  // Wait until shards 0 and 1 are running and midway, then kill -9 the writer of shard 0 (its
  // pid is in its lock) and scancel task 1 (SIGTERM, then SIGKILL after KillWait).
  const deadline = Date.now() + 120_000;
  while (lines(shardOut(0)) < 8 || lines(shardOut(1)) < 8) {
    if (Date.now() > deadline) throw new Error(`shards 0 and 1 did not get going: ${JSON.stringify(taskStates(job))}`);
    await sleep(20);
  }
  const owner = JSON.parse(readFileSync(`${shardOut(0)}.lock`, 'utf8'));
  process.kill(owner.pid, 'SIGKILL');
  sh('scancel', [`${job}_1`]);
  const atKill = [lines(shardOut(0)), lines(shardOut(1))];
  log(
    `killed shard 0 (kill -9 pid ${owner.pid}) at ${atKill[0]} records, scancelled shard 1 at ${atKill[1]} records, of ${IMAGES / SHARDS}`,
  );

  const states = await waitForJob(job);
  log(`first pass: ${JSON.stringify(states)} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  expect(states).toEqual({ '0': 'FAILED', '1': 'CANCELLED', '2': 'COMPLETED', '3': 'COMPLETED' });
  // The kills left: no marker on either shard; a lock with a dead owner on shard 0 (kill -9), none on shard 1 (SIGTERM released it).
  expect([0, 1, 2, 3].map((i) => existsSync(`${shardOut(i)}.done.json`))).toEqual([false, false, true, true]);
  const locks = [0, 1].map((i) => existsSync(`${shardOut(i)}.lock`));
  log(
    `after the kills: shard 0 lock left=${locks[0]}, shard 1 lock left=${locks[1]}, ${lines(shardOut(0))} and ${lines(shardOut(1))} records`,
  );
  expect(locks[0]).toBe(true);
  const cancelled = readFileSync(join(tmp.dir, `slurm-${job}_1.out`), 'utf8');
  log(
    `shard 1 (scancel) said: ${cancelled
      .trim()
      .split('\n')
      .filter((l) => /SIGTERM|error|CANCELLED/.test(l))
      .join(' | ')}`,
  );

  // merge refuses and prints the resubmission string.
  const refused = spawnSync(process.execPath, [BIN, 'merge', outDir, '-o', join(tmp.dir, 'all.jsonl')], {
    encoding: 'utf8',
  });
  expect(refused.status).toBe(2);
  expect(refused.stdout).toBe('--array=0-1\n');
  expect(refused.stderr).toMatch(/2 of 4 shards are missing, unfinished or changed: rerun them with --array=0-1/);

  const resubmitted = Date.now();
  const retry = sh('sbatch', ['--parsable', refused.stdout.trim(), script]).split(';')[0];
  const retryStates = await waitForJob(retry);
  log(
    `resubmitted ${refused.stdout.trim()} as job ${retry}: ${JSON.stringify(retryStates)} after ${((Date.now() - resubmitted) / 1000).toFixed(1)} s`,
  );
  expect(retryStates).toEqual({ '0': 'COMPLETED', '1': 'COMPLETED' });
  const taken = readFileSync(join(tmp.dir, `slurm-${retry}_0.out`), 'utf8');
  const summary0 = JSON.parse(taken.slice(taken.indexOf('{')));
  log(`shard 0 retry: skipped ${summary0.skipped}, did ${summary0.done}, lock taken over: ${summary0.lockTakenOver}`);
  expect(summary0.lockTakenOver).toMatch(/is gone/);
  expect(summary0.skipped).toBeGreaterThanOrEqual(atKill[0] - 2);

  const merged = join(tmp.dir, 'all.jsonl');
  const m = spawnSync(process.execPath, [BIN, 'merge', outDir, '-o', merged, '--json'], { encoding: 'utf8' });
  expect(m.status).toBe(0);
  expect(JSON.parse(m.stdout)).toMatchObject({ shards: SHARDS, records: IMAGES });
  expect(readFileSync(merged).equals(readFileSync(single))).toBe(true);
  log(`merged ${IMAGES} records, byte-identical to the single-process run`);

  // Throughput of a shard (1 CPU each, as allocated), from the tasks that ran uninterrupted.
  for (const i of [2, 3]) {
    const text = readFileSync(join(tmp.dir, `slurm-${job}_${i}.out`), 'utf8');
    const s = JSON.parse(text.slice(text.indexOf('{')));
    log(
      `shard ${i}: ${s.done} images, ${s.elapsedSeconds.toFixed(1)} s, ${s.imagesPerSecond.toFixed(1)} images/s on 1 allocated CPU`,
    );
  }

  // The whole array again: every task finds its valid marker and exits 0 without touching anything.
  const before = readdirSync(outDir).map((f) => [f, readFileSync(join(outDir, f))] as const);
  const again = Date.now();
  const rerun = sbatch(`0-${SHARDS - 1}`);
  expect(await waitForJob(rerun)).toEqual({ '0': 'COMPLETED', '1': 'COMPLETED', '2': 'COMPLETED', '3': 'COMPLETED' });
  log(`rerun of the finished array: all COMPLETED in ${((Date.now() - again) / 1000).toFixed(1)} s from sbatch`);
  for (let i = 0; i < SHARDS; i++)
    expect(JSON.parse(readFileSync(join(tmp.dir, `slurm-${rerun}_${i}.out`), 'utf8'))).toMatchObject({
      alreadyComplete: true,
      done: 0,
    });
  expect(readdirSync(outDir).map((f) => [f, readFileSync(join(outDir, f))] as const)).toEqual(before);
});
