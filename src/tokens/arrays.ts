/**
 * Reading latents and token ids as batches from the files users have: .npy arrays
 * (float32 [N,T,D] / [T,D]; int32 or int64 [N,T] / [T]) or token files (.json / .jsonl
 * records, or plain nested JSON arrays).
 */
import { extname } from 'node:path';
import { inputError } from '../errors';
import type { FloatBatch, TokenBatch } from '../model/model';
import { readNpy } from './npy';
import { checkRecordForModel, isErrorRecord, ModelShape, TokenRecord } from './record';
import { LocatedRecord, parseTokenText, readText } from './token-file';

export interface ArraysFrom<T> {
  batch: T;
  /** A name per row: the record's source, or "<file>[i]" for plain arrays. */
  sources: string[];
  /** The records the rows came from, when the input was a token file. */
  records?: TokenRecord[];
}

const isNpy = (path: string) => extname(path).toLowerCase() === '.npy';
const rowNames = (path: string, n: number) => Array.from({ length: n }, (_, i) => `${path}[${i}]`);

function recordsOf(located: LocatedRecord[]): { rec: TokenRecord; where: string }[] {
  return located.filter((l) => !isErrorRecord(l.record)).map((l) => ({ rec: l.record as TokenRecord, where: l.where }));
}

/**
 * Nested JSON arrays of numbers of shape `inner` or [N, ...inner]; null when the value is
 * not an array of numbers at all (e.g. token records).
 */
function plainArray(value: unknown, path: string, inner: number[]): { flat: number[]; rows: number } | null {
  let depth = 0;
  let leaf: unknown = value;
  while (Array.isArray(leaf)) {
    depth++;
    leaf = leaf[0];
  }
  if (depth === 0 || typeof leaf !== 'number') return null;
  const shape = depth === inner.length + 1 ? [(value as unknown[]).length, ...inner] : inner;
  const fits = (v: unknown, level: number): boolean =>
    level === shape.length
      ? typeof v === 'number' && Number.isFinite(v)
      : Array.isArray(v) && v.length === shape[level] && v.every((x) => fits(x, level + 1));
  if ((depth !== inner.length && depth !== inner.length + 1) || !fits(value, 0)) {
    throw inputError(`${path}: expected numbers of shape [${inner.join(',')}] or [N,${inner.join(',')}]`);
  }
  return { flat: (value as unknown[]).flat(depth - 1) as number[], rows: depth === inner.length ? 1 : shape[0] };
}

/** Latents float32 [N,T,D] for quantize. */
export async function readLatents(path: string, model: ModelShape, options: { force?: boolean } = {}): Promise<ArraysFrom<FloatBatch>> {
  const t = model.numTokens;
  const d = model.latentDim;
  if (isNpy(path)) {
    const arr = await readNpy(path);
    if (arr.dtype !== 'float32' && arr.dtype !== 'float64') throw inputError(`${path}: latents must be float32 (or float64), found ${arr.dtype}`);
    const s = arr.shape;
    const ok = (s.length === 3 && s[1] === t && s[2] === d && s[0] > 0) || (s.length === 2 && s[0] === t && s[1] === d);
    if (!ok) throw inputError(`${path}: latents must have shape [N,${t},${d}] or [${t},${d}], found [${s.join(',')}]`);
    const n = s.length === 3 ? s[0] : 1;
    const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as Float64Array);
    return { batch: { data, dims: [n, t, d] }, sources: rowNames(path, n) };
  }
  const text = await readText(path, 'latents file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined; // maybe JSONL records
  }
  const plain = parsed !== undefined ? plainArray(parsed, path, [t, d]) : null;
  if (plain) return { batch: { data: Float32Array.from(plain.flat), dims: [plain.rows, t, d] }, sources: rowNames(path, plain.rows) };

  const recs = recordsOf(parseTokenText(text, path));
  if (!recs.length) throw inputError(`${path}: no records with latents`);
  const data = new Float32Array(recs.length * t * d);
  recs.forEach(({ rec, where }, i) => {
    checkRecordForModel(rec, model, where, { force: options.force, needLatents: true, needTokens: false });
    rec.latents!.forEach((row, r) => data.set(row, (i * t + r) * d));
  });
  return { batch: { data, dims: [recs.length, t, d] }, sources: recs.map((r) => r.rec.source), records: recs.map((r) => r.rec) };
}

/** Token ids [N,T] for dequantize: checked for count and range (and model, for records). */
export async function readTokens(path: string, model: ModelShape, options: { force?: boolean } = {}): Promise<ArraysFrom<TokenBatch>> {
  const t = model.numTokens;
  const k = model.codebookSize;
  const checkRange = (data: Int32Array | number[], where: (i: number) => string) => {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < 0 || v >= k) throw inputError(`${where(i)}: token ${v} is outside the codebook [0, ${k})`);
    }
  };
  if (isNpy(path)) {
    const arr = await readNpy(path);
    if (arr.dtype !== 'int32' && arr.dtype !== 'int64') throw inputError(`${path}: token ids must be int32 or int64, found ${arr.dtype}`);
    const s = arr.shape;
    const ok = (s.length === 2 && s[1] === t && s[0] > 0) || (s.length === 1 && s[0] === t);
    if (!ok) throw inputError(`${path}: token ids must have shape [N,${t}] or [${t}], found [${s.join(',')}]`);
    const n = s.length === 2 ? s[0] : 1;
    if (arr.data instanceof BigInt64Array) {
      const bad = arr.data.findIndex((v) => v < 0n || v >= BigInt(k));
      if (bad >= 0) throw inputError(`${path} row ${Math.floor(bad / t)} position ${bad % t}: token ${arr.data[bad]} is outside the codebook [0, ${k})`);
    }
    const data = arr.data instanceof Int32Array ? arr.data : Int32Array.from(arr.data as BigInt64Array, (v) => Number(v));
    checkRange(data, (i) => `${path} row ${Math.floor(i / t)} position ${i % t}`);
    return { batch: { data, dims: [n, t] }, sources: rowNames(path, n) };
  }
  const text = await readText(path, 'token file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const plain = parsed !== undefined ? plainArray(parsed, path, [t]) : null;
  if (plain) {
    checkRange(plain.flat, (i) => `${path} row ${Math.floor(i / t)} position ${i % t}`);
    return { batch: { data: Int32Array.from(plain.flat), dims: [plain.rows, t] }, sources: rowNames(path, plain.rows) };
  }
  const recs = recordsOf(parseTokenText(text, path));
  if (!recs.length) throw inputError(`${path}: no token records`);
  const data = new Int32Array(recs.length * t);
  recs.forEach(({ rec, where }, i) => {
    checkRecordForModel(rec, model, where, { force: options.force });
    data.set(rec.tokens, i * t);
  });
  return { batch: { data, dims: [recs.length, t] }, sources: recs.map((r) => r.rec.source), records: recs.map((r) => r.rec) };
}
