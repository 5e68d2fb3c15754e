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
import { basename, dirname, join } from 'node:path';
import { inputError, type MessageText, usageError, msg, opt } from '../errors';
import { OutputLock } from '../io/output-lock';
import { removeStaleTemps } from '../io/temp-files';
import type { ImageOptions } from '../api/encode';
import { alphaText } from '../image';
import type { Model } from '../model/model';
import type { ExecutionInfo } from '../runtime/onnx';
import { formatRecordsJsonl } from '../tokens/token-file';
import { checkOutputPath, ensureParentDir } from '../io/output-path';
import { inArray, positiveInteger } from '../util/checks';
import { AppendLog } from '../io/append-log';
import { untilAborted } from './abortable';
import { DEFAULTS, defaultBatchSize } from '../defaults';
import { InputList, type ListedInput } from './input-list';
import { finishNpyOutput } from './npy-output';
import { readSourcesSidecar } from '../tokens/sources-sidecar';
import {
  type BatchFormat,
  batchPaths,
  type BatchPaths,
  BATCH_FORMATS,
  claimOutputs,
  formatFor,
  npyComplete,
  type NpyPaths,
  removeReplaced,
} from './output-paths';
import { hasImagesInSubfolders } from './dir-walk';
import { Peekable } from './peekable';
import { OrderedPrefetch } from './prefetch';
import type { PreprocessOutcome } from './preprocess-job';
import { createPreprocessor, type PreprocessMode, type Preprocessor } from './preprocess-pool';
import { alphaDiffers, modelDiffers, recoverLog, type RecoveredLog } from './resume';
import { type ChunkItem, tokenizeChunk } from './tokenize-chunk';
import {
  checkMarkerFiles,
  DONE_FORMAT,
  donePathFor,
  DONE_VERSION,
  type DoneMarker,
  readDoneMarker,
  removeDoneMarker,
  type SourceDigest,
  SourceTally,
  writeDoneMarker,
} from './done-marker';
import { engineIds, shardOf, shardOutputPath, type ShardSpec, validateShard } from './shard';
import { npyArraysProblem, verifyJsonl, verifyNpy } from './verify-output';

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
  /**
   * Write only shard `index` of `count`: a contiguous slice of the listing, into
   * `output` with the zero-padded shard id (shard.ts: `tokens-00012-of-00128.jsonl`, or
   * `{shard}` / `{shards}` in the name). Joining the shards in order equals one run.
   */
  shard?: ShardSpec;
  /**
   * With `shard`: the inputs given are this shard's own (a webdataset tar or a list file
   * per task), taken whole instead of sliced; the output is still named and marked as
   * shard I of N, and `merge` checks each shard against its own sources.
   */
  inputsAreShard?: boolean;
  /** The output lock's heartbeat period and staleness (default 5 s / 60 s; io/output-lock.ts). */
  lock?: { heartbeatMs?: number; staleMs?: number };
  /** Where the engine's job/task ids are read for the done marker (default process.env). */
  env?: Record<string, string | undefined>;
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
  /** The output written (with a shard, its shard name). */
  output: string;
  shard: ShardSpec | null;
  /** The done marker written (or found valid), null when the run did not finish. */
  marker: string | null;
  /** A marker was found but did not hold (why); the output was redone or resumed. */
  markerInvalid?: string;
  /** A stale lock of a dead writer was taken over (whose, and why it was judged stale). */
  lockTakenOver?: string;
  /** Temporaries of this output that a run killed outright had left (e.g. in the .npy finishing step), removed first. */
  removedTemps: string[];
  /** Every input failed: no marker is written (the CLI exits 2). */
  allFailed: boolean;
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
  /** Where inference ran; absent when a valid done marker meant nothing had to run. */
  execution?: ExecutionInfo;
}

type SummaryBase = Pick<
  BatchSummary,
  'output' | 'format' | 'batchSize' | 'model' | 'execution' | 'shard' | 'removedTemps'
>;

interface Settings {
  inputs: InputList;
  /** Files without an image extension in the latest listing. */
  ignored: () => number;
  /** A sliced shard: the whole listing, names only (the done check hashes it in one pass). */
  wholeList: (() => AsyncIterable<ListedInput>) | null;
  /** The listing this run reads (the shard's slice), made fresh on each call. */
  list: () => AsyncIterable<ListedInput>;
  /** The whole listing's digest, known once a sharded listing was counted. */
  whole: SourceTally | null;
  output: string;
  shard: ShardSpec | null;
  paths: BatchPaths;
  overwrite: boolean;
  batchSize: number;
  concurrency: number;
  latents: boolean;
  resume: boolean;
}

async function settle(options: RunBatchOptions): Promise<Settings> {
  if (!options || typeof options.output !== 'string' || !options.output)
    throw usageError(msg`Expected an output path (${opt('output', 'out.jsonl')} or out.npy)`);
  const format = formatFor(options.output, options.format && inArray('format', options.format, BATCH_FORMATS));
  // Without an explicit batchSize the device decides, once the sessions are open (runLocked).
  const batchSize = options.batchSize === undefined ? 0 : positiveInteger('batchSize', options.batchSize);
  const concurrency = positiveInteger('concurrency', options.concurrency ?? DEFAULTS.batch.concurrency());
  const overwrite = !!(options.overwrite ?? options.force);
  if (options.resume && overwrite)
    throw usageError(
      msg`${opt('resume', true)} continues an output and ${opt('overwrite', true)} replaces it: choose one`,
    );
  const shard = options.shard === undefined ? null : validateShard(options.shard);
  if (options.inputsAreShard && !shard)
    throw usageError('Expected shard (I of N) with inputsAreShard: the inputs are which shard?');
  const slice = !!shard && !options.inputsAreShard;
  const output = shard ? shardOutputPath(options.output, shard) : options.output;
  const inputs = new InputList(options.inputs, { recursive: options.recursive });
  await inputs.check();
  // Existing files are claimOutputs' business (it knows about --resume and done markers); this checks the rest.
  await checkOutputPath(output, options.inputs, 'output', { overwrite: true });
  const paths = batchPaths(output, format);
  // Each listing is made fresh; `ignored` is read from the latest full pass over the specs.
  let lists: InputList[] = [];
  const make = (withData: boolean) => {
    const l = new InputList(options.inputs, { recursive: options.recursive, withData });
    lists.push(l);
    return l;
  };
  let whole: SourceTally | null = null;
  const list = (): AsyncIterable<ListedInput> => {
    lists = [];
    if (!slice) return make(true);
    whole = new SourceTally();
    return shardOf((namesOnly) => make(!namesOnly), shard!, whole);
  };
  return {
    inputs,
    list,
    wholeList: slice ? () => make(false) : null,
    ignored: () => Math.max(0, ...lists.map((l) => l.ignored)),
    get whole() {
      return whole;
    },
    output,
    shard,
    paths,
    overwrite,
    batchSize,
    concurrency,
    latents: !!options.latents,
    resume: !!options.resume,
  };
}

/** The option field each marked option comes from, to name it (as a flag, in the CLI) when a rerun differs. */
const MARKED_FIELDS: Record<string, string> = {
  latents: 'latents',
  alpha: 'background',
  limitInputPixels: 'maxPixels',
  recursive: 'recursive',
  shard_inputs: 'inputsAreShard',
};

/** The first marked option on which two runs differ, named and with both values; null when they agree. */
function optionDiffers(before: Record<string, unknown>, now: Record<string, unknown>): MessageText | null {
  for (const key of new Set([...Object.keys(before), ...Object.keys(now)])) {
    const [a, b] = [JSON.stringify(before[key] ?? null), JSON.stringify(now[key] ?? null)];
    if (a !== b) return msg`${opt(MARKED_FIELDS[key] ?? key)} (${key}: ${a} then, ${b} now)`;
  }
  return null;
}

/** The options that change tokens: recorded in the marker, and a finished output must agree on them. */
function markedOptions(options: RunBatchOptions, s: Settings): Record<string, unknown> {
  return {
    latents: s.latents,
    alpha: options.alpha ?? DEFAULTS.alpha,
    // Recorded in done markers under sharp's name (markers written before the rename still compare equal).
    limitInputPixels: options.maxPixels ?? null,
    // Only when given, so that markers written before this option existed still compare equal.
    ...(options.maxDecodedBytes !== undefined ? { maxDecodedBytes: options.maxDecodedBytes } : {}),
    recursive: !!options.recursive,
    ...(s.shard ? { shard_inputs: options.inputsAreShard ? 'whole' : 'slice' } : {}),
  };
}

/** Every source the run consumes from the listing goes through `tally`. */
async function* tallied(inputs: AsyncIterable<ListedInput>, tally: SourceTally): AsyncGenerator<ListedInput> {
  for await (const input of inputs) {
    tally.add(input.source);
    yield input;
  }
}

async function listingDigest(list: () => AsyncIterable<ListedInput>): Promise<SourceDigest> {
  const tally = new SourceTally();
  for await (const input of list()) tally.add(input.source);
  return tally.digest();
}

/**
 * Tokenize every input into `options.output` (or its shard). Never throws for a bad
 * input: it gets an error record. One writer per output (a second one gets a busy error,
 * exit 75); a finished output gets a done marker, and a rerun on it returns at once.
 */
export async function runBatch(model: Model, options: RunBatchOptions): Promise<BatchSummary> {
  const s = await settle(options);
  await ensureParentDir(s.output); // the lock lives next to the output
  const lock = await OutputLock.acquire(s.output, {
    heartbeatMs: options.lock?.heartbeatMs ?? DEFAULTS.lock.heartbeatMs,
    staleMs: options.lock?.staleMs ?? DEFAULTS.lock.staleMs,
  });
  try {
    // Only now, holding the lock: no live writer of this output can own them (issue 15.17).
    const removedTemps: string[] = [];
    for (const target of outputTargets(s)) removedTemps.push(...(await removeStaleTemps(target)));
    const summary: BatchSummary = { ...(await runLocked(model, options, s, lock)), removedTemps };
    return lock.tookOver ? { ...summary, lockTakenOver: lock.tookOver } : summary;
  } finally {
    await lock.release();
  }
}

/** Every file of the output that is written through a temporary (temp-files.ts): the arrays, the sidecar, the marker. */
function outputTargets(s: Settings): string[] {
  const files = s.paths.format === 'npy' ? [s.paths.tokens, s.paths.latents, s.paths.sidecar] : [s.paths.log];
  return [...files, donePathFor(s.output)];
}

async function runLocked(model: Model, options: RunBatchOptions, s: Settings, lock: OutputLock): Promise<BatchSummary> {
  const base: SummaryBase = {
    output: s.output,
    format: s.paths.format,
    batchSize: s.batchSize || DEFAULTS.batch.batchSize,
    model: { name: model.name, fingerprint: model.fingerprint },
    execution: undefined,
    shard: s.shard,
    removedTemps: [], // runBatch fills it in
  };
  const marked = markedOptions(options, s);

  // A done marker: valid -> nothing to do; another job's -> refuse; damaged -> report and redo.
  let markerInvalid: string | undefined;
  const marker = s.overwrite
    ? null
    : await readDoneMarker(s.output).catch((err: Error) => ({ unreadable: err.message }));
  if (marker && 'unreadable' in marker) markerInvalid = marker.unreadable;
  else if (marker) {
    const done = await checkDone(marker, model, s, base, marked);
    if (done === true) return finishedSummary(marker, s, base);
    markerInvalid = done;
  }
  let resume = s.resume;
  if (markerInvalid) {
    await removeDoneMarker(s.output); // before the output changes in any way
    // The same job, damaged: a JSONL log is resumed (its trusted lines kept); .npy is redone (its journal is gone).
    if (s.paths.format === 'jsonl') resume = true;
    else await removeReplaced(await claimOutputs(s.paths, { resume: false, overwrite: true }));
  }
  // Files of an earlier output that `overwrite` replaces: removed once the new run has started.
  const replaced = await claimOutputs(s.paths, { resume, overwrite: s.overwrite });
  base.execution = await model.prepare(['encoder', 'codebook']); // sessions only once there is work (a rerun on a finished output needs none)
  if (!s.batchSize) base.batchSize = s.batchSize = defaultBatchSize(base.execution.provider, 'batch');

  const tally = new SourceTally();
  const listing = new Peekable<ListedInput>(tallied(s.list(), tally));
  try {
    if (resume && s.paths.format === 'npy' && (await npyComplete(s.paths))) {
      const summary = await alreadyComplete(model, options, s, s.paths, listing, base);
      return await markDone(model, options, s, lock, summary, tally, marked, markerInvalid);
    }

    let recovered: RecoveredLog = { count: 0, failed: 0, trustedBytes: 0, droppedBytes: 0 };
    if (resume)
      recovered = await recoverLog(s.paths.log, listing, model, {
        latents: s.latents,
        alpha: alphaText(options.alpha),
        preprocessing: model.preprocessing,
      });
    // An empty shard of a non-empty listing is fine (more shards than inputs): it is marked done empty.
    const nothing = recovered.count === 0 && !(await listing.peek()); // (peeking counts a sharded listing)
    const emptyShard = s.shard !== null && !options.inputsAreShard && (s.whole?.count ?? 0) > 0;
    if (nothing && !emptyShard) {
      const n = s.ignored();
      const ignored = n ? ` (${n} file${n === 1 ? '' : 's'} without an image extension)` : '';
      throw inputError(`No images found in ${s.inputs.specs.join(', ')}${ignored}${await subfolderHint(options)}`);
    }
    // The new run can start (model loaded, inputs found): only now does --overwrite remove the old output.
    await removeDoneMarker(s.output); // gone for good before the output changes in any way
    await removeReplaced(replaced);
    await ensureParentDir(s.paths.log);

    const log = await AppendLog.open(s.paths.log, {
      truncateTo: resume ? recovered.trustedBytes : undefined,
      fresh: !resume,
      syncEveryMs: options.syncEveryMs ?? DEFAULTS.batch.syncEveryMs,
    });
    const pool = createPreprocessor(
      {
        size: model.imageSize,
        alpha: options.alpha,
        maxPixels: options.maxPixels,
        maxDecodedBytes: options.maxDecodedBytes,
      },
      { concurrency: s.concurrency, mode: options.preprocessIn },
    );
    const started = Date.now(); // images/s counts this run's work, not loading or resume's scan
    const progress: BatchProgress = {
      written: recovered.count,
      done: 0,
      failed: 0,
      skipped: recovered.count,
      elapsedSeconds: 0,
      imagesPerSecond: 0,
    };
    let interrupted = false;
    try {
      interrupted = await pump(model, s, listing, pool, log, progress, started, options);
    } finally {
      await pool.close();
      await log.close();
    }

    const files = [s.paths.log];
    if (!interrupted && s.paths.format === 'npy') {
      await finishNpyOutput(
        s.paths,
        { model: base.model, numTokens: model.numTokens, latentDim: model.latentDim, alpha: alphaText(options.alpha) },
        { rows: progress.written, latents: s.latents },
      );
      files.splice(0, 1, s.paths.tokens, ...(s.latents ? [s.paths.latents] : []), s.paths.sidecar);
    }
    const summary: BatchSummary = {
      ...base,
      ...progress,
      files,
      total: progress.written,
      skippedFailed: recovered.failed,
      ignored: s.ignored(),
      repairedBytes: recovered.droppedBytes,
      interrupted,
      alreadyComplete: false,
      marker: null,
      allFailed: false,
      preprocess: {
        mode: pool.mode,
        concurrency: pool.concurrency,
        ...(pool.fallback ? { fallback: pool.fallback } : {}),
      },
    };
    if (interrupted) return markerInvalid ? { ...summary, markerInvalid } : summary;
    return await markDone(model, options, s, lock, summary, tally, marked, markerInvalid);
  } finally {
    await listing.close();
  }
}

/**
 * A finished run: read the output back (records, sources, sizes), then write the done
 * marker last. Not when every input failed: that is reported (exit 2), not marked done.
 */
async function markDone(
  model: Model,
  options: RunBatchOptions,
  s: Settings,
  lock: OutputLock,
  summary: BatchSummary,
  tally: SourceTally,
  marked: Record<string, unknown>,
  markerInvalid: string | undefined,
): Promise<BatchSummary> {
  const expected = tally.digest();
  const verified =
    s.paths.format === 'jsonl'
      ? await verifyJsonl(s.paths.log, model, expected)
      : await verifyNpy(s.paths, model, expected, s.latents);
  const result = { ...summary, ...(markerInvalid ? { markerInvalid } : {}) };
  if (verified.records > 0 && verified.failed === verified.records) return { ...result, allFailed: true };
  await lock.verify(); // never mark an output another writer has taken over
  const marker: DoneMarker = {
    format: DONE_FORMAT,
    version: DONE_VERSION,
    kind: 'batch',
    output: basename(s.output),
    output_format: s.paths.format,
    shard: s.shard,
    counts: { records: verified.records, done: verified.records - verified.failed, failed: verified.failed },
    files: verified.files,
    sources: verified.sources,
    listing: !s.shard ? verified.sources : options.inputsAreShard ? null : s.whole!.digest(),
    model: { name: model.name, fingerprint: model.fingerprint },
    options: marked,
    inputs: [...options.inputs],
    engine: engineIds(options.env ?? process.env),
    finished: new Date().toISOString(),
  };
  return { ...result, marker: await writeDoneMarker(s.output, marker) };
}

/** true if `marker` shows this very job finished and intact; else why not (then it is redone). Another job's marker is refused. */
async function checkDone(
  marker: DoneMarker,
  model: Model,
  s: Settings,
  base: SummaryBase,
  marked: Record<string, unknown>,
): Promise<true | string> {
  const restart = msg`use a new ${opt('output')}, or ${opt('overwrite', true)} to redo it`;
  const what = `${s.output} was marked done`;
  if (marker.kind !== 'batch') throw usageError(msg`${what} by a merge, not a batch run; ${restart}`);
  if (marker.model.fingerprint !== base.model.fingerprint)
    throw modelDiffers(`${s.output} (marked done)`, marker.model, model, restart, 'rerun');
  const differs = optionDiffers(marker.options, marked);
  if (differs)
    throw usageError(msg`${what} with another ${differs}; rerun with the options it was made with, or ${restart}`);
  if (JSON.stringify(marker.shard) !== JSON.stringify(s.shard))
    throw usageError(
      msg`${what} as shard ${JSON.stringify(marker.shard)}, this run is ${JSON.stringify(s.shard)}; ${restart}`,
    );
  const damaged = await checkMarkerFiles(s.output, marker);
  if (damaged) return damaged;
  // One listing pass: a slice of an identical whole listing is the identical slice.
  const sources = await listingDigest(s.wholeList ?? s.list);
  const want = s.wholeList ? marker.listing : marker.sources;
  if (!want || sources.count !== want.count || sources.sha256 !== want.sha256) {
    const n = want?.count ?? 0;
    const now =
      sources.count > n
        ? `there are more inputs now (${sources.count})`
        : sources.count < n
          ? `there are fewer inputs now (${sources.count})`
          : 'the inputs listed now are other ones (names or order)';
    throw usageError(msg`${what} for ${s.wholeList ? `a listing of ${n}` : n} inputs, but ${now}; ${restart}`);
  }
  return true;
}

function finishedSummary(marker: DoneMarker, s: Settings, base: SummaryBase): BatchSummary {
  const dir = dirname(s.output);
  return {
    ...base,
    written: marker.counts.records,
    done: 0,
    failed: 0,
    skipped: marker.counts.records,
    elapsedSeconds: 0,
    imagesPerSecond: 0,
    files: marker.files.map((f) => join(dir, f.name)),
    total: marker.counts.records,
    skippedFailed: marker.counts.failed,
    ignored: s.ignored(),
    repairedBytes: 0,
    interrupted: false,
    alreadyComplete: true,
    marker: donePathFor(s.output),
    allFailed: false,
    preprocess: { mode: 'main', concurrency: 0 },
  };
}

/** A tar member's error names the member, not "<buffer of N bytes>". */
function named(outcome: PreprocessOutcome, input: ListedInput): PreprocessOutcome {
  if (outcome.ok || !input.data) return outcome;
  return { ok: false, error: outcome.error.replace(/^<buffer of \d+ bytes>/, input.source) };
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
    outcome: input.error
      ? { ok: false, error: `${input.source}: ${input.error}` }
      : named(await pool.run(input.source, input.data), input),
  });
  const prefetch = new OrderedPrefetch(listing, start, s.concurrency + DEFAULTS.batch.lookaheadBatches * s.batchSize);
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
      const records = await tokenizeChunk(model, chunk, { latents: s.latents, alpha: options.alpha });
      await writing; // one write in flight: back-pressure if the disk is slower than inference
      writing = log.append(formatRecordsJsonl(records));
      // A failed write (disk full) surfaces at the next await of `writing`, not as an unhandled rejection meanwhile.
      writing.catch(() => undefined);
      const failed = records.filter((r) => 'error' in r).length;
      progress.failed += failed;
      progress.done += records.length - failed;
      progress.written += records.length;
      progress.elapsedSeconds = (Date.now() - started) / 1000;
      progress.imagesPerSecond =
        progress.elapsedSeconds > 0 ? (progress.done + progress.failed) / progress.elapsedSeconds : 0;
      options.onProgress?.({ ...progress });
    }
    return false;
  } finally {
    prefetch.stop();
    await writing;
    progress.elapsedSeconds = (Date.now() - started) / 1000;
    progress.imagesPerSecond =
      progress.elapsedSeconds > 0 ? (progress.done + progress.failed) / progress.elapsedSeconds : 0;
  }
}

/** resume on a finished npy output: nothing to do if it holds exactly the inputs listed now. */
async function alreadyComplete(
  model: Model,
  options: RunBatchOptions,
  s: Settings,
  paths: NpyPaths,
  listing: Peekable<ListedInput>,
  base: SummaryBase,
): Promise<BatchSummary> {
  const sidecar = await readSourcesSidecar(paths.sidecar);
  const restart = msg`use a new ${opt('output')}, or ${opt('force', true)} to start over`;
  if (sidecar.model.fingerprint !== base.model.fingerprint)
    throw modelDiffers(paths.sidecar, sidecar.model, model, restart);
  if (s.latents !== (sidecar.latents !== null))
    throw usageError(msg`${paths.sidecar}: the finished run ${s.latents ? 'has no' : 'has'} latents; ${restart}`);
  const alpha = alphaText(options.alpha);
  if ((sidecar.alpha ?? 'drop') !== alpha) throw alphaDiffers(paths.sidecar, sidecar.alpha ?? 'drop', alpha);
  // The sidecar is written last, but the arrays can be lost or cut afterwards: never call a damaged output complete.
  const damaged = await npyArraysProblem(paths, model, sidecar.sources.length, s.latents);
  if (damaged)
    throw inputError(
      msg`${damaged}, while ${paths.sidecar} records a finished run of ${sidecar.sources.length} rows: the output is damaged and its journal is gone, so resume cannot repair it; run again with ${opt('overwrite', true)} to redo it`,
    );
  for (let i = 0; i < sidecar.sources.length; i++) {
    const input = await listing.next();
    if (input?.source !== sidecar.sources[i]) {
      throw usageError(
        msg`${paths.tokens} is complete, but its row ${i} is ${JSON.stringify(sidecar.sources[i])} while input ${i + 1} is now ${JSON.stringify(input?.source ?? null)}; ${restart}`,
      );
    }
  }
  if (await listing.peek())
    throw usageError(
      msg`${paths.tokens} is complete, but there are more inputs now than its ${sidecar.sources.length} rows; ${restart}`,
    );
  return {
    ...base,
    written: sidecar.sources.length,
    done: 0,
    failed: 0,
    skipped: sidecar.sources.length,
    elapsedSeconds: 0,
    imagesPerSecond: 0,
    files: [paths.tokens, ...(sidecar.latents ? [paths.latents] : []), paths.sidecar],
    total: sidecar.sources.length,
    skippedFailed: sidecar.failed.length,
    ignored: s.ignored(),
    repairedBytes: 0,
    interrupted: false,
    alreadyComplete: true,
    marker: null,
    allFailed: false,
    preprocess: { mode: 'main', concurrency: 0 },
  };
}

/** " (images are in subfolders: add -r)" when a folder input without recursion has them deeper. */
async function subfolderHint(options: RunBatchOptions): Promise<string> {
  if (options.recursive) return '';
  for (const spec of options.inputs)
    if (await hasImagesInSubfolders(spec))
      return `; ${spec} has images in subfolders: add -r (recursive) to include them`;
  return '';
}
