/**
 * Integrity of batch outputs (issue 15): the options that change tokens are recorded and
 * checked on resume (15.8), and a finished .npy output is verified before a resume calls
 * it complete (15.10). A small folder of the fixture model's images, the CLI run in this
 * process (messages and exit codes, not process behaviour).
 */
import { existsSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { runBatch, type RunBatchOptions } from '../src/batch/run-batch';
import { Model } from '../src/model/model';
import { errorLines, runCliInProcess } from './helpers/cli';
import { FIXTURE_MODEL, tempDir } from './helpers/fixtures';
import { writeImageFolder } from './helpers/image-folder';

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
  await writeImageFolder(photos, { count: 6, seed: 3 });
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
