/**
 * The measurements of the batch benchmark:
 *   - `styled-vq batch` as users run it (the built CLI in a child process), with its peak
 *     RSS read from /proc (VmHWM, the kernel's high-water mark, sampled every 10 ms);
 *   - pure inference: encoder + codebook on tensors decoded beforehand, same batch size,
 *     same threads: the rate the pipeline would reach if preprocessing were free;
 *   - preprocessing alone through the same worker pool: the rate the pipeline would reach
 *     if inference were free.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packImages } from '../../src/api/encode';
import { InputList } from '../../src/batch/input-list';
import { createPreprocessor } from '../../src/batch/preprocess-pool';
import { preprocessImage } from '../../src/image';
import { Model } from '../../src/model/model';
import { packageRoot } from '../../src/util/package-root';
// Compiled alongside this file only if imported: the pool runs it as its worker script.
// (Imported on the main thread it does nothing: it only listens on a worker's parentPort.)
import '../../src/batch/preprocess-worker';

export interface CliRun {
  /** The run's own figure: (done + failed) / seconds after the model was loaded. */
  imagesPerSecond: number;
  done: number;
  failed: number;
  /** Wall time of the whole process (start-up and model loading included). */
  wallSeconds: number;
  peakRssMB: number;
  preprocess: { mode: string; concurrency: number };
}

function vmHwmMB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined; // exited, or not Linux
  }
}

export async function runCliBatch(args: string[]): Promise<CliRun> {
  const bin = join(packageRoot(), 'bin', 'styled-vq.js');
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [bin, 'batch', ...args, '--json', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, vmHwmMB(child.pid!) ?? 0)), 10);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(timer);
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`styled-vq batch exited ${code}: ${stderr.trim().split('\n').pop()}`);
  const s = JSON.parse(stdout);
  return {
    imagesPerSecond: s.imagesPerSecond,
    done: s.done,
    failed: s.failed,
    wallSeconds,
    peakRssMB: Math.round(peak * 10) / 10,
    preprocess: s.preprocess,
  };
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const i of new InputList([dir])) out.push(i.source);
  return out;
}

/** Encoder + codebook only, on images decoded before the clock starts. */
export async function pureInferenceRate(
  modelDir: string,
  dir: string,
  options: { batchSize: number; threads?: number },
): Promise<{ imagesPerSecond: number; images: number }> {
  const model = await Model.open({ model: modelDir, device: 'cpu', threads: options.threads });
  try {
    const files = await listAll(dir);
    const rgb: Uint8Array[] = [];
    for (const f of files) rgb.push((await preprocessImage(f, { size: model.imageSize })).rgb);
    const run = async (imgs: Uint8Array[]) => model.quantize(await model.encode(packImages(imgs, model.imageSize)));
    await run(rgb.slice(0, options.batchSize)); // warm-up: first runs allocate
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rgb.length; i += options.batchSize) await run(rgb.slice(i, i + options.batchSize));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { imagesPerSecond: rgb.length / s, images: rgb.length };
  } finally {
    await model.dispose();
  }
}

/** Decode + PIL-exact resize through batch's worker pool, no inference. */
export async function preprocessOnlyRate(
  dir: string,
  size: number,
  concurrency: number,
): Promise<{ imagesPerSecond: number; mode: string }> {
  const files = await listAll(dir);
  const pool = createPreprocessor({ size }, { concurrency });
  try {
    await Promise.all(files.slice(0, concurrency).map((f) => pool.run(f))); // start the workers
    const t0 = process.hrtime.bigint();
    await Promise.all(files.map((f) => pool.run(f)));
    return {
      imagesPerSecond: files.length / (Number(process.hrtime.bigint() - t0) / 1e9),
      mode: pool.fallback ? `${pool.mode} (${pool.fallback})` : pool.mode,
    };
  } finally {
    await pool.close();
  }
}
