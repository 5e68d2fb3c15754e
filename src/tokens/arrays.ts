/**
 * Reading latents and token ids as batches from the files users have: .npy arrays
 * (float32 [N,T,D] / [T,D]; int32 or int64 [N,T] / [T]) or token files (.json / .jsonl
 * records, or plain nested JSON arrays).
 */
import { extname } from 'node:path';
import { inputError } from '../errors';
import type { FloatBatch, TokenBatch } from '../model/model';
import { type NpyArray, readArrayFile } from './npy';
import { checkRecordForModel, isErrorRecord, type ModelShape, type TokenRecord } from './record';
import { readStdin, STDIO } from '../io/stdio';
import { type LocatedRecord, parseTokenText, readText } from './token-file';

export interface ArraysFrom<T> {
  batch: T;
  /** A name per row: the record's source, or "<file>[i]" for plain arrays. */
  sources: string[];
  /** The records the rows came from, when the input was a token file. */
  records?: TokenRecord[];
}

const isNpy = (path: string) => ['.npy', '.npz'].includes(extname(path).toLowerCase());

export interface ArrayReadOptions {
  /** Accept records made by another model. */
  force?: boolean;
  /** Which array of an .npz. */
  key?: string;
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Any float array as float32: float16 and float32 exactly, float64 rounded to the nearest
 * float32 (the precision the model runs at); non-finite or out-of-range values refused.
 */
export function toFloat32(arr: NpyArray, what: string): Float32Array {
  if (!['float16', 'float32', 'float64'].includes(arr.dtype))
    throw inputError(`${what}: latents must be floats (float16, float32 or float64), found ${arr.dtype}`);
  const src = arr.data as Float32Array | Float64Array;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX)
      throw inputError(
        `${what}: value ${v} at flat index ${i} is ${Number.isFinite(v) ? 'outside the float32 range' : 'not finite'}`,
      );
  }
  return src instanceof Float32Array ? src : Float32Array.from(src);
}

/**
 * Token ids of any integer dtype (or floats holding whole numbers) as int32, each checked
 * to be in [0, k): nothing is truncated or rounded.
 */
export function toTokenIds(arr: NpyArray, k: number, where: (i: number) => string): Int32Array {
  const src = arr.data as ArrayLike<number | bigint>;
  const out = new Int32Array(src.length);
  const isFloat = arr.dtype.startsWith('float');
  for (let i = 0; i < src.length; i++) {
    const raw = src[i];
    const v = typeof raw === 'bigint' ? (raw >= 0n && raw < BigInt(k) ? Number(raw) : -1) : raw;
    if (isFloat && !Number.isInteger(v))
      throw inputError(`${where(i)}: ${raw} is not a whole number (token ids are integers; found ${arr.dtype})`);
    if (v < 0 || v >= k || Number.isNaN(v))
      throw inputError(`${where(i)}: token ${raw} is outside the codebook [0, ${k})`);
    out[i] = v;
  }
  return out;
}
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
export async function readLatents(
  path: string,
  model: ModelShape,
  options: ArrayReadOptions = {},
): Promise<ArraysFrom<FloatBatch>> {
  const t = model.numTokens;
  const d = model.latentDim;
  if (isNpy(path)) {
    const arr = await readArrayFile(path, options.key);
    const s = arr.shape;
    const ok = (s.length === 3 && s[1] === t && s[2] === d && s[0] > 0) || (s.length === 2 && s[0] === t && s[1] === d);
    if (!ok) throw inputError(`${path}: latents must have shape [N,${t},${d}] or [${t},${d}], found [${s.join(',')}]`);
    const n = s.length === 3 ? s[0] : 1;
    const data = toFloat32(arr, path);
    return { batch: { data, dims: [n, t, d] }, sources: rowNames(path, n) };
  }
  const text = path === STDIO ? (await readStdin()).toString('utf8') : await readText(path, 'latents file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined; // maybe JSONL records
  }
  const plain = parsed !== undefined ? plainArray(parsed, path, [t, d]) : null;
  if (plain)
    return {
      batch: { data: Float32Array.from(plain.flat), dims: [plain.rows, t, d] },
      sources: rowNames(path, plain.rows),
    };

  const recs = recordsOf(parseTokenText(text, path));
  if (!recs.length) throw inputError(`${path}: no records with latents`);
  const data = new Float32Array(recs.length * t * d);
  recs.forEach(({ rec, where }, i) => {
    checkRecordForModel(rec, model, where, { force: options.force, needLatents: true, needTokens: false });
    for (const [r, row] of rec.latents!.entries()) data.set(row, (i * t + r) * d);
  });
  return {
    batch: { data, dims: [recs.length, t, d] },
    sources: recs.map((r) => r.rec.source),
    records: recs.map((r) => r.rec),
  };
}

/** Token ids [N,T] for dequantize: checked for count and range (and model, for records). */
export async function readTokens(
  path: string,
  model: ModelShape,
  options: ArrayReadOptions = {},
): Promise<ArraysFrom<TokenBatch>> {
  const t = model.numTokens;
  const k = model.codebookSize;
  const checkRange = (data: Int32Array | number[], where: (i: number) => string) => {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < 0 || v >= k)
        throw inputError(`${where(i)}: token ${v} is outside the codebook [0, ${k})`);
    }
  };
  if (isNpy(path)) {
    const arr = await readArrayFile(path, options.key);
    const s = arr.shape;
    const ok = (s.length === 2 && s[1] === t && s[0] > 0) || (s.length === 1 && s[0] === t);
    if (!ok) throw inputError(`${path}: token ids must have shape [N,${t}] or [${t}], found [${s.join(',')}]`);
    const n = s.length === 2 ? s[0] : 1;
    const data = toTokenIds(arr, k, (i) => `${path} row ${Math.floor(i / t)} position ${i % t}`);
    return { batch: { data, dims: [n, t] }, sources: rowNames(path, n) };
  }
  const text = path === STDIO ? (await readStdin()).toString('utf8') : await readText(path, 'token file');
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
  return {
    batch: { data, dims: [recs.length, t] },
    sources: recs.map((r) => r.rec.source),
    records: recs.map((r) => r.rec),
  };
}
