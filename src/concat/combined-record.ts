/**
 * One image's combined sequence(s), one JSONL line each:
 *   {"format":"styled-vq-combined","version":1,"source":"photos/cat.jpg",
 *    "external_source":"codes/cat.npy","tokens":[...]}            (shared layout)
 *   {..., "styled":[...], "external":[...]}                        (separate layout)
 * split also reads what a generator writes: a bare array of ids (shared), a pair of
 * arrays (separate), or an object with the sequence fields and optionally "source".
 */
import { inputError } from '../errors';
import { assemble, type Layout } from './layout';

export const COMBINED_FORMAT = 'styled-vq-combined';
export const COMBINED_VERSION = 1;

export function makeCombined(
  layout: Layout,
  fields: { source: string; externalSource: string; styled: ArrayLike<number>; external: ArrayLike<number> },
): Record<string, unknown> {
  return {
    format: COMBINED_FORMAT,
    version: COMBINED_VERSION,
    source: fields.source,
    external_source: fields.externalSource,
    ...assemble(layout, fields.styled, fields.external),
  };
}

/** Bytes per block handed to the sink. */
const BLOCK_BYTES = 1 << 20;

/** One sequence of the layout, resolved once: its field name and what fills it, in order. */
interface SequencePlan {
  /** `,"name":[` */
  label: Buffer;
  /** Per part: the input it copies (with the offset added), or a special id. */
  parts: ({ codes: 'styled' | 'external'; offset: number } | { id: number })[];
}

/**
 * Writes combined lines as bytes, the same bytes as `JSON.stringify(makeCombined(...)) +
 * "\n"`, without the intermediate object, arrays and number-to-string conversions: concat
 * writes millions of lines, and those made up most of its time. Ids are copied from a
 * table of their decimal digits; full blocks go to `sink`.
 */
export class CombinedLineEncoder {
  private buf: Buffer = Buffer.allocUnsafe(BLOCK_BYTES);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private pos = 0;
  /**
   * Blocks whose writes have finished, for reuse: a fresh megabyte per block cost page
   * faults and made V8 run full GCs (external memory pressure).
   */
  private spare: Buffer[] = [];
  /** Id v's decimal digits and a comma, as two little-endian words (8 bytes, written at once). */
  private readonly low: Uint32Array;
  private readonly high: Uint32Array;
  /** Bytes of digits + comma of id v; 0 where v takes the general path. */
  private readonly lengths: Uint8Array;
  private readonly plan: SequencePlan[];
  /** `{"format":"styled-vq-combined","version":1,"source":` */
  private readonly head = Buffer.from(
    `{"format":${JSON.stringify(COMBINED_FORMAT)},"version":${COMBINED_VERSION},"source":`,
  );
  private readonly externalLabel = Buffer.from(',"external_source":');
  private inflight: Promise<void> = Promise.resolve();
  /** Most bytes a line takes apart from its two names. */
  private readonly fixedBytes: number;

  constructor(
    layout: Layout,
    private readonly sink: (bytes: Uint8Array) => Promise<void>,
  ) {
    const maxId = Math.max(...Object.values(layout.sequences).map((q) => q.vocab_size));
    this.low = new Uint32Array(maxId);
    this.high = new Uint32Array(maxId);
    this.lengths = new Uint8Array(maxId);
    const bytes = Buffer.alloc(8);
    for (let v = 0; v < maxId; v++) {
      const t = `${v},`;
      if (t.length > 8) break; // ids of 8+ digits take the general path
      bytes.fill(0);
      bytes.write(t, 'latin1');
      this.low[v] = bytes.readUInt32LE(0);
      this.high[v] = bytes.readUInt32LE(4);
      this.lengths[v] = t.length;
    }
    this.plan = Object.entries(layout.sequences).map(([name, seq]) => ({
      label: Buffer.from(`,${JSON.stringify(name)}:[`),
      parts: seq.parts.map((p) =>
        p === 'styled' || p === 'external' ? { codes: p, offset: seq.offsets[p]! } : { id: seq.special[p]! },
      ),
    }));
    // 8 bytes per id (the words may overrun by up to 7), the field names, "}\n".
    this.fixedBytes =
      this.head.length +
      this.externalLabel.length +
      Object.values(layout.sequences).reduce((n, q) => n + 40 + q.length * 8, 0) +
      8;
  }

  /**
   * Append one line. Returns a promise only when a full block went to the sink (await it
   * then): most calls need no await at all, which matters at a million lines.
   */
  add(fields: {
    source: string;
    externalSource: string;
    styled: ArrayLike<number>;
    external: ArrayLike<number>;
  }): Promise<void> | undefined {
    const source = JSON.stringify(fields.source);
    const externalSource = JSON.stringify(fields.externalSource);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const need = (source.length + externalSource.length) * 3 + this.fixedBytes;
    if (this.pos + need > this.buf.length) {
      const block = this.take();
      if (need > this.buf.length) {
        this.buf = Buffer.allocUnsafe(need);
        this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
      }
      this.write(source, externalSource, fields);
      return this.handOver(block);
    }
    this.write(source, externalSource, fields);
    return undefined;
  }

  private write(
    source: string,
    externalSource: string,
    fields: { styled: ArrayLike<number>; external: ArrayLike<number> },
  ): void {
    const buf = this.buf;
    let o = put(buf, this.pos, this.head);
    o += buf.write(source, o);
    o = put(buf, o, this.externalLabel);
    o += buf.write(externalSource, o);
    for (const seq of this.plan) {
      const start = o;
      o = put(buf, o, seq.label);
      for (const part of seq.parts) {
        if ('id' in part) o = this.putIds([part.id], 0, o);
        else o = this.putIds(part.codes === 'styled' ? fields.styled : fields.external, part.offset, o);
        if (o < 0) break;
      }
      if (o < 0) {
        // An id outside the table (never from checked inputs): the slow, general path.
        o = put(buf, start, seq.label);
        const values: number[] = [];
        for (const part of seq.parts) {
          if ('id' in part) values.push(part.id);
          else for (const c of Array.from(fields[part.codes])) values.push(c + part.offset);
        }
        o += buf.write(`${values.join(',')},`, o, 'latin1');
      }
      buf[o - 1] = 0x5d; // ] in place of the last comma
    }
    buf[o++] = 0x7d; // }
    buf[o++] = 0x0a; // \n
    this.pos = o;
  }

  /** Ids (codes + offset) with a comma after each, from `o`; -1 when one is not in the table. */
  private putIds(codes: ArrayLike<number>, offset: number, o: number): number {
    const { view, low, high, lengths } = this;
    for (let i = 0; i < codes.length; i++) {
      const v = codes[i] + offset;
      const n = lengths[v]; // undefined for anything but an integer in the table
      if (!(n > 0)) return -1;
      view.setUint32(o, low[v], true);
      view.setUint32(o + 4, high[v], true);
      o += n;
    }
    return o;
  }

  /**
   * Start writing `block` once the previous block is written, and return the previous
   * block's write: the caller fills the next block while this one goes to disk, with at
   * most one write in flight.
   */
  private handOver(block: Buffer): Promise<void> {
    const previous = this.inflight;
    this.inflight = previous.then(async () => {
      await this.sink(block);
      if (block.buffer.byteLength === BLOCK_BYTES && this.spare.length < 2)
        this.spare.push(Buffer.from(block.buffer, 0, BLOCK_BYTES));
    });
    this.inflight.catch(() => undefined); // reported through the next add() or flush()
    return previous;
  }

  /** Hand the buffered lines to the sink and wait until everything is written. */
  async flush(): Promise<void> {
    if (this.pos) this.handOver(this.take()).catch(() => undefined);
    await this.inflight;
  }

  /** The buffered lines, leaving another buffer (the sink keeps the old one: no copy). */
  private take(): Buffer {
    const block = this.buf.subarray(0, this.pos);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(BLOCK_BYTES);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.pos = 0;
    return block;
  }
}

/** Copy small constant bytes (a loop beats Buffer#copy's call overhead at this size). */
function put(buf: Buffer, o: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) buf[o + i] = bytes[i];
  return o + bytes.length;
}

export interface Sequences {
  source?: string;
  externalSource?: string;
  /** Sequence name -> ids. */
  fields: Record<string, number[]>;
}

const isIdArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/** A parsed line (or array element) -> its sequences, by the layout's names. */
export function readSequences(raw: unknown, layout: Layout, where: string): Sequences {
  const names = Object.keys(layout.sequences);
  if (isIdArray(raw)) {
    if (names.length !== 1)
      throw inputError(
        `${where}: the ${layout.layout} layout has ${names.length} sequences (${names.join(', ')}); give them as [[...], [...]] or {${names.map((n) => `"${n}": [...]`).join(', ')}}`,
      );
    return { fields: { [names[0]]: raw } };
  }
  if (Array.isArray(raw) && raw.length === names.length && raw.every(isIdArray)) {
    return { fields: Object.fromEntries(names.map((n, i) => [n, raw[i] as number[]])) };
  }
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const o = raw as Record<string, unknown>;
    if (o.format !== undefined && o.format !== COMBINED_FORMAT)
      throw inputError(`${where}: format is ${JSON.stringify(o.format)}, expected "${COMBINED_FORMAT}"`);
    const fields: Record<string, number[]> = {};
    for (const n of names) {
      if (!isIdArray(o[n]))
        throw inputError(
          `${where}: "${n}" must be an array of ids (the ${layout.layout} layout's sequence${names.length > 1 ? `s are ${names.join(' and ')}` : ''})`,
        );
      fields[n] = o[n] as number[];
    }
    const source = typeof o.source === 'string' ? o.source : typeof o.id === 'string' ? o.id : undefined;
    const externalSource = typeof o.external_source === 'string' ? o.external_source : undefined;
    return { source, externalSource, fields };
  }
  throw inputError(
    `${where}: expected a combined record, an array of ids, or an object with ${names.map((n) => `"${n}"`).join(' and ')}`,
  );
}
