import type { TensorData, TensorArray } from '../runtime/onnx';

/** Split [0, n) into consecutive ranges of at most `size`. */
export function ranges(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < n; start += size) out.push([start, Math.min(n, start + size)]);
  return out;
}

/** Rows [start, end) of a tensor along its first axis (a view, no copy). */
export function sliceBatch<T extends TensorArray>(t: TensorData<T>, start: number, end: number): TensorData<T> {
  const row = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { data: t.data.subarray(start * row, end * row) as T, dims: [end - start, ...t.dims.slice(1)] };
}

/** Concatenate tensors along their first axis. */
export function concatBatches<T extends Float32Array | Int32Array>(
  parts: TensorData<T>[],
  make: (n: number) => T,
): TensorData<T> {
  const total = parts.reduce((a, p) => a + p.data.length, 0);
  const data = make(total);
  let off = 0;
  for (const p of parts) {
    data.set(p.data as never, off);
    off += p.data.length;
  }
  const rows = parts.reduce((a, p) => a + p.dims[0], 0);
  return { data, dims: [rows, ...(parts[0]?.dims.slice(1) ?? [])] };
}

/** Run `fn` over the batch in chunks of `size` rows and join the results. */
export async function mapChunks<I extends TensorArray, O extends Float32Array | Int32Array>(
  input: TensorData<I>,
  size: number,
  fn: (chunk: TensorData<I>) => Promise<TensorData<O>>,
  make: (n: number) => O,
): Promise<TensorData<O>> {
  const parts: TensorData<O>[] = [];
  for (const [s, e] of ranges(input.dims[0], size)) parts.push(await fn(sliceBatch(input, s, e)));
  return parts.length === 1 ? parts[0] : concatBatches(parts, make);
}
