/**
 * Shards: `batch` as a per-shard mapper for an existing engine (Slurm job arrays,
 * Kubernetes Indexed Jobs, Ray tasks). Shard I of N is a contiguous slice of the
 * deterministic listing, so joining the shard outputs in index order gives exactly the
 * output of one run over everything (`merge` does that, after checking the markers).
 *
 * The slice needs the listing's length first: the inputs are listed twice (once counted,
 * once read), which costs a directory walk or a list read, never an image decode. For
 * very large corpora give each task its own inputs instead (a webdataset tar, a list
 * file per shard) and keep `--shard` for the naming and the markers.
 */
import { basename, dirname, extname, join } from 'node:path';
import { hostname } from 'node:os';
import { usageError, msg, opt } from '../errors';
import { invalidParameter, isInteger } from '../util/checks';
import type { SourceTally } from './done-marker';
import type { ListedInput } from './input-list';

export interface ShardSpec {
  /** 0-based. */
  index: number;
  /** Number of shards, >= 1. */
  count: number;
}

/**
 * Engine variables that carry the task index, tried in this order when the index is not
 * given: Slurm job arrays, Kubernetes Indexed Jobs.
 */
export const SHARD_INDEX_VARIABLES: readonly string[] = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX'];

/** Variables recorded in the done marker, to find the task that wrote a shard. */
const ENGINE_VARIABLES: readonly string[] = [
  'SLURM_JOB_ID',
  'SLURM_ARRAY_JOB_ID',
  'SLURM_ARRAY_TASK_ID',
  'SLURM_RESTART_COUNT',
  'JOB_COMPLETION_INDEX',
  'HOSTNAME',
  'RAY_JOB_ID',
  'RAY_TASK_ID',
];

const checkShard = (name: string, s: ShardSpec): ShardSpec => {
  if (!isInteger(s?.count) || s.count < 1) throw invalidParameter(`${name}.count`, 'positive integer', s?.count);
  if (!isInteger(s.index) || s.index < 0 || s.index >= s.count)
    throw invalidParameter(`${name}.index`, `integer in [0, ${s.count - 1}]`, s.index);
  return { index: s.index, count: s.count };
};

/** Validate a shard given as data (library callers). Errors name `field`. */
export function validateShard(shard: ShardSpec, field = 'shard'): ShardSpec {
  return checkShard(field, shard);
}

/** "I/N" (0-based I) -> ShardSpec. `field` is the option named in errors. */
export function parseShard(text: string, field = 'shard'): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(String(text));
  if (!m)
    throw usageError(
      msg`Expected I/N (shard I of N, 0 <= I < N, e.g. 3/128) for ${opt(field)} but received ${JSON.stringify(text)}`,
    );
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw usageError(msg`${opt(field, text)}: the number of shards must be at least 1`);
  if (index >= count)
    throw usageError(
      msg`${opt(field, text)}: shard index ${index} is out of range; shards are numbered 0 to ${count - 1}`,
    );
  return { index, count };
}

/**
 * The shard index from the engine's environment: `variable` if named, else the first of
 * SHARD_INDEX_VARIABLES that is set. `fields` names the options in errors.
 */
export function shardFromEnvironment(
  count: number,
  env: Record<string, string | undefined>,
  variable?: string,
  fields = { count: 'shards', variable: 'shardFromEnv' },
): ShardSpec {
  if (!isInteger(count) || count < 1) throw invalidParameter(fields.count, 'positive integer', count);
  const names = variable ? [variable] : SHARD_INDEX_VARIABLES;
  const name = names.find((n) => env[n] !== undefined && env[n] !== '');
  if (!name) {
    throw usageError(
      variable
        ? msg`${opt(fields.variable)}: the variable ${variable} is not set; it should hold this task's shard index`
        : msg`${opt(fields.count, count)} needs this task's index: none of ${SHARD_INDEX_VARIABLES.join(', ')} is set (name another variable with ${opt(fields.variable)}, or give the shard as I/N)`,
    );
  }
  const raw = env[name]!;
  if (!/^\d+$/.test(raw.trim()))
    throw usageError(`${name}=${JSON.stringify(raw)} is not a shard index (a non-negative integer)`);
  const index = Number(raw.trim());
  if (index >= count)
    throw usageError(
      msg`${name}=${index} is out of range for ${count} shards (0 to ${count - 1}); does the array match ${opt(fields.count)}?`,
    );
  return { index, count };
}

/** The engine's job / task ids present in `env` (recorded in the marker). */
export function engineIds(env: Record<string, string | undefined>): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const name of ENGINE_VARIABLES) if (env[name]) ids[name] = env[name]!;
  ids.host = hostname();
  return ids;
}

/** Digits of a zero-padded shard id: 5 (img2dataset's `{id:05d}`), more if N needs them. */
export const shardDigits = (count: number) => Math.max(5, String(count - 1).length);
export const padShard = (n: number, count: number) => String(n).padStart(shardDigits(count), '0');

/**
 * The output name of one shard: `{shard}` and `{shards}` in the name are replaced by the
 * zero-padded index and count (`out/tok-{shard}.jsonl`); without them `-%05d-of-%05d` goes
 * before the extension (`tokens.jsonl` -> `tokens-00012-of-00128.jsonl`).
 */
export function shardOutputPath(output: string, shard: ShardSpec): string {
  const i = padShard(shard.index, shard.count);
  const n = padShard(shard.count, shard.count);
  const name = basename(output);
  if (/\{shards?\}/.test(name)) return join(dirname(output), name.replace(/\{shard\}/g, i).replace(/\{shards\}/g, n));
  if (/\{shards?\}/.test(output))
    throw usageError(`Output ${output}: put {shard} in the file name, not in a folder name`);
  const ext = extname(name);
  return join(dirname(output), `${name.slice(0, name.length - ext.length)}-${i}-of-${n}${ext}`);
}

/** [start, end) of shard `index` among `total` inputs: sizes differ by at most one. */
export function shardRange(total: number, shard: ShardSpec): { start: number; end: number } {
  return {
    start: Math.floor((shard.index * total) / shard.count),
    end: Math.floor(((shard.index + 1) * total) / shard.count),
  };
}

/**
 * The inputs of one shard, from a listing that can be made twice (`list()` must give the
 * same order each time, as InputList does): counted once (`list(true)`: names only, so
 * tar members are not read), then sliced. `whole` gets every source of the listing.
 */
export async function* shardOf(
  list: (namesOnly: boolean) => AsyncIterable<ListedInput>,
  shard: ShardSpec,
  whole?: SourceTally,
): AsyncGenerator<ListedInput> {
  let total = 0;
  for await (const input of list(true)) {
    whole?.add(input.source);
    total++;
  }
  const { start, end } = shardRange(total, shard);
  if (start === end) return;
  let i = 0;
  for await (const input of list(false)) {
    if (i >= end) break;
    if (i >= start) yield input;
    i++;
  }
}
