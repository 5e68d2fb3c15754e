/**
 * Reading our own tokens for concat: a tokens.json record, a JSONL of records (from
 * encode or batch), or a batch .npy with its `<stem>.sources.json` sidecar. Inputs that
 * failed (error records, sidecar "failed" rows) are kept as such: they are reported, not
 * concatenated, and never silently dropped.
 */
import { extname } from 'node:path';
import { inputError } from '../errors';
import { readNpy } from '../tokens/npy';
import { isErrorRecord, ModelRef } from '../tokens/record';
import { readTokenFile } from '../tokens/token-file';
import { readSourcesSidecar } from '../batch/npy-output';

export interface StyledEntry {
  source: string;
  /** "tokens.jsonl line 3", "tokens.npy row 3". */
  where: string;
  tokens?: number[];
  /** Why this input has no tokens. */
  error?: string;
}

export interface StyledTokens {
  path: string;
  entries: StyledEntry[];
  /** The model every record names (they must agree). */
  model: ModelRef;
}

export interface StyledShape {
  /** Tokens per image; default: as many as the first record has (all must agree). */
  numTokens?: number;
  vocabSize: number;
}

function checkTokens(tokens: ArrayLike<number>, shape: StyledShape, where: string): number[] {
  shape.numTokens ??= tokens.length;
  if (tokens.length !== shape.numTokens) throw inputError(`${where}: expected ${shape.numTokens} tokens, found ${tokens.length}`);
  const out = Array.from(tokens);
  const bad = out.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= shape.vocabSize);
  if (bad >= 0) throw inputError(`${where}: token ${out[bad]} at position ${bad} is outside the codebook [0, ${shape.vocabSize})`);
  return out;
}

export async function readStyledTokens(path: string, given: StyledShape): Promise<StyledTokens & { numTokens: number }> {
  const shape = { ...given };
  const read = extname(path).toLowerCase() === '.npy' ? await readNpyWithSidecar(path, shape) : await readRecords(path, shape);
  if (!read.entries.some((e) => e.tokens)) throw inputError(`${path} holds no tokens (every input failed)`);
  return { ...read, numTokens: shape.numTokens! };
}

async function readRecords(path: string, shape: StyledShape): Promise<StyledTokens> {
  const located = await readTokenFile(path);
  const model = located[0].record.model;
  const entries = located.map(({ record, where }): StyledEntry => {
    if (record.model.fingerprint !== model.fingerprint) {
      throw inputError(`${where}: made by model fingerprint ${record.model.fingerprint}, but ${located[0].where} by ${model.fingerprint}; one file, one model`);
    }
    if (isErrorRecord(record)) return { source: record.source, where, error: record.error };
    return { source: record.source, where, tokens: checkTokens(record.tokens, shape, where) };
  });
  return { path, entries, model: { name: model.name, fingerprint: model.fingerprint } };
}

async function readNpyWithSidecar(path: string, shape: StyledShape): Promise<StyledTokens> {
  const sidecarPath = `${path.slice(0, -extname(path).length)}.sources.json`;
  const sidecar = await readSourcesSidecar(sidecarPath);
  const arr = await readNpy(path);
  const t = shape.numTokens ?? arr.shape[1];
  if ((arr.dtype !== 'int32' && arr.dtype !== 'int64') || arr.shape.length !== 2 || arr.shape[1] !== t) {
    throw inputError(`${path}: expected int32 [N,${t}] tokens, found ${arr.dtype} [${arr.shape.join(',')}]`);
  }
  if (arr.shape[0] !== sidecar.sources.length) throw inputError(`${path} has ${arr.shape[0]} rows but ${sidecarPath} names ${sidecar.sources.length} sources`);
  const failed = new Map(sidecar.failed.map((f) => [f.row, f.error]));
  const data = arr.data instanceof BigInt64Array ? Int32Array.from(arr.data, (v) => Number(v)) : (arr.data as Int32Array);
  const entries = sidecar.sources.map((source, row): StyledEntry => {
    const where = `${path} row ${row}`;
    if (failed.has(row)) return { source, where, error: failed.get(row)! };
    return { source, where, tokens: checkTokens(data.subarray(row * t, (row + 1) * t), shape, where) };
  });
  return { path, entries, model: sidecar.model };
}
