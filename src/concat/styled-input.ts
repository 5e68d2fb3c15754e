/**
 * Reading our own tokens for concat: a tokens.json record, a JSONL of records (from
 * encode or batch), or a batch .npy with its `<stem>.sources.json` sidecar. Inputs that
 * failed (error records, sidecar "failed" rows) are kept as such: they are reported, not
 * concatenated, and never silently dropped.
 */
import { extname } from 'node:path';
import { inputError } from '../errors';
import { openNpyRows } from '../tokens/npy';
import { isErrorRecord, type ModelRef } from '../tokens/record';
import { streamRecordBatches, tokenSource } from '../tokens/token-file';
import { readSourcesSidecar } from '../tokens/sources-sidecar';

export interface StyledEntry {
  source: string;
  /** "tokens.jsonl line 3", "tokens.npy row 3". */
  where: string;
  tokens?: number[];
  /** Why this input has no tokens. */
  error?: string;
}

export interface StyledShape {
  /** Tokens per image; default: as many as the first record has (all must agree). */
  numTokens?: number;
  vocabSize: number;
}

function checkTokens(tokens: ArrayLike<number>, shape: StyledShape, where: string): number[] {
  shape.numTokens ??= tokens.length;
  if (tokens.length !== shape.numTokens)
    throw inputError(`${where}: expected ${shape.numTokens} tokens, found ${tokens.length}`);
  const out = Array.from(tokens);
  const bad = out.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= shape.vocabSize);
  if (bad >= 0)
    throw inputError(`${where}: token ${out[bad]} at position ${bad} is outside the codebook [0, ${shape.vocabSize})`);
  return out;
}

/** One entry of our tokens, with the model that made it. */
export type StyledItem = StyledEntry & { model: ModelRef };

/**
 * Our tokens one entry at a time (memory flat, however many): every record must name the
 * same model; failed inputs come as entries with `error`.
 */
export async function* streamStyledTokens(path: string, shape: StyledShape): AsyncGenerator<StyledItem[]> {
  if (extname(path).toLowerCase() === '.npy') yield* streamNpyWithSidecar(path, shape);
  else yield* streamRecordEntries(path, shape);
}

async function* streamRecordEntries(path: string, shape: StyledShape): AsyncGenerator<StyledItem[]> {
  let first: { model: ModelRef; where: string } | undefined;
  for await (const batch of streamRecordBatches(await tokenSource(path))) {
    yield batch.map(({ record, where }): StyledItem => {
      first ??= { model: { name: record.model.name, fingerprint: record.model.fingerprint }, where };
      if (record.model.fingerprint !== first.model.fingerprint) {
        throw inputError(
          `${where}: made by model fingerprint ${record.model.fingerprint}, but ${first.where} by ` +
            `${first.model.fingerprint}; one file, one model`,
        );
      }
      if (isErrorRecord(record)) return { source: record.source, where, error: record.error, model: first.model };
      return { source: record.source, where, tokens: checkTokens(record.tokens, shape, where), model: first.model };
    });
  }
}

async function* streamNpyWithSidecar(path: string, shape: StyledShape): AsyncGenerator<StyledItem[]> {
  const sidecarPath = `${path.slice(0, -extname(path).length)}.sources.json`;
  const sidecar = await readSourcesSidecar(sidecarPath);
  const rows = await openNpyRows(path);
  try {
    const t = shape.numTokens ?? rows.shape[1];
    if (!['int32', 'int64'].includes(rows.dtype) || rows.shape.length !== 2 || rows.shape[1] !== t) {
      throw inputError(`${path}: expected int32 [N,${t}] tokens, found ${rows.dtype} [${rows.shape.join(',')}]`);
    }
    if (rows.shape[0] !== sidecar.sources.length)
      throw inputError(`${path} has ${rows.shape[0]} rows but ${sidecarPath} names ${sidecar.sources.length} sources`);
    const failed = new Map(sidecar.failed.map((f) => [f.row, f.error]));
    const chunk = 4096; // rows per read
    for (let start = 0; start < rows.shape[0]; start += chunk) {
      const n = Math.min(chunk, rows.shape[0] - start);
      const raw = await rows.read(start * t, n * t);
      const data = raw instanceof BigInt64Array ? Float64Array.from(raw, (v) => Number(v)) : (raw as Int32Array);
      const items: StyledItem[] = [];
      for (let i = 0; i < n; i++) {
        const row = start + i;
        const where = `${path} row ${row}`;
        const source = sidecar.sources[row];
        if (failed.has(row)) items.push({ source, where, error: failed.get(row)!, model: sidecar.model });
        else
          items.push({
            source,
            where,
            tokens: checkTokens(data.subarray(i * t, (i + 1) * t), shape, where),
            model: sidecar.model,
          });
      }
      yield items;
    }
  } finally {
    await rows.close();
  }
}
