/**
 * How 36 styled tokens and an external VQ-VAE's codes share sequences, recorded in a
 * layout file so that a sequence (ours, or a generator's) can be taken apart later.
 *
 * shared:   one sequence "tokens" in one vocabulary:
 *             [BOS] styled (ids 0..K-1) [SEP] external (ids K..K+V-1) [EOS]
 *           special ids follow both ranges: K+V, K+V+1, ... in the order BOS, SEP, EOS
 *           (only those asked for).
 * separate: two parallel sequences with their own vocabularies, for two-head models:
 *             "styled":   [BOS] styled (0..K-1) [EOS]     BOS = K, EOS = K+1
 *             "external": [BOS] external (0..V-1) [EOS]   BOS = V, EOS = V+1
 *
 * Each sequence is described the same way (its parts, offsets and special ids), so
 * assembling and taking apart are one piece of code for both layouts.
 */
import { promises as fs } from 'node:fs';
import { inputError, usageError, msg, opt } from '../errors';
import type { NpyDtype } from '../tokens/npy';
import type { ModelRef } from '../tokens/record';

/** The largest code each integer dtype holds (int64 holds any id a Number can be). */
const NPY_INT_MAX: Record<string, number> = {
  uint8: 255,
  int16: 32767,
  uint16: 65535,
  int32: 2 ** 31 - 1,
  uint32: 2 ** 32 - 1,
  int64: Number.MAX_SAFE_INTEGER,
};

export const LAYOUT_FORMAT = 'styled-vq-layout';
export const LAYOUT_VERSION = 1;

export type LayoutKind = 'shared' | 'separate';
export const LAYOUT_KINDS: readonly LayoutKind[] = ['shared', 'separate'];
export type Special = 'bos' | 'sep' | 'eos';
export type Part = Special | 'styled' | 'external';

export interface SequenceSpec {
  /** In order; a special part is one id, a code part is its tokens. */
  parts: Part[];
  /** Ids in a full sequence. */
  length: number;
  /** Ids used: codes plus special ids. */
  vocab_size: number;
  /** Added to the codes of each code part. */
  offsets: Partial<Record<'styled' | 'external', number>>;
  special: Partial<Record<Special, number>>;
}

export interface Layout {
  format: typeof LAYOUT_FORMAT;
  version: typeof LAYOUT_VERSION;
  layout: LayoutKind;
  styled: { model: ModelRef; vocab_size: number; tokens_per_image: number };
  external: {
    /** e.g. "llamagen-vq16": which decoder the codes are for. */
    tokenizer: string;
    vocab_size: number;
    tokens_per_image: number;
    /** Shape and dtype of the per-image .npy files the codes came from (split writes these back). */
    npy: { shape: number[]; dtype: NpyDtype };
    /** Which augmentation of (1, A, N) arrays was taken, when there were several. */
    aug_index: number | null;
  };
  /** shared: { tokens }; separate: { styled, external }. Record fields carry these names. */
  sequences: Record<string, SequenceSpec>;
}

export interface LayoutOptions {
  kind: LayoutKind;
  styled: Layout['styled'];
  external: Layout['external'];
  special: Partial<Record<Special, boolean>>;
}

function sequence(
  parts: Part[],
  sizes: { styled?: number; external?: number },
  lengths: { styled: number; external: number },
  offsets: SequenceSpec['offsets'],
): SequenceSpec {
  let next = (sizes.styled ?? 0) + (sizes.external ?? 0);
  const special: SequenceSpec['special'] = {};
  for (const s of ['bos', 'sep', 'eos'] as const) if (parts.includes(s)) special[s] = next++;
  const length = parts.reduce(
    (n, p) => n + (p === 'styled' ? lengths.styled : p === 'external' ? lengths.external : 1),
    0,
  );
  return { parts, length, vocab_size: next, offsets, special };
}

export function buildLayout(options: LayoutOptions): Layout {
  const { styled, external, special } = options;
  const K = styled.vocab_size;
  const V = external.vocab_size;
  const lengths = { styled: styled.tokens_per_image, external: external.tokens_per_image };
  let sequences: Layout['sequences'];
  if (options.kind === 'shared') {
    const parts: Part[] = [
      ...(special.bos ? ['bos' as const] : []),
      'styled',
      ...(special.sep ? ['sep' as const] : []),
      'external',
      ...(special.eos ? ['eos' as const] : []),
    ];
    sequences = { tokens: sequence(parts, { styled: K, external: V }, lengths, { styled: 0, external: K }) };
  } else {
    if (special.sep)
      throw usageError(
        msg`${opt('sep')} joins the two parts of a shared sequence; the separate layout has no separator (use ${opt('bos')}/${opt('eos')})`,
      );
    const around = (p: Part): Part[] => [
      ...(special.bos ? ['bos' as const] : []),
      p,
      ...(special.eos ? ['eos' as const] : []),
    ];
    sequences = {
      styled: sequence(around('styled'), { styled: K }, lengths, { styled: 0 }),
      external: sequence(around('external'), { external: V }, lengths, { external: 0 }),
    };
  }
  return { format: LAYOUT_FORMAT, version: LAYOUT_VERSION, layout: options.kind, styled, external, sequences };
}

/** One image's codes -> its sequences, by field name. */
export function assemble(
  layout: Layout,
  styled: ArrayLike<number>,
  external: ArrayLike<number>,
): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, seq] of Object.entries(layout.sequences)) {
    const ids: number[] = [];
    for (const p of seq.parts) {
      if (p === 'styled' || p === 'external') {
        const codes = p === 'styled' ? styled : external;
        const off = seq.offsets[p]!;
        for (let i = 0; i < codes.length; i++) ids.push(codes[i] + off);
      } else ids.push(seq.special[p]!);
    }
    out[name] = ids;
  }
  return out;
}

const article = (p: 'styled' | 'external') => (p === 'external' ? 'an' : 'a');

/** What an id is in a sequence, for messages. */
function describeId(seq: SequenceSpec, layout: Layout, id: number): string {
  for (const [s, v] of Object.entries(seq.special)) if (v === id) return `the ${s.toUpperCase()} id`;
  for (const p of ['styled', 'external'] as const) {
    const off = seq.offsets[p];
    if (off !== undefined && id >= off && id < off + layout[p].vocab_size) return `${article(p)} ${p} id`;
  }
  return `outside the vocabulary [0, ${seq.vocab_size})`;
}

/**
 * A sequence -> the codes it carries (offsets removed), checked id by id. A leading BOS and
 * a trailing EOS may be missing (generators often drop them); everything else must be
 * exactly where the layout puts it.
 */
export function disassemble(
  layout: Layout,
  name: string,
  ids: readonly number[],
  where: string,
): { styled?: number[]; external?: number[] } {
  const seq = layout.sequences[name];
  let parts = seq.parts;
  if (parts[0] === 'bos' && ids[0] !== seq.special.bos) parts = parts.slice(1);
  if (parts[parts.length - 1] === 'eos' && ids[ids.length - 1] !== seq.special.eos) parts = parts.slice(0, -1);
  const lengthOf = (p: Part) => (p === 'styled' || p === 'external' ? layout[p].tokens_per_image : 1);
  const expected = parts.reduce((n, p) => n + lengthOf(p), 0);
  const shape = seq.parts
    .map((p) => (p === 'styled' || p === 'external' ? `${layout[p].tokens_per_image} ${p}` : p.toUpperCase()))
    .join(' ');
  if (ids.length !== expected)
    throw inputError(
      `${where}: "${name}" has ${ids.length} ids; the layout expects ${expected} (${shape}; BOS/EOS may be left out)`,
    );
  const out: { styled?: number[]; external?: number[] } = {};
  let pos = 0;
  for (const p of parts) {
    if (p === 'styled' || p === 'external') {
      const off = seq.offsets[p]!;
      const size = layout[p].vocab_size;
      const codes: number[] = [];
      for (let i = 0; i < layout[p].tokens_per_image; i++, pos++) {
        const id = ids[pos];
        if (!Number.isInteger(id) || id < off || id >= off + size) {
          throw inputError(
            `${where}: "${name}" position ${pos}: id ${id} is not ${article(p)} ${p} id (expected [${off}, ` +
              `${off + size})); it is ${Number.isInteger(id) ? describeId(seq, layout, id) : 'not an integer'}`,
          );
        }
        codes.push(id - off);
      }
      out[p] = codes;
    } else {
      if (ids[pos] !== seq.special[p]) {
        throw inputError(
          `${where}: "${name}" position ${pos}: expected the ${p.toUpperCase()} id ${seq.special[p]}, found ` +
            `${ids[pos]} (${describeId(seq, layout, ids[pos])})`,
        );
      }
      pos++;
    }
  }
  return out;
}

/** JSON with object keys sorted: equal for equal content, whatever the key order. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_, x) =>
    isObject(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

const NPY_INT_DTYPES: readonly string[] = ['int64', 'int32', 'int16', 'uint8', 'uint16', 'uint32'];
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Check a parsed layout file; the sequences are rebuilt and must agree with what it says. */
export function parseLayout(raw: unknown, where: string): Layout {
  const fail = (what: string) => inputError(`${where}: ${what}`);
  if (!isObject(raw) || raw.format !== LAYOUT_FORMAT) throw fail(`not a styled-vq layout (format "${LAYOUT_FORMAT}")`);
  if (raw.version !== LAYOUT_VERSION)
    throw fail(`unsupported version ${JSON.stringify(raw.version)} (expected ${LAYOUT_VERSION})`);
  const l = raw as unknown as Layout;
  if (!LAYOUT_KINDS.includes(l.layout)) throw fail(`layout must be one of ${LAYOUT_KINDS.join(', ')}`);
  if (
    !isObject(l.styled) ||
    !isCount(l.styled.vocab_size) ||
    !isCount(l.styled.tokens_per_image) ||
    typeof l.styled.model?.fingerprint !== 'string'
  ) {
    throw fail('styled must have vocab_size, tokens_per_image and model { name, fingerprint }');
  }
  if (
    !isObject(l.external) ||
    !isCount(l.external.vocab_size) ||
    !isCount(l.external.tokens_per_image) ||
    !isObject(l.external.npy)
  ) {
    throw fail('external must have vocab_size, tokens_per_image and npy { shape, dtype }');
  }
  const npy = l.external.npy as { shape?: unknown; dtype?: unknown };
  if (!Array.isArray(npy.shape) || !npy.shape.length || npy.shape.length > 3 || !npy.shape.every(isCount)) {
    throw fail(
      `external.npy.shape must be a list of 1 to 3 positive integers, found ${JSON.stringify(npy.shape) ?? 'nothing'}`,
    );
  }
  const perImage = (npy.shape as number[]).reduce((a, b) => a * b, 1);
  if (perImage !== l.external.tokens_per_image)
    throw fail(
      `external.npy.shape ${JSON.stringify(npy.shape)} holds ${perImage} codes, but tokens_per_image is ` +
        `${l.external.tokens_per_image}`,
    );
  if (typeof npy.dtype !== 'string' || !NPY_INT_DTYPES.includes(npy.dtype))
    throw fail(
      `external.npy.dtype must be one of ${NPY_INT_DTYPES.join(', ')}, found ${JSON.stringify(npy.dtype) ?? 'nothing'}`,
    );
  // A dtype too narrow for the vocabulary would truncate codes modulo its range (issue 15.6).
  const largest = NPY_INT_MAX[npy.dtype as string];
  if (largest !== undefined && l.external.vocab_size - 1 > largest) {
    throw fail(
      `external.npy.dtype ${npy.dtype} holds codes up to ${largest}, but vocab_size is ${l.external.vocab_size}; ` +
        `refusing to narrow codes`,
    );
  }
  if (
    l.external.aug_index !== null &&
    l.external.aug_index !== undefined &&
    !(Number.isInteger(l.external.aug_index) && l.external.aug_index >= 0)
  ) {
    throw fail('external.aug_index must be null or a non-negative integer');
  }
  if (!isObject(l.sequences) || !Object.keys(l.sequences).length) throw fail('sequences missing');
  for (const [name, seq] of Object.entries(l.sequences)) {
    if (!isObject(seq) || !Array.isArray(seq.parts) || !isObject(seq.offsets) || !isObject(seq.special ?? {}))
      throw fail(`sequences.${name} must have parts, offsets and special`);
  }
  const special: Partial<Record<Special, boolean>> = {};
  for (const seq of Object.values(l.sequences))
    for (const s of Object.keys(seq.special ?? {})) special[s as Special] = true;
  const rebuilt = buildLayout({ kind: l.layout, styled: l.styled, external: l.external, special });
  if (canonicalJson(rebuilt.sequences) !== canonicalJson(l.sequences)) {
    throw fail('sequences disagree with the vocabulary sizes and special ids (was the file edited?)');
  }
  return l;
}

export async function readLayout(path: string): Promise<Layout> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    throw inputError(
      `Cannot read layout ${path}: ` +
        `${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      err,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw inputError(`${path} is not valid JSON: ${(err as Error).message}`, err);
  }
  return parseLayout(raw, path);
}
