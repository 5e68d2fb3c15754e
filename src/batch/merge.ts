/**
 * `merge`: join the shard outputs of `batch --shard I/N` into one output, after proving
 * that nothing is missing, unfinished, changed or foreign:
 *
 *   1. every shard 0..N-1 has a done marker (a missing or unfinished one is listed, and
 *      the indices are printed as a ready `--array=3,17,40-42` for resubmission);
 *   2. every marker agrees on the model, the options that change tokens, the shard count
 *      and the listing the shards were cut from (shards of two jobs are refused);
 *   3. each shard's files have the size and sha256 its marker records (checked while
 *      they are copied: one read);
 *   4. the joined sources hash to the listing's hash every shard recorded: the merged
 *      output holds exactly the inputs of one run over everything, in order. (Shards
 *      made from inputs of their own, `inputsAreShard`, have no common listing: each
 *      shard's sources are checked against its own marker instead.)
 *
 * The join streams (memory flat) into a temporary file renamed into place, and the
 * merge writes a done marker of its own.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { inputError, StyledVqError, usageError, msg, opt } from '../errors';
import { OutputLock } from '../io/output-lock';
import { removeStaleTemps } from '../io/temp-files';
import { npyHeader } from '../tokens/npy';
import { checkOutputPath, ensureParentDir } from '../io/output-path';
import { AtomicStreamWriter } from '../io/atomic-stream';
import {
  digestFile,
  DONE_FORMAT,
  DONE_VERSION,
  type DoneMarker,
  donePathFor,
  type MarkerFile,
  readDoneMarker,
  removeDoneMarker,
  settingsDiffer,
  SourceTally,
  writeDoneMarker,
} from './done-marker';
import { walkSorted } from './dir-walk';
import { hasGlobMagic, planGlob } from './glob';
import { readSourcesSidecar, type SourcesSidecar, SOURCES_FORMAT, SOURCES_VERSION } from '../tokens/sources-sidecar';
import { batchPaths, type BatchFormat, formatFor } from './output-paths';
import { engineIds } from './shard';
import { formatPretty } from '../tokens/token-file';

export interface MergeOptions {
  /** Folders (every batch done marker in them), quoted globs, shard outputs or their `.done.json` markers. */
  shards: readonly string[];
  /** all.jsonl or all.npy (the shards' format). */
  output: string;
  /** Replace an existing merged output. */
  overwrite?: boolean;
  /** Engine variables to record (default process.env). */
  env?: Record<string, string | undefined>;
}

export interface MergeSummary {
  output: string;
  format: BatchFormat;
  files: string[];
  marker: string;
  shards: number;
  records: number;
  failed: number;
  bytes: number;
  elapsedSeconds: number;
  /** Temporaries of this output that a merge killed outright had left, removed first. */
  removedTemps: string[];
}

/** Shard indices as a Slurm `--array` list: [3, 17, 40, 41, 42] -> "3,17,40-42". */
export function arrayRanges(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Shards missing, unfinished or changed: `array` is the `--array` list to resubmit them. */
export class IncompleteShardsError extends StyledVqError {
  constructor(
    message: string,
    readonly array: string,
    readonly indices: number[],
  ) {
    super('input', message);
  }
}

/** The marker files the specs name. */
async function markerPaths(specs: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const add = (p: string) => found.includes(p) || found.push(p);
  for (const spec of specs) {
    const stat = await fs.stat(spec).catch(() => null);
    if (stat?.isDirectory()) {
      for (const name of (await fs.readdir(spec)).sort())
        if (name.endsWith('.done.json') && !name.startsWith('.')) add(join(spec, name));
    } else if (stat) {
      add(spec.endsWith('.done.json') ? spec : donePathFor(spec));
    } else if (hasGlobMagic(spec)) {
      const plan = planGlob(spec);
      if (!(await fs.stat(plan.base).catch(() => null))?.isDirectory()) continue;
      for await (const e of walkSorted(plan.base, {
        recursive: true,
        accept: (rel) => plan.match.test(rel),
        enter: plan.enter,
      })) {
        if (e.error) continue;
        const p = e.path.endsWith('.done.json') ? e.path : donePathFor(e.path);
        if (p.endsWith('.done.json.done.json')) continue;
        add(p);
      }
    } else {
      throw usageError(`${spec}: no such file or folder (give the shards' folder, a quoted glob, or shard outputs)`);
    }
  }
  return found;
}

interface Shard {
  marker: DoneMarker;
  markerPath: string;
  /** The output next to its marker. */
  dir: string;
}

/** Read, group and check the markers; throws with the `--array` string when shards are missing or bad. */
async function collectShards(specs: readonly string[], output: string): Promise<Shard[]> {
  const own = donePathFor(output);
  const shards: Shard[] = [];
  let unmarked = 0;
  for (const path of await markerPaths(specs)) {
    if (path === own) continue;
    const marker = await readDoneMarker(path.slice(0, -'.done.json'.length)).catch((err) => {
      throw inputError(`${(err as Error).message}`, err);
    });
    if (!marker) {
      unmarked++; // an output without marker: unfinished (its index is reported as missing below)
      continue;
    }
    if (marker.kind !== 'batch' || !marker.shard) continue; // a merge's own marker, or a run without --shard
    shards.push({ marker, markerPath: path, dir: dirname(path) });
  }
  if (!shards.length) {
    throw inputError(
      msg`No shard markers (*.done.json of batch ${opt('shard')}) found in ${specs.join(', ')}${unmarked ? ` (${unmarked} output${unmarked === 1 ? '' : 's'} without a marker: unfinished)` : ''}`,
    );
  }
  const first = shards[0];
  const count = first.marker.shard!.count;
  for (const s of shards.slice(1)) {
    const why =
      s.marker.shard!.count !== count
        ? `${count} vs ${s.marker.shard!.count} shards`
        : (settingsDiffer(first.marker, s.marker) ??
          (JSON.stringify(s.marker.listing) !== JSON.stringify(first.marker.listing)
            ? `listing of ${first.marker.listing?.count ?? 'own'} vs ${s.marker.listing?.count ?? 'own'} inputs (sha256 ${first.marker.listing?.sha256.slice(0, 12)}... vs ${s.marker.listing?.sha256.slice(0, 12)}...)`
            : null));
    if (why)
      throw inputError(
        `${first.markerPath} and ${s.markerPath} are shards of different jobs (${why}); merge the shards of one job ` +
          `(narrow the glob)`,
      );
  }
  const byIndex = new Map<number, Shard>();
  for (const s of shards) {
    const prev = byIndex.get(s.marker.shard!.index);
    if (prev)
      throw inputError(
        `Shard ${s.marker.shard!.index} is marked done twice: ${prev.markerPath} and ${s.markerPath}; remove one`,
      );
    byIndex.set(s.marker.shard!.index, s);
  }
  const missing: number[] = [];
  const bad: string[] = [];
  for (let i = 0; i < count; i++) {
    const s = byIndex.get(i);
    if (!s) {
      missing.push(i);
      continue;
    }
    // Sizes now (cheap); the sha256 while copying.
    for (const f of s.marker.files) {
      const st = await fs.stat(join(s.dir, f.name)).catch(() => null);
      if (!st || st.size !== f.bytes) {
        missing.push(i);
        bad.push(`${f.name} ${st ? `has ${st.size} bytes, marked ${f.bytes}` : 'is missing'}`);
        break;
      }
    }
  }
  if (missing.length) throw incomplete(missing, count, bad);
  const total = [...byIndex.values()].reduce((a, s) => a + s.marker.sources.count, 0);
  if (first.marker.listing && total !== first.marker.listing.count)
    throw inputError(
      `The ${count} shards hold ${total} inputs but their listing has ${first.marker.listing.count}; not merged`,
    );
  return [...Array(count).keys()].map((i) => byIndex.get(i)!);
}

function incomplete(indices: number[], count: number, bad: string[]): IncompleteShardsError {
  const list = arrayRanges(indices);
  return new IncompleteShardsError(
    `${indices.length} of ${count} shards are missing, unfinished or changed${bad.length ? ` (${bad.join('; ')})` : ''}: rerun them with --array=${list}`,
    list,
    indices,
  );
}

/** Copy `path` (from byte `from`) into `out`, hashing every byte of the file. */
async function copyHashed(
  path: string,
  out: AtomicStreamWriter | null,
  from: number,
  onData?: (b: Buffer) => void,
): Promise<MarkerFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    const start = Math.max(0, from - bytes);
    bytes += chunk.length;
    if (start < chunk.length) {
      const part = chunk.subarray(start);
      onData?.(part);
      await out?.write(part);
    }
  }
  return { name: basename(path), bytes, sha256: hash.digest('hex') };
}

/** Every source of a JSONL shard, from the bytes as they stream past (exported for its test). */
export function jsonlSources(tallies: SourceTally[], where: string): { feed: (b: Buffer) => void; end: () => void } {
  // A chunk can end inside a multi-byte character: decode across chunk boundaries.
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let line = 0;
  const take = (text: string) => {
    line++;
    let source: unknown;
    try {
      source = JSON.parse(text).source;
    } catch {
      throw inputError(`${where} line ${line} is not valid JSON; not merged`);
    }
    if (typeof source !== 'string') throw inputError(`${where} line ${line} has no source; not merged`);
    for (const t of tallies) t.add(source as string);
  };
  return {
    feed(b) {
      const text = carry + decoder.write(b);
      const lines = text.split('\n');
      carry = lines.pop()!;
      for (const l of lines) take(l);
    },
    end() {
      carry += decoder.end();
      if (carry) throw inputError(`${where} ends in a cut-off line; not merged`);
    },
  };
}

/** A shard's own sources must be the ones its marker records. */
function checkSources(s: Shard, own: SourceTally): void {
  const d = own.digest();
  if (d.count !== s.marker.sources.count || d.sha256 !== s.marker.sources.sha256) {
    throw incomplete([s.marker.shard!.index], s.marker.shard!.count, [
      `its sources are not the ones its marker records`,
    ]);
  }
}

/** The joined sources against the listing every shard was cut from (when there was one). */
function checkListing(listing: DoneMarker['listing'], tally: SourceTally): void {
  if (!listing) return;
  const d = tally.digest();
  if (d.count !== listing.count || d.sha256 !== listing.sha256)
    throw inputError('The joined sources do not hash to the listing the shards were cut from; not merged');
}

function checkHash(s: Shard, got: MarkerFile): void {
  const want = s.marker.files.find((f) => f.name === got.name)!;
  if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
    throw incomplete([s.marker.shard!.index], s.marker.shard!.count, [
      `${got.name} changed since it was marked done (sha256 differs)`,
    ]);
  }
}

/** Join the shard outputs named by `options.shards` into `options.output`. */
export async function mergeShards(options: MergeOptions): Promise<MergeSummary> {
  if (!options || typeof options.output !== 'string' || !options.output)
    throw usageError('Expected an output path for output');
  if (!Array.isArray(options.shards) || !options.shards.length)
    throw usageError('Expected at least one folder, glob or shard output for shards');
  const started = Date.now();
  const format = formatFor(options.output);
  await checkOutputPath(options.output, options.shards, 'output', { overwrite: true });
  await ensureParentDir(options.output);
  const paths = batchPaths(options.output, format);
  const lock = await OutputLock.acquire(options.output);
  try {
    // Holding the lock: what a merge killed outright left next to this output (issue 15.17).
    const removedTemps: string[] = [];
    const written = paths.format === 'jsonl' ? [paths.log] : [paths.tokens, paths.latents, paths.sidecar];
    for (const p of [...written, donePathFor(options.output)]) removedTemps.push(...(await removeStaleTemps(p)));
    const shards = await collectShards(options.shards, options.output);
    const first = shards[0].marker;
    if (first.output_format !== format)
      throw usageError(
        `The shards are ${first.output_format}; name the merged output <something>.${first.output_format}`,
      );
    const targets =
      paths.format === 'jsonl'
        ? [paths.log]
        : [paths.tokens, ...(first.options.latents ? [paths.latents] : []), paths.sidecar];
    const existing = (
      await Promise.all(
        [...targets, donePathFor(options.output)].map((p) =>
          fs.stat(p).then(
            () => p,
            () => null,
          ),
        ),
      )
    ).filter(Boolean);
    if (existing.length && !options.overwrite)
      throw usageError(msg`Output exists: ${existing.join(', ')}; add ${opt('overwrite', true)} to replace it`);
    await removeDoneMarker(options.output);

    const tally = new SourceTally();
    let failed = 0;
    let files: MarkerFile[];
    if (paths.format === 'jsonl') {
      const out = await AtomicStreamWriter.open(paths.log);
      try {
        for (const s of shards) {
          const name = s.marker.files[0].name;
          const own = new SourceTally();
          const src = jsonlSources([tally, own], join(s.dir, name));
          checkHash(s, await copyHashed(join(s.dir, name), out, 0, src.feed));
          src.end();
          checkSources(s, own);
          failed += s.marker.counts.failed;
        }
        checkListing(first.listing, tally);
        await out.commit();
      } catch (err) {
        await out.abort();
        throw err;
      }
      files = [await digestFile(paths.log)];
    } else {
      ({ files, failed } = await mergeNpy(shards, paths, !!first.options.latents, tally));
    }
    const marker: DoneMarker = {
      format: DONE_FORMAT,
      version: DONE_VERSION,
      kind: 'merge',
      output: basename(options.output),
      output_format: format,
      shard: null,
      counts: { records: tally.count, done: tally.count - failed, failed },
      files,
      sources: tally.digest(),
      listing: first.listing ?? tally.digest(),
      model: first.model,
      options: first.options,
      inputs: first.inputs,
      engine: engineIds(options.env ?? process.env),
      finished: new Date().toISOString(),
      shards: await Promise.all(
        shards.map(async (s) => ({
          index: s.marker.shard!.index,
          marker: relative(dirname(options.output), s.markerPath),
          sha256: (await digestFile(s.markerPath)).sha256,
        })),
      ),
    };
    await lock.verify();
    const markerPath = await writeDoneMarker(options.output, marker);
    return {
      output: options.output,
      format,
      files: targets,
      marker: markerPath,
      shards: shards.length,
      records: tally.count,
      failed,
      bytes: files.reduce((a, f) => a + f.bytes, 0),
      elapsedSeconds: (Date.now() - started) / 1000,
      removedTemps,
    };
  } finally {
    await lock.release();
  }
}

/** .npy shards: the arrays' rows one after another under a new header, and one sidecar. */
async function mergeNpy(
  shards: Shard[],
  paths: { tokens: string; latents: string; sidecar: string },
  latents: boolean,
  tally: SourceTally,
): Promise<{ files: MarkerFile[]; failed: number }> {
  const sidecars: SourcesSidecar[] = [];
  for (const s of shards) {
    const name = s.marker.files[s.marker.files.length - 1].name;
    const sc = await readSourcesSidecar(join(s.dir, name));
    checkHash(s, await digestFile(join(s.dir, name)));
    sidecars.push(sc);
  }
  const n = sidecars.reduce((a, sc) => a + sc.shape[0], 0);
  const t = sidecars[0].shape[1];
  const writers: AtomicStreamWriter[] = [];
  try {
    const tokens = await AtomicStreamWriter.open(paths.tokens);
    writers.push(tokens);
    await tokens.write(npyHeader('int32', [n, t]));
    let lat: AtomicStreamWriter | undefined;
    let dim = 0;
    if (latents) {
      lat = await AtomicStreamWriter.open(paths.latents);
      writers.push(lat);
      dim = (await readNpyShape(join(shards[0].dir, shards[0].marker.files[1].name)))[2];
      await lat.write(npyHeader('float32', [n, t, dim]));
    }
    for (let k = 0; k < shards.length; k++) {
      const s = shards[k];
      const rows = sidecars[k].shape[0];
      const tf = s.marker.files[0];
      checkHash(s, await copyHashed(join(s.dir, tf.name), tokens, npyHeader('int32', [rows, t]).length));
      if (lat) {
        const lf = s.marker.files[1];
        checkHash(s, await copyHashed(join(s.dir, lf.name), lat, npyHeader('float32', [rows, t, dim]).length));
      }
    }
    const sidecar = await AtomicStreamWriter.open(paths.sidecar);
    writers.push(sidecar);
    const head: Omit<SourcesSidecar, 'failed' | 'sources'> = {
      format: SOURCES_FORMAT,
      version: SOURCES_VERSION,
      model: sidecars[0].model,
      tokens: basename(paths.tokens),
      latents: latents ? basename(paths.latents) : null,
      shape: [n, t],
      fill: sidecars[0].fill,
      ...(sidecars[0].alpha ? { alpha: sidecars[0].alpha } : {}), // the shards' markers agree on it
    };
    await sidecar.write(formatPretty(head).replace(/\n}$/, ',\n  "sources": [\n'));
    const failed: SourcesSidecar['failed'] = [];
    let row = 0;
    for (let k = 0; k < sidecars.length; k++) {
      const sc = sidecars[k];
      const own = new SourceTally();
      for (const src of sc.sources) {
        await sidecar.write(`${row ? ',\n' : ''}    ${JSON.stringify(src)}`);
        tally.add(src);
        own.add(src);
        row++;
      }
      checkSources(shards[k], own);
      for (const f of sc.failed) failed.push({ ...f, row: f.row + row - sc.sources.length });
    }
    await sidecar.write(`\n  ],\n  "failed": ${JSON.stringify(failed)}\n}\n`);
    checkListing(shards[0].marker.listing, tally);
    for (const w of writers) await w.commit();
    const files = [
      await digestFile(paths.tokens),
      ...(latents ? [await digestFile(paths.latents)] : []),
      await digestFile(paths.sidecar),
    ];
    return { files, failed: failed.length };
  } catch (err) {
    await Promise.all(writers.map((w) => w.abort()));
    throw err;
  }
}

/** The shape in an .npy header (of a file this program wrote: checked by hash as it is copied). */
async function readNpyShape(path: string): Promise<number[]> {
  const fh = await fs.open(path, 'r');
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.toString('latin1', 0, bytesRead);
    const m = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
    if (!m) throw inputError(`${path} is not an .npy file`);
    return m[1]
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean)
      .map(Number);
  } finally {
    await fh.close();
  }
}
