/**
 * The success marker `<out>.done.json`: written last (temporary file + fsync + rename +
 * folder fsync), after the output was read back and checked, so its presence means the
 * output is complete and exactly what it describes. An engine's retry of a finished task
 * sees a valid marker and exits 0 at once; `merge` trusts only shards with one.
 *
 * It records what the output is (files with size and sha256, record counts), what it was
 * made from (a hash of the shard's source list and of the whole listing, the model
 * fingerprint, the options that change tokens) and who made it (engine job/task ids).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError } from '../errors';
import { removeDurable, writeFileAtomic } from '../io/atomic-write';
import { encodeName } from '../io/byte-names';
import type { ModelRef } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import type { ShardSpec } from './shard';

export const DONE_FORMAT = 'styled-vq-done';
export const DONE_VERSION = 1;

export const donePathFor = (output: string) => `${output}.done.json`;

export interface MarkerFile {
  /** File name, relative to the marker's folder. */
  name: string;
  bytes: number;
  sha256: string;
}

/** A count of sources and the sha256 of them, each followed by "\n", in order. */
export interface SourceDigest {
  count: number;
  sha256: string;
}

export interface DoneMarker {
  format: typeof DONE_FORMAT;
  version: typeof DONE_VERSION;
  /** 'batch' (one run or one shard) or 'merge' (shards joined). */
  kind: 'batch' | 'merge';
  /** The output's file name (next to the marker). */
  output: string;
  output_format: 'jsonl' | 'npy';
  shard: ShardSpec | null;
  counts: { records: number; done: number; failed: number };
  files: MarkerFile[];
  /** The sources in the output (this shard's slice). */
  sources: SourceDigest;
  /**
   * The whole listing the shards were cut from (equal to `sources` without shards); null
   * when each shard had inputs of its own (`inputsAreShard`: a tar or list per task).
   */
  listing: SourceDigest | null;
  model: ModelRef;
  /** Options that change the tokens (a resumed or merged output must agree on them). */
  options: Record<string, unknown>;
  inputs: string[];
  engine: Record<string, string>;
  finished: string;
  /** merge only: the shard markers joined, in order. */
  shards?: { index: number; marker: string; sha256: string }[];
}

/** Streams sources into a SourceDigest. */
export class SourceTally {
  private readonly hash = createHash('sha256');
  count = 0;

  add(source: string): void {
    this.hash.update(encodeName(source)); // the name's bytes: two names that are not UTF-8 never hash alike
    this.hash.update('\n');
    this.count++;
  }

  digest(): SourceDigest {
    return { count: this.count, sha256: this.hash.copy().digest('hex') };
  }
}

export async function digestFile(path: string): Promise<MarkerFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { name: basename(path), bytes, sha256: hash.digest('hex') };
}

export async function writeDoneMarker(output: string, marker: DoneMarker): Promise<string> {
  const path = donePathFor(output);
  await writeFileAtomic(path, `${formatPretty(marker)}\n`);
  return path;
}

/** Remove the marker before its output changes (durably: a crash must not leave it next to a changed output). */
export const removeDoneMarker = (output: string) => removeDurable(donePathFor(output));

const isDigest = (d: unknown): d is SourceDigest =>
  typeof (d as SourceDigest)?.count === 'number' && typeof (d as SourceDigest).sha256 === 'string';

/** The marker of `output`, or null if there is none. A marker that does not parse is an error naming it. */
export async function readDoneMarker(output: string): Promise<DoneMarker | null> {
  const path = donePathFor(output);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw inputError(`Cannot read ${path}: ${(err as Error).message}`, err);
  }
  let m: DoneMarker;
  try {
    m = JSON.parse(text);
  } catch {
    throw inputError(`${path} is not valid JSON (not a styled-vq done marker?)`);
  }
  const ok =
    m?.format === DONE_FORMAT &&
    m.version === DONE_VERSION &&
    typeof m.output === 'string' &&
    Array.isArray(m.files) &&
    m.files.every((f) => typeof f?.name === 'string' && typeof f.bytes === 'number' && typeof f.sha256 === 'string') &&
    isDigest(m.sources) &&
    (m.listing === null || isDigest(m.listing)) &&
    typeof m.model?.fingerprint === 'string' &&
    typeof m.counts?.records === 'number';
  if (!ok) throw inputError(`${path} is not a styled-vq done marker (format "${DONE_FORMAT}" v${DONE_VERSION})`);
  return m;
}

/**
 * Whether the files a marker lists are there, unchanged: null if so, else why not. Sizes
 * first (cheap), then the sha256 of every file.
 */
export async function checkMarkerFiles(output: string, marker: DoneMarker): Promise<string | null> {
  const dir = dirname(output);
  for (const f of marker.files) {
    const stat = await fs.stat(join(dir, f.name)).catch(() => null);
    if (!stat) return `${f.name} is missing`;
    if (stat.size !== f.bytes) return `${f.name} has ${stat.size} bytes, the marker says ${f.bytes}`;
  }
  for (const f of marker.files) {
    const d = await digestFile(join(dir, f.name));
    if (d.sha256 !== f.sha256)
      return `${f.name} changed since it was marked done (sha256 ${d.sha256.slice(0, 12)}..., marked ${f.sha256.slice(0, 12)}...)`;
  }
  return null;
}

/** How two markers' settings differ (model, options, listing), or null: shards of one job must agree. */
export function settingsDiffer(
  a: DoneMarker,
  b: Pick<DoneMarker, 'model' | 'options' | 'output_format'> & Partial<DoneMarker>,
): string | null {
  if (a.model.fingerprint !== b.model.fingerprint)
    return `model ${a.model.name} (fingerprint ${a.model.fingerprint}) vs ${b.model.name} (fingerprint ${b.model.fingerprint})`;
  if (a.output_format !== b.output_format) return `format ${a.output_format} vs ${b.output_format}`;
  const ao = JSON.stringify(a.options);
  const bo = JSON.stringify(b.options);
  if (ao !== bo) return `options ${ao} vs ${bo}`;
  return null;
}
