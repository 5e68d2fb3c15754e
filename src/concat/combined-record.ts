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

/**
 * Writes combined lines as bytes, the same bytes as `JSON.stringify(makeCombined(...)) +
 * "\n"`, without the intermediate object, arrays and number-to-string conversions: concat
 * writes millions of lines, and those made up most of its time. Ids are copied from a
 * table of their decimal digits; full blocks go to `sink`.
 */
export class CombinedLineEncoder {
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  /** Id v's decimal digits and a comma, as two little-endian words (8 bytes, written at once). */
  private readonly low: Uint32Array;
  private readonly high: Uint32Array;
  /** Bytes of digits + comma of id v. */
  private readonly lengths: Uint8Array;
  private readonly maxId: number;
  private readonly names: Buffer[];
  private ids = new Int32Array(0);
  private inflight: Promise<void> = Promise.resolve();
  private readonly idBytes: number;
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);

  constructor(
    private readonly layout: Layout,
    private readonly sink: (bytes: Uint8Array) => Promise<void>,
  ) {
    this.maxId = Math.max(...Object.values(layout.sequences).map((q) => q.vocab_size));
    this.low = new Uint32Array(this.maxId);
    this.high = new Uint32Array(this.maxId);
    this.lengths = new Uint8Array(this.maxId);
    const bytes = Buffer.alloc(8);
    for (let v = 0; v < this.maxId; v++) {
      const t = `${v},`;
      if (t.length > 8) break; // ids of 8+ digits take the general path
      bytes.fill(0);
      bytes.write(t, 'latin1');
      this.low[v] = bytes.readUInt32LE(0);
      this.high[v] = bytes.readUInt32LE(4);
      this.lengths[v] = t.length;
    }
    this.names = Object.keys(layout.sequences).map((name) => Buffer.from(`,${JSON.stringify(name)}:[`));
    // 8 bytes per id (the words may overrun by up to 7) and room for the field names.
    this.idBytes = Object.values(layout.sequences).reduce((n, q) => n + 40 + q.length * 8, 0);
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
    const head = `{"format":"${COMBINED_FORMAT}","version":${COMBINED_VERSION},"source":${JSON.stringify(fields.source)},"external_source":${JSON.stringify(fields.externalSource)}`;
    const need = head.length * 3 + 2 + this.idBytes; // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (this.pos + need > this.buf.length) {
      const block = this.take();
      if (need > this.buf.length) {
        this.buf = Buffer.allocUnsafe(need);
        this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
      }
      this.write(head, fields);
      return this.handOver(block);
    }
    this.write(head, fields);
    return undefined;
  }

  private write(head: string, fields: { styled: ArrayLike<number>; external: ArrayLike<number> }): void {
    const buf = this.buf;
    const view = this.view;
    const { low, high, lengths, maxId } = this;
    let o = this.pos + buf.write(head, this.pos);
    let n = 0;
    for (const name in this.layout.sequences) {
      const seq = this.layout.sequences[name];
      const label = this.names[n++];
      label.copy(buf, o);
      o += label.length;
      // Gather the ids first (one monomorphic Int32Array loop below, whatever the inputs' array types).
      const ids = this.ids.length >= seq.length ? this.ids : (this.ids = new Int32Array(seq.length));
      let k = 0;
      let odd = false;
      for (const p of seq.parts) {
        if (p === 'styled' || p === 'external') {
          const codes = p === 'styled' ? fields.styled : fields.external;
          const off = seq.offsets[p]!;
          for (let i = 0; i < codes.length; i++) {
            const v = codes[i] + off;
            if (!(v >= 0 && v < maxId && v === Math.floor(v) && lengths[v])) odd = true;
            ids[k++] = v;
          }
        } else ids[k++] = seq.special[p]!;
      }
      if (odd) {
        // Not an id of this layout (never from checked inputs): the slow, general path.
        const values: number[] = [];
        for (const p of seq.parts) {
          if (p === 'styled' || p === 'external')
            for (const c of Array.from(p === 'styled' ? fields.styled : fields.external))
              values.push(c + seq.offsets[p]!);
          else values.push(seq.special[p]!);
        }
        o += buf.write(`${values.join(',')}]`, o, 'latin1');
      } else {
        for (let i = 0; i < k; i++) {
          const v = ids[i];
          view.setUint32(o, low[v], true);
          view.setUint32(o + 4, high[v], true);
          o += lengths[v];
        }
        buf[o - 1] = 0x5d; // ] in place of the last comma
      }
    }
    buf[o++] = 0x7d; // }
    buf[o++] = 0x0a; // \n
    this.pos = o;
  }

  /**
   * Start writing `block` once the previous block is written, and return the previous
   * block's write: the caller fills the next block while this one goes to disk, with at
   * most one write in flight.
   */
  private handOver(block: Buffer): Promise<void> {
    const previous = this.inflight;
    this.inflight = previous.then(() => this.sink(block));
    this.inflight.catch(() => undefined); // reported through the next add() or flush()
    return previous;
  }

  /** Hand the buffered lines to the sink and wait until everything is written. */
  async flush(): Promise<void> {
    if (this.pos) this.handOver(this.take()).catch(() => undefined);
    await this.inflight;
  }

  /** The buffered lines, leaving a fresh buffer (the sink keeps the old one: no copy). */
  private take(): Buffer {
    const block = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.pos = 0;
    return block;
  }
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
