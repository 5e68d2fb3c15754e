/**
 * NumPy .npy files (format 1.0 on write; 1.0-3.0 on read), readable by `numpy.load` as is:
 * little-endian, C order, header padded with spaces so the data starts on a 64-byte
 * boundary. Reading takes what numpy.save writes: either byte order, C or Fortran order,
 * float16/32/64 and (u)int8-64, and .npz archives (numpy.savez, savez_compressed).
 * Format: numpy.lib.format in the NumPy documentation.
 */
import { promises as fs } from 'node:fs';
import { fsPath } from '../io/byte-names';
import yauzl from 'yauzl';
import { inputError, StyledVqError, msg, opt } from '../errors';
import { ioError } from '../io/io-errors';
import { writeFileAtomic } from '../io/atomic-write';
import { parseNpyHeader } from './npy-header';

/** The types we write (little-endian, C order). */
export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int16' | 'uint16' | 'uint32';
export type NpyData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Uint32Array;

/** The types we read: also what numpy writes besides (half floats, int8, uint64). */
export type NpyReadDtype = NpyDtype | 'float16' | 'int8' | 'uint64';
export type NpyReadData = NpyData | Int8Array | BigUint64Array;

export interface NpyArray<T extends NpyReadData = NpyReadData> {
  /** The file's dtype (byte order aside). float16 data comes as a Float32Array (exact). */
  dtype: NpyReadDtype;
  shape: number[];
  /** In C order and native byte order, whatever the file's order. */
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
  if (count !== data.length)
    throw new Error(`npy: shape [${shape.join(',')}] needs ${count} values, got ${data.length}`);
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
  const header = `${dict + ' '.repeat(headerLen - dict.length - 1)}\n`;
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(headerLen, 8);
  else out.writeUInt32LE(headerLen, 8);
  out.write(header, prefix, 'latin1');
  return out;
}

interface ReadType {
  dtype: NpyReadDtype;
  bytes: number;
  /** Read element i (native order) from a DataView at byte offset o. */
  make(n: number): NpyReadData;
  get(view: DataView, o: number, little: boolean): number | bigint;
}

const float16 = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
};

const READ_TYPES: Record<string, ReadType> = {
  f2: { dtype: 'float16', bytes: 2, make: (n) => new Float32Array(n), get: (v, o, l) => float16(v.getUint16(o, l)) },
  f4: { dtype: 'float32', bytes: 4, make: (n) => new Float32Array(n), get: (v, o, l) => v.getFloat32(o, l) },
  f8: { dtype: 'float64', bytes: 8, make: (n) => new Float64Array(n), get: (v, o, l) => v.getFloat64(o, l) },
  i1: { dtype: 'int8', bytes: 1, make: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o) },
  i2: { dtype: 'int16', bytes: 2, make: (n) => new Int16Array(n), get: (v, o, l) => v.getInt16(o, l) },
  i4: { dtype: 'int32', bytes: 4, make: (n) => new Int32Array(n), get: (v, o, l) => v.getInt32(o, l) },
  i8: { dtype: 'int64', bytes: 8, make: (n) => new BigInt64Array(n), get: (v, o, l) => v.getBigInt64(o, l) },
  u1: { dtype: 'uint8', bytes: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  u2: { dtype: 'uint16', bytes: 2, make: (n) => new Uint16Array(n), get: (v, o, l) => v.getUint16(o, l) },
  u4: { dtype: 'uint32', bytes: 4, make: (n) => new Uint32Array(n), get: (v, o, l) => v.getUint32(o, l) },
  u8: { dtype: 'uint64', bytes: 8, make: (n) => new BigUint64Array(n), get: (v, o, l) => v.getBigUint64(o, l) },
};

/** Arrays above this many bytes are refused before anything is allocated. */
export const MAX_NPY_BYTES = 8 * 1024 ** 3;

/** Offset in Fortran (column-major) storage of each element, visited in C order. */
function* fortranOffsets(shape: readonly number[]): Generator<number> {
  const nd = shape.length;
  const stride: number[] = [];
  for (let k = 0, s = 1; k < nd; k++) {
    stride.push(s);
    s *= shape[k];
  }
  const idx = new Array(nd).fill(0);
  const count = shape.reduce((a, b) => a * b, 1);
  let off = 0;
  for (let n = 0; n < count; n++) {
    yield off;
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      off += stride[k];
      if (idx[k] < shape[k]) break;
      off -= stride[k] * shape[k];
      idx[k] = 0;
    }
  }
}

/**
 * Parse .npy bytes as numpy.load reads them: format 1.0-3.0, any byte order, C or Fortran
 * order, float16/32/64, (u)int8-64. The header must be what numpy accepts (npy-header.ts).
 * `name` is used in error messages.
 */
export function decodeNpy(buf: Buffer, name = 'array.npy'): NpyArray {
  const h = parseNpyPrefix(buf, name);
  const fail = (what: string) => inputError(`${name} is not a readable .npy file: ${what}`);
  const have = buf.length - h.dataStart;
  if (have < h.byteLength) throw fail(`data is truncated (${have} of ${h.byteLength} bytes)`);
  if (have > h.byteLength)
    throw fail(`${have - h.byteLength} bytes follow the data (shape (${h.shape.join(', ')}) needs ${h.byteLength})`);
  return {
    dtype: h.type.dtype,
    shape: h.shape,
    data: convert(buf.subarray(h.dataStart, h.dataStart + h.byteLength), h, h.count),
  };
}

interface NpyLayout {
  type: ReadType;
  little: boolean;
  fortranOrder: boolean;
  shape: number[];
  count: number;
  byteLength: number;
  dataStart: number;
}

/** Magic, version, header: everything before the data (`buf` needs only that much). */
function parseNpyPrefix(buf: Buffer, name: string): NpyLayout {
  const fail = (what: string) => inputError(`${name} is not a readable .npy file: ${what}`);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw fail('missing the \\x93NUMPY magic');
  const major = buf[6];
  if (major < 1 || major > 3 || buf[7] !== 0) throw fail(`unsupported format version ${major}.${buf[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) throw fail('header is truncated');
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (buf.length < start + headerLen) throw fail('header is truncated');
  const header = parseNpyHeader(buf.subarray(start, start + headerLen).toString(major === 3 ? 'utf8' : 'latin1'), name);
  const { descr, shape } = header;
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const type = m ? READ_TYPES[m[2]] : undefined;
  if (!m || !type)
    throw fail(`unsupported dtype '${descr}' (supported: float16/32/64, int8-64, uint8-64, either byte order)`);
  if (m[1] === '|' && type.bytes !== 1) throw fail(`dtype '${descr}' has no byte order`);
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * type.bytes;
  if (!Number.isSafeInteger(byteLength) || byteLength > MAX_NPY_BYTES)
    throw fail(`shape (${shape.join(', ')}) is too large`);
  // '=' is native: little-endian on every platform Node runs us on.
  return {
    type,
    little: m[1] !== '>',
    fortranOrder: header.fortranOrder,
    shape,
    count,
    byteLength,
    dataStart: start + headerLen,
  };
}

/** Raw element bytes -> a typed array in C order and native byte order. */
function convert(bytes: Buffer, h: NpyLayout, count: number, shape = h.shape): NpyReadData {
  const rt = h.type;
  const data = rt.make(count);
  if (h.little && !(h.fortranOrder && shape.length > 1) && rt.dtype !== 'float16') {
    // The common case: copy (typed arrays need offsets that are multiples of the element size).
    new Uint8Array(data.buffer).set(bytes.subarray(0, count * rt.bytes));
    return data;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * rt.bytes);
  const out = data as unknown as { [i: number]: number | bigint };
  if (h.fortranOrder && shape.length > 1) {
    let i = 0;
    for (const off of fortranOffsets(shape)) out[i++] = rt.get(view, off * rt.bytes, h.little);
  } else {
    for (let i = 0; i < count; i++) out[i] = rt.get(view, i * rt.bytes, h.little);
  }
  return data;
}

/**
 * An .npy opened for reading rows on demand (positioned reads, memory flat), for arrays
 * too large to load whole. Fortran-ordered files are loaded whole (their rows are not
 * contiguous).
 */
export interface NpyRows {
  dtype: NpyReadDtype;
  shape: number[];
  /** Elements [start, start + count) in C order. */
  read(start: number, count: number): Promise<NpyReadData>;
  close(): Promise<void>;
}

export async function openNpyRows(path: string): Promise<NpyRows> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(fsPath(path), 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ENOENT' ? inputError(`Cannot read ${path}: no such file`, err) : ioError(err, path, 'read');
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw inputError(`Cannot read ${path}: not a regular file`);
    const head = Buffer.alloc(Math.min(st.size, 1 << 16));
    await fh.read(head, 0, head.length, 0);
    const h = parseNpyPrefix(head, path);
    const have = st.size - h.dataStart;
    const fail = (what: string) => inputError(`${path} is not a readable .npy file: ${what}`);
    if (have < h.byteLength) throw fail(`data is truncated (${have} of ${h.byteLength} bytes)`);
    if (have > h.byteLength)
      throw fail(`${have - h.byteLength} bytes follow the data (shape (${h.shape.join(', ')}) needs ${h.byteLength})`);
    let whole: NpyReadData | undefined;
    // The raw bytes of a read, reused: convert() copies them out, and a fresh megabyte per
    // read costs page faults and GC pressure (concat reads a large .npy this way).
    let scratch = Buffer.allocUnsafe(0);
    if (h.fortranOrder && h.shape.length > 1) {
      const all = Buffer.alloc(h.byteLength);
      await fh.read(all, 0, h.byteLength, h.dataStart);
      whole = convert(all, h, h.count);
    }
    return {
      dtype: h.type.dtype,
      shape: h.shape,
      read: async (start, count) => {
        if (whole) return whole.subarray(start, start + count) as NpyReadData;
        const length = count * h.type.bytes;
        // Taken while in use, so that overlapping reads never share it.
        const bytes = scratch.length >= length ? scratch : Buffer.allocUnsafe(length);
        scratch = Buffer.allocUnsafe(0);
        const { bytesRead } = await fh.read(bytes, 0, length, h.dataStart + start * h.type.bytes);
        if (bytesRead !== length) throw fail(`data is truncated at element ${start}`);
        const data = convert(bytes, h, count, [count]);
        scratch = bytes;
        return data;
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

export async function readNpy(path: string): Promise<NpyArray> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(fsPath(path));
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

/** The entries of an .npz (numpy.savez / savez_compressed): array names without ".npy". */
export async function listNpz(path: string): Promise<string[]> {
  return (await npzEntries(path, null)).names;
}

/**
 * One array of an .npz, by name (`key`; numpy's `np.load(f)[key]`), or its only array when
 * no key is given.
 */
export async function readNpz(path: string, key?: string): Promise<NpyArray & { key: string }> {
  const { names, buffer, picked } = await npzEntries(path, key ?? null);
  if (!buffer || picked === undefined) {
    const list = names.length ? names.join(', ') : 'none';
    if (key !== undefined) throw inputError(`${path} has no array named "${key}" (it has: ${list})`);
    throw inputError(msg`${path} holds ${names.length} arrays (${list}); choose one with ${opt('key')}`);
  }
  return { ...decodeNpy(buffer, `${path}[${picked}]`), key: picked };
}

async function npzEntries(
  path: string,
  key: string | null,
): Promise<{ names: string[]; buffer?: Buffer; picked?: string }> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((res, rej) =>
      yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, z) => (err ? rej(err) : res(z!))),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw ioError(err, path, 'read');
    throw inputError(`${path} is not a readable .npz (zip) file: ${(err as Error).message}`, err);
  }
  try {
    const entries: yauzl.Entry[] = [];
    await new Promise<void>((res, rej) => {
      zip.on('entry', (e: yauzl.Entry) => {
        entries.push(e);
        zip.readEntry();
      });
      zip.on('end', () => res());
      zip.on('error', rej);
      zip.readEntry();
    });
    const names = entries.filter((e) => e.fileName.endsWith('.npy')).map((e) => e.fileName.slice(0, -4));
    const picked = key ?? (names.length === 1 ? names[0] : undefined);
    const entry = picked === undefined ? undefined : entries.find((e) => e.fileName === `${picked}.npy`);
    if (!entry) return { names };
    if (entry.uncompressedSize > MAX_NPY_BYTES)
      throw inputError(`${path}[${picked}] is too large (${entry.uncompressedSize} bytes)`);
    const stream = await new Promise<NodeJS.ReadableStream>((res, rej) =>
      zip.openReadStream(entry, (err, s) => (err ? rej(err) : res(s!))),
    );
    const chunks: Buffer[] = [];
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    return { names, buffer: Buffer.concat(chunks), picked };
  } catch (err) {
    if (err instanceof StyledVqError) throw err;
    throw inputError(`${path} is not a readable .npz (zip) file: ${(err as Error).message}`, err);
  } finally {
    zip.close();
  }
}

/** An .npy, or with `.npz` one array of it (`key`). */
export async function readArrayFile(path: string, key?: string): Promise<NpyArray> {
  if (/\.npz$/i.test(path)) return readNpz(path, key);
  return readNpy(path);
}
