/**
 * `split`: combined sequences (concat's output, or a generator's) -> the two halves, in
 * the forms their decoders take:
 *   <dir>/tokens.jsonl          styled-vq token records (our `decode` reads them)
 *   <dir>/external/<name>.npy   one array per image, the shape and dtype the codes came in
 *                               (LlamaGen: (1, 256) int64), or with `externalOut: 'single'`
 *   <dir>/external.npy          [N, n] for all images
 *   <dir>/split.json            what was written: layout, count, sources, files
 * The input is checked completely before anything is written: an id outside its range is
 * an error naming the line and position (or, with `skipInvalid`, that line is reported and
 * left out). The folder appears whole: it is built next to the target and renamed.
 */
import { promises as fs } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { inputError, StyledVqError, usageError, msg, opt, firstLine } from '../errors';
import { encodeNpy, npyHeader, type NpyData, type NpyDtype } from '../tokens/npy';
import { makeRecord } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import { inArray } from '../util/checks';
import { ensureParentDir } from '../io/output-path';
import { describeErrno, ioError } from '../io/io-errors';
import { AtomicStreamWriter } from '../io/atomic-stream';
import { syncDir } from '../io/atomic-write';
import { removeStaleTemps, tempPathFor, trackTemp, untrackTemp } from '../io/temp-files';
import { readLines, recordTooLongError } from '../io/line-reader';
import { readStdin, STDIO } from '../io/stdio';
import { readSequences } from './combined-record';
import { stemOf } from './external-codes';
import { disassemble, type Layout, readLayout } from './layout';
import { DEFAULTS } from '../defaults';

export type ExternalOut = 'per-image' | 'single';
export const EXTERNAL_OUTS: readonly ExternalOut[] = ['per-image', 'single'];

export const SPLIT_FORMAT = 'styled-vq-split';
export const SPLIT_VERSION = 1;

export interface SplitOptions {
  /** JSONL of combined sequences, or a .json array of them. */
  input: string;
  /** A layout file (default: `<input stem>.layout.json`, then layout.json next to the input). */
  layout?: string;
  /** The folder to create (must not exist, or be empty). */
  outDir: string;
  externalOut?: ExternalOut;
  /** Leave out (and report) sequences that do not fit the layout, instead of failing. */
  skipInvalid?: boolean;
  /** Replace a folder that is not empty (only once the new one is complete). */
  overwrite?: boolean;
}

export interface SplitSummary {
  outDir: string;
  layoutFile: string;
  written: number;
  skipped: { where: string; error: string }[];
  files: { tokens: string; external: string; manifest: string };
  /** Temporary folders an interrupted split into the same folder had left, removed first. */
  removedTemps: string[];
}

interface Item {
  where: string;
  source: string;
  externalName: string;
  styled: number[];
  external: number[];
}

async function findLayout(input: string, explicit?: string): Promise<string> {
  if (explicit) return explicit;
  if (input === STDIO)
    throw usageError(msg`split - reads the sequences from stdin: name their layout with ${opt('layoutFile')}`);
  if (!(await fs.stat(input).catch(() => null))) throw usageError(`${input}: no such file`);
  const candidates = [
    `${input.slice(0, input.length - extname(input).length)}.layout.json`,
    join(dirname(input), 'layout.json'),
  ];
  for (const c of candidates) if (await fs.stat(c).catch(() => null)) return c;
  throw usageError(
    msg`No layout for ${input}: looked for ${candidates.join(' and ')}; name one with ${opt('layoutFile')}`,
  );
}

/** Lines of the input, streamed; `-` is stdin (read once, so both passes can use it). */
async function* inputLines(input: string): AsyncGenerator<string> {
  if (input === STDIO) {
    const max = DEFAULTS.maxRecordBytes;
    for (const [i, line] of (await readStdin()).toString('utf8').split('\n').entries()) {
      if (line.length * 3 > max && Buffer.byteLength(line) > max) throw recordTooLongError('stdin', i + 1, max);
      yield line;
    }
    return;
  }
  const stat = await fs.stat(input).catch(() => null);
  if (!stat?.isFile()) throw usageError(`${input}: no such file`);
  for await (const line of readLines(input)) yield line.text;
}

/** Every sequence of the input, parsed (not yet checked against the layout). */
async function* rawSequences(input: string): AsyncGenerator<{ raw: unknown; where: string }> {
  if (extname(input).toLowerCase() === '.json') {
    let v: unknown;
    try {
      v = JSON.parse(await fs.readFile(input, 'utf8'));
    } catch (err) {
      throw inputError(`Cannot read ${input}: ${firstLine(err)}`, err);
    }
    const all = Array.isArray(v) && v.length && typeof v[0] !== 'number' ? v : [v];
    for (let i = 0; i < all.length; i++) yield { raw: all[i], where: `${input} [${i}]` };
    return;
  }
  const name = input === STDIO ? 'stdin' : input;
  let n = 0;
  for await (const text of inputLines(input)) {
    n++;
    if (!text.trim()) continue;
    const where = `${name} line ${n}`;
    try {
      yield { raw: JSON.parse(text), where };
    } catch (err) {
      if (!(err instanceof SyntaxError) && !(err instanceof RangeError)) throw err;
      yield { raw: new Error(`not valid JSON: ${err.message}`), where };
    }
  }
}

function toItem(layout: Layout, raw: unknown, where: string, index: number): Item {
  if (raw instanceof Error) throw inputError(`${where} is ${raw.message}`);
  const seqs = readSequences(raw, layout, where);
  const codes: { styled?: number[]; external?: number[] } = {};
  for (const [name, ids] of Object.entries(seqs.fields)) Object.assign(codes, disassemble(layout, name, ids, where));
  const source = seqs.source ?? `sequence-${index}`;
  // Per-image files keep the name of the file the codes came from; rows of one array take the image's.
  const fromFile = seqs.externalSource && /\.npy$/i.test(seqs.externalSource);
  return {
    where,
    source,
    externalName: stemOf(fromFile ? seqs.externalSource! : source),
    styled: codes.styled!,
    external: codes.external!,
  };
}

/** Typed array of the layout's dtype for one image (or all). */
function typed(dtype: NpyDtype, values: number[]): NpyData {
  switch (dtype) {
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(v));
    case 'int32':
      return Int32Array.from(values);
    case 'int16':
      return Int16Array.from(values);
    case 'uint8':
      return Uint8Array.from(values);
    case 'uint16':
      return Uint16Array.from(values);
    case 'uint32':
      return Uint32Array.from(values);
    default:
      throw inputError(`layout: external npy dtype ${dtype} is not an integer type`);
  }
}

/**
 * A file name for each image: its stem, made safe and unique. A taken name gets `-<index>`
 * (then `-<index>-2`, ...) until free: sources `a`, `a-2`, `a` once gave `a-2` twice and the
 * second overwrote the first (issue 15.7). The layout's `files` list says which is which.
 */
export function uniqueNames(stems: string[]): string[] {
  const used = new Set<string>();
  return stems.map((stem, i) => {
    const base = stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || `sequence-${i}`;
    let name = base;
    if (used.has(name)) name = `${base}-${i}`;
    for (let k = 2; used.has(name); k++) name = `${base}-${i}-${k}`;
    used.add(name);
    return `${name}.npy`;
  });
}

export async function splitSequences(options: SplitOptions): Promise<SplitSummary> {
  const externalOut = inArray('externalOut', options.externalOut ?? DEFAULTS.concat.externalOut, EXTERNAL_OUTS);
  const target = options.outDir;
  const existing = await checkOutputFolder(target, !!options.overwrite);
  // What a split killed outright into this folder left behind (issue 15.17).
  const removedTemps = await removeStaleTemps(target);
  const layoutFile = await findLayout(options.input, options.layout);
  const layout = await readLayout(layoutFile);

  // Pass 1: check everything, write nothing, keep only names (memory flat for millions of lines).
  const sources: string[] = [];
  const externalNames: string[] = [];
  const skipped: SplitSummary['skipped'] = [];
  const skippedAt = new Set<number>();
  let index = 0;
  for await (const { raw, where } of rawSequences(options.input)) {
    try {
      const it = toItem(layout, raw, where, index);
      sources.push(it.source);
      if (externalOut === 'per-image') externalNames.push(it.externalName);
    } catch (err) {
      if (!options.skipInvalid) throw err;
      skipped.push({ where, error: (err as Error).message });
      skippedAt.add(index);
    }
    index++;
  }
  const count = sources.length;
  if (!count)
    throw inputError(
      `${options.input} holds no sequences${skipped.length ? ` that fit the layout (${skipped.length} skipped)` : ''}`,
    );

  // Pass 2: read again and build the folder next to the target, then rename it into place.
  const tmp = tempPathFor(target);
  await ensureParentDir(target);
  trackTemp(tmp); // an interrupt removes it (bin/ on SIGINT / SIGTERM)
  await fs.mkdir(tmp).catch((err) => {
    untrackTemp(tmp);
    return Promise.reject(ioError(err, tmp, 'create folder'));
  });
  try {
    const tokensFile = 'tokens.jsonl';
    const tokens = await AtomicStreamWriter.open(join(tmp, tokensFile));
    const { shape, dtype } = layout.external.npy;
    const n = layout.external.tokens_per_image;
    const names = externalOut === 'per-image' ? uniqueNames(externalNames) : [];
    let all: AtomicStreamWriter | undefined;
    if (externalOut === 'per-image') await fs.mkdir(join(tmp, 'external'));
    else {
      all = await AtomicStreamWriter.open(join(tmp, 'external.npy'));
      await all.write(npyHeader(dtype, [count, n]));
    }
    let i = 0;
    let k = 0;
    for await (const { raw, where } of rawSequences(options.input)) {
      const at = i++;
      if (skippedAt.has(at)) continue;
      const it = toItem(layout, raw, where, at);
      await tokens.write(
        `${JSON.stringify(makeRecord(layout.styled.model, { source: it.source, tokens: it.styled }))}\n`,
      );
      const row = typed(dtype, it.external);
      if (all) await all.write(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
      else await fs.writeFile(join(tmp, 'external', names[k]), encodeNpy(row, shape));
      k++;
    }
    if (k !== count)
      throw inputError(`${options.input} changed while split was reading it (${count} sequences, then ${k})`);
    await tokens.commit();
    await all?.commit();
    const external: Record<string, unknown> = all
      ? { mode: 'single', file: 'external.npy', shape: [count, n], dtype }
      : { mode: 'per-image', dir: 'external', shape, dtype, files: names.map((f) => `external/${f}`) };
    const manifest = {
      format: SPLIT_FORMAT,
      version: SPLIT_VERSION,
      input: options.input,
      layout: layoutFile,
      count,
      tokens: tokensFile,
      external,
      skipped,
      sources,
    };
    await fs.writeFile(join(tmp, 'split.json'), `${formatPretty(manifest)}\n`);
    if (existing) await replaceFolder(target, tmp);
    else await fs.rename(tmp, target);
    untrackTemp(tmp);
    await syncDir(dirname(resolve(target)));
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    untrackTemp(tmp);
    // Name the folder the user asked for, not our temporary one.
    const cause = err instanceof StyledVqError ? (err.cause as NodeJS.ErrnoException | undefined) : err;
    throw cause && describeErrno(cause) ? ioError(cause, target, 'write') : ioError(err, target, 'write');
  }
  return {
    outDir: target,
    layoutFile,
    written: count,
    skipped,
    files: {
      tokens: join(target, 'tokens.jsonl'),
      external: join(target, externalOut === 'per-image' ? 'external' : 'external.npy'),
      manifest: join(target, 'split.json'),
    },
    removedTemps,
  };
}

/**
 * The output folder: new, or an empty folder; a non-empty one only with `overwrite`. A
 * file or a symlink there is refused (split never writes through a link). Returns whether
 * a folder is there now.
 */
async function checkOutputFolder(target: string, overwrite: boolean): Promise<boolean> {
  const st = await fs.lstat(target).catch(() => null);
  if (!st) return false;
  if (st.isSymbolicLink())
    throw usageError(`Output folder ${target} is a symlink; split writes a real folder: name a new one`);
  if (!st.isDirectory())
    throw usageError(
      `Output ${target} is a file, not a folder; split writes a folder (tokens.jsonl, external/, split.json): name ` +
        `a new one`,
    );
  const names = await fs.readdir(target).catch((err) => Promise.reject(ioError(err, target, 'read')));
  if (names.length && !overwrite)
    throw usageError(
      msg`Output folder ${target} is not empty; name a new (or empty) folder, or add ${opt('overwrite', true)} to replace it`,
    );
  return true;
}

/** Put the finished folder in place of the old one: the old one is removed only after the rename. */
async function replaceFolder(target: string, built: string): Promise<void> {
  const old = `${built}.old`;
  await fs.rename(target, old);
  try {
    await fs.rename(built, target);
  } catch (err) {
    await fs.rename(old, target).catch(() => undefined);
    throw err;
  }
  untrackTemp(built);
  trackTemp(old); // garbage now: an interrupt while it is removed removes the rest
  await fs.rm(old, { recursive: true, force: true });
  untrackTemp(old);
}
