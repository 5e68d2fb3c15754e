/**
 * The `batch` section of the benchmark: is the streaming pipeline keeping inference busy?
 *
 *   ratio = images/s of `styled-vq batch` on >= 500 real JPEGs of mixed sizes
 *         / images/s of encoder + codebook alone on the same images, decoded beforehand
 *
 * plus preprocessing alone (which of the two limits the pipeline), and the peak RSS of
 * `batch` on 1,000 and 10,000 small images (memory must stay flat). All in one run, same
 * model, same threads. `runBatchBench` returns the figures as JSON; main.ts runs it alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_DEFAULTS } from '../../src/defaults';
import { defaultModelDir } from '../../src/model/resolve';
import { readManifest } from '../../src/model/manifest';
import { makePhotoFolder, makeSmallFolder } from './folders';
import { preprocessOnlyRate, pureInferenceRate, runCliBatch } from './measure';

export interface BatchBenchOptions {
  /** Fewer photos (128) and only the 1,000-image RSS run. */
  quick?: boolean;
  /** ONNX Runtime threads (default: all cores), for both the pipeline and pure inference. */
  threads?: number;
  /** Model package (default: the shipped default). */
  model?: string;
  /** Unused here (images go to a temporary directory); accepted from bench/main.ts. */
  outDir?: string;
  /** Where to find real JPEGs to crop from. */
  photosFrom?: string;
  /** Photos to generate (default 512; quick 128). */
  photos?: number;
  seed?: number;
  batchSize?: number;
  concurrency?: number;
  /** Folder sizes for the peak-RSS runs (default 1000 and 10000; quick 1000). */
  rssCounts?: number[];
  /** Keep the generated images (their folder is printed). */
  keep?: boolean;
  log?: (line: string) => void;
}

export const PHOTOS_FROM = '/work/cache/styled-vq/extract';

function trainingJobs(): string[] {
  try {
    return execFileSync('pgrep', ['-af', 'train.py'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export async function runBatchBench(options: BatchBenchOptions = {}): Promise<Record<string, unknown>> {
  const log = options.log ?? ((l: string) => process.stderr.write(`[bench batch] ${l}\n`));
  const model = options.model ?? defaultModelDir();
  const manifest = await readManifest(model);
  const photos = options.photos ?? (options.quick ? 128 : 512);
  const seed = options.seed ?? 1;
  const batchSize = options.batchSize ?? BATCH_DEFAULTS.batchSize;
  const concurrency = options.concurrency ?? BATCH_DEFAULTS.concurrency();
  const rssCounts = options.rssCounts ?? (options.quick ? [1000] : [1000, 10000]);
  const work = mkdtempSync(join(tmpdir(), 'styled-vq-bench-batch-'));
  const common = [
    '--model',
    model,
    '--device',
    'cpu',
    '--batch-size',
    String(batchSize),
    '--concurrency',
    String(concurrency),
    ...(options.threads ? ['--threads', String(options.threads)] : []),
  ];
  const loadBefore = loadavg()[0];
  const training = trainingJobs();
  try {
    log(`generating ${photos} mixed-size JPEGs from ${options.photosFrom ?? PHOTOS_FROM} (seed ${seed})`);
    const folder = await makePhotoFolder(options.photosFrom ?? PHOTOS_FROM, join(work, 'photos'), photos, seed);

    log(`styled-vq batch on ${photos} photos (batch ${batchSize}, concurrency ${concurrency})`);
    const pipeline = await runCliBatch([folder.dir, '-o', join(work, 'photos.jsonl'), ...common]);
    log(`  ${pipeline.imagesPerSecond.toFixed(1)} images/s, peak RSS ${pipeline.peakRssMB} MB`);
    log('pure inference on the same images, decoded beforehand');
    const inference = await pureInferenceRate(model, folder.dir, { batchSize, threads: options.threads });
    log(`  ${inference.imagesPerSecond.toFixed(1)} images/s`);
    log('preprocessing alone through the worker pool');
    const preprocess = await preprocessOnlyRate(folder.dir, manifest.config.image_size, concurrency);
    log(`  ${preprocess.imagesPerSecond.toFixed(1)} images/s`);

    const rss: Record<string, unknown>[] = [];
    for (const n of rssCounts) {
      log(`peak RSS on ${n} small images`);
      const dir = await makeSmallFolder(join(work, `small-${n}`), n, seed);
      const r = await runCliBatch([dir, '-o', join(work, `small-${n}.jsonl`), ...common]);
      log(`  ${r.peakRssMB} MB, ${r.imagesPerSecond.toFixed(1)} images/s`);
      rss.push({
        images: n,
        peak_rss_mb: r.peakRssMB,
        images_per_s: round(r.imagesPerSecond),
        wall_s: round(r.wallSeconds),
      });
      rmSync(dir, { recursive: true, force: true });
    }
    const trainingAfter = trainingJobs();
    return {
      model: { name: manifest.name, dir: model, image_size: manifest.config.image_size },
      machine: {
        cores: availableParallelism(),
        cpu: cpus()[0]?.model,
        load_1min_before: round(loadBefore),
        load_1min_after: round(loadavg()[0]),
      },
      under_load:
        training.length || trainingAfter.length
          ? {
              note: 'a training job was running: timings are distorted',
              jobs: [...new Set([...training, ...trainingAfter])],
            }
          : null,
      settings: { batch_size: batchSize, concurrency, threads: options.threads ?? 'all cores', seed },
      photos: {
        count: folder.count,
        from_sources: folder.sources,
        megabytes: round(folder.bytes / 2 ** 20),
        long_side_px: folder.longSide,
      },
      batch: {
        images_per_s: round(pipeline.imagesPerSecond),
        wall_s: round(pipeline.wallSeconds),
        peak_rss_mb: pipeline.peakRssMB,
        done: pipeline.done,
        failed: pipeline.failed,
        preprocess: pipeline.preprocess,
      },
      pure_inference: { images_per_s: round(inference.imagesPerSecond) },
      preprocess_only: { images_per_s: round(preprocess.imagesPerSecond), mode: preprocess.mode },
      ratio_batch_to_inference: round(pipeline.imagesPerSecond / inference.imagesPerSecond, 3),
      bottleneck: preprocess.imagesPerSecond < inference.imagesPerSecond ? 'preprocessing' : 'inference',
      peak_rss: rss,
    };
  } finally {
    if (options.keep) log(`images kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
