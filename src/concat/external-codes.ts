/**
 * Reading an external VQ-VAE's codes (LlamaGen's VQ-16 and the like), one entry per image:
 *   - one .npy per image: (N,), (1, N), or (1, A, N) with A augmentations (LlamaGen's
 *     extract_codes writes (1, 2, 256) with flips, (1, 10, 256) with ten-crop; pick one
 *     with `augIndex`); a folder of them is keyed by file stem;
 *   - one .npy for all images: (M, N) or (M, A, N), rows in order;
 *   - JSON: an array of per-image arrays (in order), or an object { stem: array };
 *   - JSONL: a per-image array per line (in order), or objects { "source", "codes" }.
 * Entries load lazily (a folder can hold millions of files; one .npy is read a row at a
 * time); each load checks dtype, shape and that every id is in [0, V).
 */
import { promises as fs } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { decodeName, fsPath } from '../io/byte-names';
import { inputError, usageError, msg, opt } from '../errors';
import { type NpyArray, type NpyDtype, openNpyRows, readNpy } from '../tokens/npy';
import { readText } from '../tokens/token-file';

export interface ExternalEntry {
  /** Stem to match records by (keyed sources only). */
  key?: string;
  /** Where the codes are ("codes/cat.npy", "codes.npy row 3"): for messages and records. */
  label: string;
  /**
   * The image's codes (one augmentation), checked to be integers in [0, V). For rows of one
   * .npy the array is reused by the next load(): copy it to keep it. A promise only when a
   * read is needed (rows of one .npy mostly come from memory: no await per row).
   */
  load(): Int32Array | Promise<Int32Array>;
}

export interface ExternalCodes {
  path: string;
  /** True when entries carry keys (matched by stem); false when they are rows in order. */
  keyed: boolean;
  /** How many images have codes. */
  count: number;
  /** The i-th entry, made on demand (millions of entries are never all in memory as objects). */
  entry(i: number): ExternalEntry;
  /** Release open files. */
  close(): Promise<void>;
  tokensPerImage: number;
  /** Per-image array shape and dtype, as split will write them back. */
  npy: { shape: number[]; dtype: NpyDtype };
  /** A of (1, A, N) inputs; null without an augmentation axis. */
  augmentations: number | null;
}

export interface ExternalOptions {
  /** V: every id must be below it. */
  vocabSize: number;
  /** Which augmentation of (1, A, N) arrays to take. */
  augIndex?: number;
  /** Folder files in numeric order of their stems (0.npy, 1.npy, ... 10.npy) where all are numbers. */
  numericOrder?: boolean;
}

const INT_DTYPES: readonly NpyDtype[] = ['int64', 'int32', 'int16', 'uint8', 'uint16', 'uint32'];

/** Nested arrays -> flat data + shape; null unless a regular array of numbers. */
function nested(v: unknown): { shape: number[]; data: number[] } | null {
  const shape: number[] = [];
  let x: unknown = v;
  while (Array.isArray(x)) {
    // Codes are (N,), (1, N) or (1, A, N): anything deeper is not codes (and must not blow the stack).
    if (shape.length >= 4) return null;
    shape.push(x.length);
    x = x[0];
  }
  if (!shape.length || shape.includes(0)) return null;
  const data = (v as unknown[]).flat(shape.length - 1) as unknown[];
  if (data.length !== shape.reduce((a, b) => a * b, 1) || data.some((d) => typeof d !== 'number')) return null;
  return { shape, data: data as number[] };
}

interface Picked {
  data: ArrayLike<number | bigint>;
  offset: number;
  length: number;
  /** Per-image shape without the augmentation axis. */
  shape: number[];
  augmentations: number | null;
}

/**
 * One image's array: (N,), (1, N), (A, N) or (1, A, N). Several rows are augmentations:
 * one is picked with augIndex, never silently.
 */
function pickImage(
  shape: number[],
  data: ArrayLike<number | bigint>,
  where: string,
  augIndex: number | undefined,
): Picked {
  const n = shape[shape.length - 1];
  let a = 1;
  if (shape.length === 2) a = shape[0];
  else if (shape.length === 3 && shape[0] === 1) a = shape[1];
  else if (shape.length !== 1)
    throw inputError(
      `${where}: shape (${shape.join(', ')}) is not one image's codes: expected (N,), (1, N) or (1, A, N)`,
    );
  return {
    ...pickAugmentation(a, n, 0, data, where, augIndex, shape.length > 1),
    shape: shape.length === 1 ? [n] : [1, n],
  };
}

function pickAugmentation(
  a: number,
  n: number,
  base: number,
  data: ArrayLike<number | bigint>,
  where: string,
  augIndex: number | undefined,
  hasAxis: boolean,
): Omit<Picked, 'shape'> {
  if (a > 1 && augIndex === undefined)
    throw usageError(
      msg`${where}: holds ${a} augmentations of each image; choose one with ${opt('augIndex', `0..${a - 1}`)}`,
    );
  const k = augIndex ?? 0;
  if (k >= a)
    throw usageError(
      msg`${opt('augIndex', k)} is out of range: ${where} holds ${a} augmentation${a === 1 ? '' : 's'} per image`,
    );
  return { data, offset: base + k * n, length: n, augmentations: hasAxis && a > 1 ? a : null };
}

/** Copy one image's ids out, checking each. */
function checkedCodes(p: Picked, vocab: number, where: string, into?: Int32Array): Int32Array {
  const out = into ?? new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const raw = p.data[p.offset + i];
    const v = typeof raw === 'bigint' ? Number(raw) : raw;
    if (!Number.isInteger(v) || v < 0 || v >= vocab)
      throw inputError(`${where} position ${i}: code ${raw} is outside the external vocabulary [0, ${vocab})`);
    out[i] = v;
  }
  return out;
}

/** Integer codes of a type split can write back (int8 and uint64 are not). */
function checkDtype(arr: NpyArray, where: string): asserts arr is NpyArray & { dtype: NpyDtype } {
  if (!(INT_DTYPES as readonly string[]).includes(arr.dtype))
    throw inputError(`${where}: codes must be integers (${INT_DTYPES.join(', ')}), found ${arr.dtype}`);
}

export async function readExternalCodes(path: string, options: ExternalOptions): Promise<ExternalCodes> {
  const stat = await fs.stat(fsPath(path)).catch(() => null);
  if (!stat) throw usageError(`External codes ${path}: no such file or folder`);
  if (stat.isDirectory()) return readFolder(path, options);
  // A FIFO or device would block the read forever (issue 15.16): only regular files are opened.
  if (!stat.isFile()) throw inputError(`External codes ${path} is not a regular file`);
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') return readOneNpy(path, options);
  if (ext === '.json' || ext === '.jsonl') return readJson(path, options, ext === '.jsonl');
  throw usageError(`External codes ${path}: expected a .npy file, a folder of .npy files, or .json / .jsonl`);
}

async function readFolder(dir: string, options: ExternalOptions): Promise<ExternalCodes> {
  // Names as bytes: one that is not UTF-8 keeps them, escaped as batch records it (io/byte-names.ts, issue 15.9).
  const names = (await fs.readdir(fsPath(dir), { encoding: 'buffer' }))
    .map(decodeName)
    .filter((n) => extname(n).toLowerCase() === '.npy' && !n.startsWith('.'));
  if (!names.length) throw inputError(`External codes folder ${dir} holds no .npy files`);
  // A FIFO named *.npy would block the read forever (issue 15.16): refuse anything that is not
  // a regular file (symlinks are followed) before opening any of them.
  for (const n of names) {
    const st = await fs.stat(fsPath(join(dir, n))).catch(() => null);
    if (!st?.isFile())
      throw inputError(`External codes ${join(dir, n)} is not a regular file${st ? '' : ' (a broken link)'}`);
  }
  const stemOf = (n: string) => n.slice(0, -4);
  const numeric = options.numericOrder && names.every((n) => /^\d+$/.test(stemOf(n)));
  names.sort(numeric ? (a, b) => Number(stemOf(a)) - Number(stemOf(b)) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const first = await readNpy(join(dir, names[0]));
  const firstWhere = join(dir, names[0]);
  checkDtype(first, firstWhere);
  const ref = pickImage(first.shape, first.data as ArrayLike<number | bigint>, firstWhere, options.augIndex);
  const entry = (i: number): ExternalEntry => {
    const name = names[i];
    const file = join(dir, name);
    return {
      key: stemOf(name),
      label: file,
      load: async () => {
        const arr = await readNpy(file);
        checkDtype(arr, file);
        if (arr.dtype !== first.dtype || arr.shape.join() !== first.shape.join()) {
          throw inputError(
            `${file}: ${arr.dtype} (${arr.shape.join(', ')}) differs from ${firstWhere}: ${first.dtype} ` +
              `(${first.shape.join(', ')}); all files must match`,
          );
        }
        return checkedCodes(
          pickImage(arr.shape, arr.data as ArrayLike<number | bigint>, file, options.augIndex),
          options.vocabSize,
          file,
        );
      },
    };
  };
  return {
    path: dir,
    keyed: true,
    count: names.length,
    entry,
    close: async () => undefined,
    tokensPerImage: ref.length,
    npy: { shape: ref.shape, dtype: first.dtype },
    augmentations: ref.augmentations,
  };
}

async function readOneNpy(path: string, options: ExternalOptions): Promise<ExternalCodes> {
  const rows = await openNpyRows(path);
  try {
    const dtype = rows.dtype;
    if (!(INT_DTYPES as readonly string[]).includes(dtype))
      throw inputError(`${path}: codes must be integers (${INT_DTYPES.join(', ')}), found ${dtype}`);
    const s = rows.shape;
    if (s.length === 1 || (s.length === 2 && s[0] === 1) || (s.length === 3 && s[0] === 1)) {
      // One image's file.
      const data = await rows.read(
        0,
        s.reduce((x, y) => x * y, 1),
      );
      const p = pickImage(s, data as ArrayLike<number | bigint>, path, options.augIndex);
      await rows.close();
      return {
        path,
        keyed: false,
        count: 1,
        entry: () => ({ label: path, load: async () => checkedCodes(p, options.vocabSize, path) }),
        close: async () => undefined,
        tokensPerImage: p.length,
        npy: { shape: p.shape, dtype: dtype as NpyDtype },
        augmentations: p.augmentations,
      };
    }
    if (s.length !== 2 && s.length !== 3)
      throw inputError(`${path}: shape (${s.join(', ')}) is not codes of images: expected (M, N) or (M, A, N)`);
    const n = s[s.length - 1];
    const a = s.length === 3 ? s[1] : 1;
    // Checks --aug-index once, against the first row's shape (every row has the same).
    const probe = pickAugmentation(a, n, 0, [], `${path} row 0`, options.augIndex, s.length === 3);
    // Rows are read in blocks (records usually come in row order): one read per BLOCK rows,
    // and the next block is read while this one is used.
    const BLOCK = Math.max(1, Math.floor((4 << 20) / (a * n * 8)));
    type Block = { first: number; data: ArrayLike<number | bigint> };
    const readBlock = async (first: number): Promise<Block> => ({
      first,
      data: (await rows.read(first * a * n, Math.min(BLOCK, s[0] - first) * a * n)) as ArrayLike<number | bigint>,
    });
    let cached: Block | undefined;
    let ahead: { first: number; block: Promise<Block> } | undefined;
    const fetchBlock = async (row: number): Promise<Block> => {
      const first = row - (row % BLOCK);
      const block = ahead?.first === first ? ahead.block : readBlock(first);
      ahead = undefined;
      cached = await block;
      if (first + BLOCK < s[0]) {
        ahead = { first: first + BLOCK, block: readBlock(first + BLOCK) };
        ahead.block.catch(() => undefined); // a failed read ahead is reported when (if) its rows are loaded
      }
      return cached;
    };
    const scratch = new Int32Array(n); // one row at a time: no allocation per row
    const rowCodes = (block: Block, row: number, where: string): Int32Array =>
      checkedCodes(
        {
          data: block.data,
          offset: (row - block.first) * a * n + probe.offset,
          length: n,
          shape: [n],
          augmentations: null,
        },
        options.vocabSize,
        where,
        scratch,
      );
    const entry = (row: number): ExternalEntry => {
      const where = `${path} row ${row}`;
      return {
        label: where,
        load: () =>
          cached && row >= cached.first && row < cached.first + BLOCK
            ? rowCodes(cached, row, where)
            : fetchBlock(row).then((block) => rowCodes(block, row, where)),
      };
    };
    return {
      path,
      keyed: false,
      count: s[0],
      entry,
      close: () => rows.close(),
      tokensPerImage: n,
      npy: { shape: [n], dtype: dtype as NpyDtype },
      augmentations: probe.augmentations,
    };
  } catch (err) {
    await rows.close().catch(() => undefined);
    throw err;
  }
}

const KEY_FIELDS = ['source', 'id', 'name', 'key'];
const CODE_FIELDS = ['codes', 'tokens', 'ids'];

async function readJson(path: string, options: ExternalOptions, jsonl: boolean): Promise<ExternalCodes> {
  const text = await readText(path, 'external codes');
  let items: { value: unknown; where: string; key?: string }[];
  if (jsonl) {
    items = [];
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      const where = `${path} line ${i + 1}`;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (err) {
        throw inputError(`${where} is not valid JSON: ${(err as Error).message}`, err);
      }
      if (Array.isArray(v)) items.push({ value: v, where });
      else if (v && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        const keyField = KEY_FIELDS.find((f) => typeof o[f] === 'string');
        const codeField = CODE_FIELDS.find((f) => Array.isArray(o[f]));
        if (!keyField || !codeField)
          throw inputError(`${where}: expected an array of codes, or an object with "source" and "codes"`);
        items.push({ value: o[codeField], where, key: stemOf(o[keyField] as string) });
      } else throw inputError(`${where}: expected an array of codes, or an object with "source" and "codes"`);
    });
  } else {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw inputError(`${path} is not valid JSON: ${(err as Error).message}`, err);
    }
    if (Array.isArray(v)) {
      const all = nested(v);
      // A flat array is one image; otherwise the first axis runs over images.
      items =
        all && all.shape.length === 1
          ? [{ value: v, where: path }]
          : v.map((x, i) => ({ value: x, where: `${path} [${i}]` }));
    } else if (v && typeof v === 'object') {
      items = Object.entries(v as Record<string, unknown>).map(([k, x]) => ({
        value: x,
        where: `${path} "${k}"`,
        key: stemOf(k),
      }));
    } else throw inputError(`${path}: expected an array of per-image code arrays, or an object { name: codes }`);
  }
  if (!items.length) throw inputError(`${path} holds no codes`);
  const keyed = items.some((it) => it.key !== undefined);
  if (keyed && items.some((it) => it.key === undefined))
    throw inputError(`${path}: mixes keyed objects and bare arrays; use one or the other`);

  let ref: Picked | undefined;
  let refShape = '';
  const entries: ExternalEntry[] = items.map((it) => {
    const arr = nested(it.value);
    if (!arr) throw inputError(`${it.where}: expected a (nested) array of integers`);
    const p = pickImage(arr.shape, arr.data, it.where, options.augIndex);
    if (!ref) {
      ref = p;
      refShape = arr.shape.join();
    } else if (arr.shape.join() !== refShape) {
      throw inputError(
        `${it.where}: shape (${arr.shape.join(', ')}) differs from the first entry's (${refShape.replace(/,/g, ', ')})`,
      );
    }
    return { key: it.key, label: it.where, load: async () => checkedCodes(p, options.vocabSize, it.where) };
  });
  return {
    path,
    keyed,
    count: entries.length,
    entry: (i) => entries[i],
    close: async () => undefined,
    tokensPerImage: ref!.length,
    npy: { shape: ref!.shape, dtype: 'int64' },
    augmentations: ref!.augmentations,
  };
}

/** "photos/cat.jpg" -> "cat": the name records and external files are matched by. */
export function stemOf(path: string): string {
  const name = basename(path.replace(/\\/g, '/'));
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}
