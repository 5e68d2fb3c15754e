/**
 * `batch`: tokenize every input of a folder / glob / list into one output, streaming.
 *
 *   listing (lazy, sorted) -> preprocessing (worker threads, bounded) -> in-order chunks
 *   -> encoder + codebook (one run() per chunk) -> append to the log (synced) -> [npy]
 *
 * While ONNX Runtime runs chunk k, the pool is already decoding the inputs of chunks k+1
 * and k+2; memory is bounded by that lookahead, not by the number of inputs. Every input
 * gets exactly one record, in input order: its tokens, or an error record with the reason.
 * A run stopped in any way (abort signal, crash, kill -9, power cut) is finished by a run
 * with `resume`: see resume.ts for which records it trusts.
 */
import { inputError, usageError } from '../errors';
import type { ImageOptions } from '../api/encode';
import type { Model } from '../model/model';
import type { ExecutionInfo } from '../runtime/onnx';
import { formatRecordsJsonl } from '../tokens/token-file';
import { checkOutputPath, ensureParentDir } from '../util/atomic';
import { inArray, positiveInteger } from '../util/checks';
import { AppendLog } from './append-log';
import { untilAborted } from './abortable';
import { BATCH_DEFAULTS } from './defaults';
import { InputList, ListedInput } from './input-list';
import { finishNpyOutput, readSourcesSidecar } from './npy-output';
import { BatchFormat, batchPaths, BatchPaths, BATCH_FORMATS, claimOutputs, formatFor, npyComplete, removeReplaced } from './output-paths';
import { hasImagesInSubfolders } from './dir-walk';
import { Peekable } from './peekable';
import { OrderedPrefetch } from './prefetch';
import { createPreprocessor, PreprocessMode, Preprocessor } from './preprocess-pool';
import { recoverLog, RecoveredLog } from './resume';
import { ChunkItem, tokenizeChunk } from './tokenize-chunk';

export interface RunBatchOptions extends ImageOptions {
  /** Folders, quoted globs, list files (.txt) or image files, listed in this order. */
  inputs: readonly string[];
  /** .jsonl (default) or .npy. */
  output: string;
  /** Default: from the output's extension. */
  format?: BatchFormat;
  /** Enter subfolders of folder inputs. */
  recursive?: boolean;
  /** Images per inference run (default 32). */
  batchSize?: number;
  /** Images preprocessed at once (default: one per core). */
  concurrency?: number;
  /** 'workers' (default): worker threads; 'main': on the main thread. */
  preprocessIn?: PreprocessMode;
  /** Store the continuous latents too. */
  latents?: boolean;
  /** Continue an interrupted run into the same output. */
  resume?: boolean;
  /** Replace an existing output (without resume): removed only once the new run has started. */
  overwrite?: boolean;
  /** @deprecated the old name of `overwrite`. */
  force?: boolean;
  /** Stop after the chunk being inferred; the output stays resumable. */
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
  /** Longest time between fdatasync calls (default 1000 ms). */
  syncEveryMs?: number;
}

export interface BatchProgress {
  /** Inputs in the output so far (skipped + done + failed). */
  written: number;
  /** Tokenized in this run. */
  done: number;
  /** Error records written in this run. */
  failed: number;
  /** Already in the output when this run started (resume). */
  skipped: number;
  elapsedSeconds: number;
  /** (done + failed) / elapsedSeconds. */
  imagesPerSecond: number;
}

export interface BatchSummary extends BatchProgress {
  output: string;
  format: BatchFormat;
  /** Every file of the finished output (or the log of an interrupted one). */
  files: string[];
  /** Records in the output: one per input. */
  total: number;
  /** Error records among the skipped ones (failures of earlier runs). */
  skippedFailed: number;
  /** Files in folder inputs without an image extension: not inputs. */
  ignored: number;
  /** Bytes of an interrupted write that resume cut off and redid. */
  repairedBytes: number;
  /** True when the signal stopped the run: rerun with resume to finish. */
  interrupted: boolean;
  /** The npy output was already complete (resume had nothing to do). */
  alreadyComplete: boolean;
  batchSize: number;
  preprocess: { mode: PreprocessMode; concurrency: number; fallback?: string };
  model: { name: string; fingerprint: string };
  execution: ExecutionInfo;
}

type SummaryBase = Pick<BatchSummary, 'output' | 'format' | 'batchSize' | 'model' | 'execution'>;

interface Settings {
  inputs: InputList;
  paths: BatchPaths;
  batchSize: number;
  concurrency: number;
  latents: boolean;
  resume: boolean;
  /** Files of an earlier output that `overwrite` replaces: removed once the new run has started. */
  replaced: string[];
}

async function settle(options: RunBatchOptions): Promise<Settings> {
  if (!options || typeof options.output !== 'string' || !options.output) throw usageError('Expected an output path (-o out.jsonl or out.npy)');
  const format = formatFor(options.output, options.format && inArray('format', options.format, BATCH_FORMATS));
  const batchSize = positiveInteger('batchSize', options.batchSize ?? BATCH_DEFAULTS.batchSize);
  const concurrency = positiveInteger('concurrency', options.concurrency ?? BATCH_DEFAULTS.concurrency());
  const overwrite = !!(options.overwrite ?? options.force);
  if (options.resume && overwrite) throw usageError('--resume continues an output and --overwrite replaces it: choose one');
  const inputs = new InputList(options.inputs, { recursive: options.recursive });
  await inputs.check();
  // Existing files are claimOutputs' business (it knows about --resume); this checks the rest.
  await checkOutputPath(options.output, options.inputs, '-o', { overwrite: true });
  const paths = batchPaths(options.output, format);
  const replaced = await claimOutputs(paths, { resume: !!options.resume, overwrite });
  return { inputs, paths, batchSize, concurrency, latents: !!options.latents, resume: !!options.resume, replaced };
}

/** Tokenize every input into `options.output`. Never throws for a bad input: it gets an error record. */
export async function runBatch(model: Model, options: RunBatchOptions): Promise<BatchSummary> {
  const s = await settle(options);
  const execution = await model.prepare(['encoder', 'codebook']);
  const listing = new Peekable<ListedInput>(s.inputs);
  const base: SummaryBase = {
    output: options.output,
    format: s.paths.format,
    batchSize: s.batchSize,
    model: { name: model.name, fingerprint: model.fingerprint },
    execution,
  };
  try {
    if (s.resume && (await npyComplete(s.paths))) return await alreadyComplete(s, listing, base);

    let recovered: RecoveredLog = { count: 0, failed: 0, trustedBytes: 0, droppedBytes: 0 };
    if (s.resume) recovered = await recoverLog(s.paths.log, listing, model, { latents: s.latents });
    if (recovered.count === 0 && !(await listing.peek())) {
      const ignored = s.inputs.ignored ? ` (${s.inputs.ignored} file${s.inputs.ignored === 1 ? '' : 's'} without an image extension)` : '';
      throw inputError(`No images found in ${s.inputs.specs.join(', ')}${ignored}${await subfolderHint(options)}`);
    }
    // The new run can start (model loaded, inputs found): only now does --overwrite remove the old output.
    await removeReplaced(s.replaced);
    await ensureParentDir(s.paths.log);

    const log = await AppendLog.open(s.paths.log, {
      truncateTo: s.resume ? recovered.trustedBytes : undefined,
      fresh: !s.resume,
      syncEveryMs: options.syncEveryMs ?? BATCH_DEFAULTS.syncEveryMs,
    });
    const pool = createPreprocessor(
      { size: model.imageSize, alpha: options.alpha, limitInputPixels: options.limitInputPixels },
      { concurrency: s.concurrency, mode: options.preprocessIn },
    );
    const started = Date.now(); // images/s counts this run's work, not loading or resume's scan
    const progress: BatchProgress = { written: recovered.count, done: 0, failed: 0, skipped: recovered.count, elapsedSeconds: 0, imagesPerSecond: 0 };
    let interrupted = false;
    try {
      interrupted = await pump(model, s, listing, pool, log, progress, started, options);
    } finally {
      await pool.close();
      await log.close();
    }

    const files = [s.paths.log];
    if (!interrupted && s.paths.format === 'npy') {
      await finishNpyOutput(s.paths, { model: base.model, numTokens: model.numTokens, latentDim: model.latentDim }, { rows: progress.written, latents: s.latents });
      files.splice(0, 1, s.paths.tokens!, ...(s.latents ? [s.paths.latents!] : []), s.paths.sidecar!);
    }
    return {
      ...base,
      ...progress,
      files,
      total: progress.written,
      skippedFailed: recovered.failed,
      ignored: s.inputs.ignored,
      repairedBytes: recovered.droppedBytes,
      interrupted,
      alreadyComplete: false,
      preprocess: { mode: pool.mode, concurrency: pool.concurrency, ...(pool.fallback ? { fallback: pool.fallback } : {}) },
    };
  } finally {
    await listing.close();
  }
}

/** The main loop; returns true when stopped by the signal. */
async function pump(
  model: Model,
  s: Settings,
  listing: Peekable<ListedInput>,
  pool: Preprocessor,
  log: AppendLog,
  progress: BatchProgress,
  started: number,
  options: RunBatchOptions,
): Promise<boolean> {
  const start = async (input: ListedInput): Promise<ChunkItem> => ({
    source: input.source,
    outcome: input.error ? { ok: false, error: `${input.source}: ${input.error}` } : await pool.run(input.source),
  });
  const prefetch = new OrderedPrefetch(listing, start, s.concurrency + BATCH_DEFAULTS.lookaheadBatches * s.batchSize);
  const signal = options.signal;
  let writing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      if (signal?.aborted) return true;
      const taking = prefetch.take(s.batchSize);
      taking.catch(() => undefined); // if the signal wins the race, a later failure is moot
      const chunk = await untilAborted(taking, signal);
      if (chunk === 'aborted') return true; // the chunk being assembled is redone on resume
      if (!chunk.length) break;
      const records = await tokenizeChunk(model, chunk, { latents: s.latents });
      await writing; // one write in flight: back-pressure if the disk is slower than inference
      writing = log.append(formatRecordsJsonl(records));
      // A failed write (disk full) surfaces at the next await of `writing`, not as an unhandled rejection meanwhile.
      writing.catch(() => undefined);
      const failed = records.filter((r) => 'error' in r).length;
      progress.failed += failed;
      progress.done += records.length - failed;
      progress.written += records.length;
      progress.elapsedSeconds = (Date.now() - started) / 1000;
      progress.imagesPerSecond = progress.elapsedSeconds > 0 ? (progress.done + progress.failed) / progress.elapsedSeconds : 0;
      options.onProgress?.({ ...progress });
    }
    return false;
  } finally {
    prefetch.stop();
    await writing;
    progress.elapsedSeconds = (Date.now() - started) / 1000;
    progress.imagesPerSecond = progress.elapsedSeconds > 0 ? (progress.done + progress.failed) / progress.elapsedSeconds : 0;
  }
}

/** resume on a finished npy output: nothing to do if it holds exactly the inputs listed now. */
async function alreadyComplete(s: Settings, listing: Peekable<ListedInput>, base: SummaryBase): Promise<BatchSummary> {
  const sidecar = await readSourcesSidecar(s.paths.sidecar!);
  const restart = 'use a new -o, or --force to start over';
  if (sidecar.model.fingerprint !== base.model.fingerprint) {
    throw usageError(`${s.paths.sidecar} was made by model fingerprint ${sidecar.model.fingerprint}, the loaded model is ${base.model.fingerprint}; ${restart}`);
  }
  if (s.latents !== (sidecar.latents !== null)) throw usageError(`${s.paths.sidecar}: the finished run ${s.latents ? 'has no' : 'has'} latents; ${restart}`);
  for (let i = 0; i < sidecar.sources.length; i++) {
    const input = await listing.next();
    if (input?.source !== sidecar.sources[i]) {
      throw usageError(`${s.paths.tokens} is complete, but its row ${i} is ${JSON.stringify(sidecar.sources[i])} while input ${i + 1} is now ${JSON.stringify(input?.source ?? null)}; ${restart}`);
    }
  }
  if (await listing.peek()) throw usageError(`${s.paths.tokens} is complete, but there are more inputs now than its ${sidecar.sources.length} rows; ${restart}`);
  return {
    ...base,
    written: sidecar.sources.length,
    done: 0,
    failed: 0,
    skipped: sidecar.sources.length,
    elapsedSeconds: 0,
    imagesPerSecond: 0,
    files: [s.paths.tokens!, ...(sidecar.latents ? [s.paths.latents!] : []), s.paths.sidecar!],
    total: sidecar.sources.length,
    skippedFailed: sidecar.failed.length,
    ignored: s.inputs.ignored,
    repairedBytes: 0,
    interrupted: false,
    alreadyComplete: true,
    preprocess: { mode: 'main', concurrency: 0 },
  };
}

/** " (images are in subfolders: add -r)" when a folder input without recursion has them deeper. */
async function subfolderHint(options: RunBatchOptions): Promise<string> {
  if (options.recursive) return '';
  for (const spec of options.inputs) if (await hasImagesInSubfolders(spec)) return `; ${spec} has images in subfolders: add -r (recursive) to include them`;
  return '';
}
