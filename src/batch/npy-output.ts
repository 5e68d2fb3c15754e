/**
 * The .npy form of a batch output, written from the run's journal once every input is
 * done (see output-paths.ts): arrays numpy reads as is, plus the sidecar that names the
 * rows. Rows of inputs that failed hold -1 tokens (never a valid id) and NaN latents, and
 * the sidecar lists them with the reason. The journal is streamed; memory stays flat.
 */
import { basename, dirname } from 'node:path';
import { promises as fs } from 'node:fs';
import { inputError } from '../errors';
import { npyHeader } from '../tokens/npy';
import { AnyRecord, isErrorRecord, ModelRef, parseRecord } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import { AtomicStreamWriter } from './atomic-stream';
import { readLines } from './line-reader';
import type { BatchPaths } from './output-paths';

export const SOURCES_FORMAT = 'styled-vq-batch-sources';
export const SOURCES_VERSION = 1;
/** Token value in the rows of inputs that failed. */
export const FAILED_TOKEN = -1;

/** The sidecar `<stem>.sources.json`. */
export interface SourcesSidecar {
  format: typeof SOURCES_FORMAT;
  version: typeof SOURCES_VERSION;
  model: ModelRef;
  /** File names (relative to the sidecar) of the arrays. */
  tokens: string;
  latents: string | null;
  /** [N, num_tokens]. */
  shape: [number, number];
  /** Rows that hold no tokens (FAILED_TOKEN / NaN), with the reason. */
  failed: { row: number; source: string; error: string }[];
  fill: { tokens: number; latents: 'NaN' };
  /** N sources, row order. */
  sources: string[];
}

export interface NpyShape {
  model: ModelRef;
  numTokens: number;
  latentDim: number;
}

async function* journalRecords(journal: string): AsyncGenerator<AnyRecord> {
  let n = 0;
  for await (const line of readLines(journal)) {
    n++;
    if (!line.terminated) throw inputError(`${journal} line ${n} is cut off; run again with --resume to repair it`);
    yield parseRecord(JSON.parse(line.text), `${journal} line ${n}`);
  }
}

/** Write tokens (+ latents) + sidecar from the journal, then remove the journal. */
export async function finishNpyOutput(paths: BatchPaths, shape: NpyShape, options: { rows: number; latents: boolean }): Promise<{ failed: number }> {
  const { numTokens: t, latentDim: d } = shape;
  const n = options.rows;
  const tokens = await AtomicStreamWriter.open(paths.tokens!);
  const latents = options.latents ? await AtomicStreamWriter.open(paths.latents!) : undefined;
  const sidecar = await AtomicStreamWriter.open(paths.sidecar!);
  const failed: SourcesSidecar['failed'] = [];
  try {
    await tokens.write(npyHeader('int32', [n, t]));
    await latents?.write(npyHeader('float32', [n, t, d]));
    const row = new Int32Array(t);
    const lrow = new Float32Array(t * d);
    let i = 0;
    // The sidecar is streamed too: sources can be millions of paths.
    const head: Omit<SourcesSidecar, 'failed' | 'sources'> = {
      format: SOURCES_FORMAT,
      version: SOURCES_VERSION,
      model: shape.model,
      tokens: basename(paths.tokens!),
      latents: latents ? basename(paths.latents!) : null,
      shape: [n, t],
      fill: { tokens: FAILED_TOKEN, latents: 'NaN' },
    };
    await sidecar.write(formatPretty(head).replace(/\n}$/, ',\n  "sources": [\n'));
    for await (const rec of journalRecords(paths.log)) {
      if (i >= n) throw inputError(`${paths.log} holds more than the ${n} records counted`);
      if (isErrorRecord(rec)) {
        row.fill(FAILED_TOKEN);
        lrow.fill(NaN);
        failed.push({ row: i, source: rec.source, error: rec.error });
      } else {
        row.set(rec.tokens);
        if (latents) rec.latents!.forEach((r, k) => lrow.set(r, k * d));
      }
      await tokens.write(new Uint8Array(row.buffer));
      await latents?.write(new Uint8Array(lrow.buffer));
      await sidecar.write(`${i ? ',\n' : ''}    ${JSON.stringify(rec.source)}`);
      i++;
    }
    if (i !== n) throw inputError(`${paths.log} holds ${i} records, expected ${n}`);
    await sidecar.write(`\n  ],\n  "failed": ${JSON.stringify(failed)}\n}\n`);
    await tokens.commit();
    await latents?.commit();
    await sidecar.commit(); // last: a sidecar without a journal marks a finished output
  } catch (err) {
    await Promise.all([tokens.abort(), latents?.abort(), sidecar.abort()]);
    throw err;
  }
  // The renames must be on disk before the journal (the only other copy) goes.
  await syncDirectory(dirname(paths.tokens!));
  await fs.rm(paths.log, { force: true });
  return { failed: failed.length };
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r').catch(() => null); // not possible everywhere (Windows): best effort
  try {
    await fh?.sync();
  } catch {
    // some file systems refuse to sync a directory; the rename is still atomic
  } finally {
    await fh?.close();
  }
}

/** Read and check a sidecar (concat and resume use it). */
export async function readSourcesSidecar(path: string): Promise<SourcesSidecar> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(path, 'utf8'));
  } catch (err) {
    throw inputError(`Cannot read ${path}: ${(err as Error).message.split('\n')[0]}`, err);
  }
  const s = raw as SourcesSidecar;
  const ok =
    s?.format === SOURCES_FORMAT &&
    s.version === SOURCES_VERSION &&
    typeof s.model?.fingerprint === 'string' &&
    Array.isArray(s.sources) &&
    Array.isArray(s.failed) &&
    Array.isArray(s.shape) &&
    s.shape[0] === s.sources.length;
  if (!ok) throw inputError(`${path} is not a styled-vq sources sidecar (format "${SOURCES_FORMAT}" v${SOURCES_VERSION} with N sources)`);
  return s;
}
