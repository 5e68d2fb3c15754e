/**
 * NumPy .npy files (format 1.0 on write; 1.0-3.0 on read), readable by `numpy.load` as is:
 * little-endian, C order, header padded with spaces so the data starts on a 64-byte
 * boundary. Format: numpy.lib.format in the NumPy documentation.
 */
import { promises as fs } from 'node:fs';
import { inputError } from '../errors';
import { writeFileAtomic } from '../util/atomic';

export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int16' | 'uint16' | 'uint32';
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int16Array | Uint16Array | Uint32Array;

export interface NpyArray<T extends NpyData = NpyData> {
  dtype: NpyDtype;
  shape: number[];
  data: T;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

const DESCR: Record<NpyDtype, { descr: string; bytes: number; make: (buf: ArrayBuffer, n: number) => NpyData }> = {
  float32: { descr: '<f4', bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  float64: { descr: '<f8', bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  int32: { descr: '<i4', bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  int64: { descr: '<i8', bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  uint8: { descr: '|u1', bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  int16: { descr: '<i2', bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  uint16: { descr: '<u2', bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  uint32: { descr: '<u4', bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
};

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  return 'uint32';
}

/** Serialise an array as .npy bytes (format 1.0 when the header fits, else 2.0). */
export function encodeNpy(data: NpyData, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: shape [${shape.join(',')}] needs ${count} values, got ${data.length}`);
  const header = npyHeader(dtypeOf(data), shape);
  const out = Buffer.alloc(header.length + data.byteLength);
  header.copy(out, 0);
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, header.length);
  return out;
}

/** The .npy header alone (the data follows it), for writers that stream large arrays. */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Buffer {
  const { descr } = DESCR[dtype];
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = MAGIC.length + 2 + 2; // magic, version, uint16 header length
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = MAGIC.length + 2 + 4;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - prefix;
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(headerLen, 8);
  else out.writeUInt32LE(headerLen, 8);
  out.write(header, prefix, 'latin1');
  return out;
}

/** Parse .npy bytes; `name` is used in error messages. */
export function decodeNpy(buf: Buffer, name = 'array.npy'): NpyArray {
  const fail = (what: string) => inputError(`${name} is not a readable .npy file: ${what}`);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw fail('missing the \\x93NUMPY magic');
  const major = buf[6];
  if (major < 1 || major > 3) throw fail(`unsupported format version ${major}.${buf[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (buf.length < start + headerLen) throw fail('header is truncated');
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw fail('header lacks descr, fortran_order or shape');
  if (fortran === 'True') throw fail('Fortran-ordered arrays are not supported (save with C order)');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw fail(`bad shape (${shapeText})`);

  // Byte order: '<' little, '|' not applicable (1 byte), '=' native (little on every platform we run on).
  const order = descr[0];
  const code = '<|='.includes(order) ? descr.slice(1) : order === '>' ? null : descr;
  const dtype = code === null ? undefined : (Object.keys(DESCR) as NpyDtype[]).find((k) => DESCR[k].descr.slice(1) === code);
  if (!dtype) throw fail(`unsupported dtype ${descr} (supported: little-endian float32, float64, int32, int64, uint8, int16, uint16, uint32)`);

  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const byteLength = count * DESCR[dtype].bytes;
  if (buf.length - dataStart < byteLength) throw fail(`data is truncated (${buf.length - dataStart} of ${byteLength} bytes)`);
  // Copy into a fresh buffer: typed arrays need offsets that are multiples of the element size.
  const copy = new ArrayBuffer(byteLength);
  new Uint8Array(copy).set(buf.subarray(dataStart, dataStart + byteLength));
  return { dtype, shape, data: DESCR[dtype].make(copy, count) };
}

export async function readNpy(path: string): Promise<NpyArray> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw inputError(`Cannot read ${path}: ${why}`, err);
  }
  return decodeNpy(buf, path);
}

/** Write atomically (temp file + rename). */
export async function writeNpy(path: string, data: NpyData, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}
