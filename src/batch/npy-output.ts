/**
 * The .npy form of a batch output, written from the run's journal once every input is
 * done (see output-paths.ts): arrays numpy reads as is, plus the sidecar that names the
 * rows. Rows of inputs that failed hold -1 tokens (never a valid id) and NaN latents, and
 * the sidecar (tokens/sources-sidecar.ts) lists them with the reason. The journal is
 * streamed; memory stays flat.
 */
import { basename, dirname } from 'node:path';
import { promises as fs } from 'node:fs';
import { inputError, msg, opt } from '../errors';
import { AtomicStreamWriter } from '../io/atomic-stream';
import { syncDir } from '../io/atomic-write';
import { readLines } from '../io/line-reader';
import { npyHeader } from '../tokens/npy';
import { type AnyRecord, isErrorRecord, type ModelRef, parseRecord } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import { FAILED_TOKEN, SOURCES_FORMAT, SOURCES_VERSION, type SourcesSidecar } from '../tokens/sources-sidecar';
import type { NpyPaths } from './output-paths';

export interface NpyShape {
  model: ModelRef;
  numTokens: number;
  latentDim: number;
  /** How alpha was handled (alphaText), recorded in the sidecar. */
  alpha: string;
}

async function* journalRecords(journal: string): AsyncGenerator<AnyRecord> {
  let n = 0;
  for await (const line of readLines(journal)) {
    n++;
    if (!line.terminated)
      throw inputError(msg`${journal} line ${n} is cut off; run again with ${opt('resume', true)} to repair it`);
    yield parseRecord(JSON.parse(line.text), `${journal} line ${n}`);
  }
}

/** Write tokens (+ latents) + sidecar from the journal, then remove the journal. */
export async function finishNpyOutput(
  paths: NpyPaths,
  shape: NpyShape,
  options: { rows: number; latents: boolean },
): Promise<{ failed: number }> {
  const { numTokens: t, latentDim: d } = shape;
  const n = options.rows;
  const tokens = await AtomicStreamWriter.open(paths.tokens);
  const latents = options.latents ? await AtomicStreamWriter.open(paths.latents) : undefined;
  const sidecar = await AtomicStreamWriter.open(paths.sidecar);
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
      tokens: basename(paths.tokens),
      latents: latents ? basename(paths.latents) : null,
      shape: [n, t],
      fill: { tokens: FAILED_TOKEN, latents: 'NaN' },
      alpha: shape.alpha,
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
        if (latents) for (const [k, r] of rec.latents!.entries()) lrow.set(r, k * d);
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
  await syncDir(dirname(paths.tokens));
  await fs.rm(paths.log, { force: true });
  return { failed: failed.length };
}
