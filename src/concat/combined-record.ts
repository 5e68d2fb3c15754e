/**
 * One image's combined sequence(s), one JSONL line each:
 *   {"format":"styled-vq-combined","version":1,"source":"photos/cat.jpg",
 *    "external_source":"codes/cat.npy","tokens":[...]}            (shared layout)
 *   {..., "styled":[...], "external":[...]}                        (separate layout)
 * split also reads what a generator writes: a bare array of ids (shared), a pair of
 * arrays (separate), or an object with the sequence fields and optionally "source".
 */
import { inputError } from '../errors';
import { assemble, Layout } from './layout';

export const COMBINED_FORMAT = 'styled-vq-combined';
export const COMBINED_VERSION = 1;

export function makeCombined(layout: Layout, fields: { source: string; externalSource: string; styled: ArrayLike<number>; external: ArrayLike<number> }): Record<string, unknown> {
  return {
    format: COMBINED_FORMAT,
    version: COMBINED_VERSION,
    source: fields.source,
    external_source: fields.externalSource,
    ...assemble(layout, fields.styled, fields.external),
  };
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
    if (names.length !== 1) throw inputError(`${where}: the ${layout.layout} layout has ${names.length} sequences (${names.join(', ')}); give them as [[...], [...]] or {${names.map((n) => `"${n}": [...]`).join(', ')}}`);
    return { fields: { [names[0]]: raw } };
  }
  if (Array.isArray(raw) && raw.length === names.length && raw.every(isIdArray)) {
    return { fields: Object.fromEntries(names.map((n, i) => [n, raw[i] as number[]])) };
  }
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const o = raw as Record<string, unknown>;
    if (o.format !== undefined && o.format !== COMBINED_FORMAT) throw inputError(`${where}: format is ${JSON.stringify(o.format)}, expected "${COMBINED_FORMAT}"`);
    const fields: Record<string, number[]> = {};
    for (const n of names) {
      if (!isIdArray(o[n])) throw inputError(`${where}: "${n}" must be an array of ids (the ${layout.layout} layout's sequence${names.length > 1 ? 's are ' + names.join(' and ') : ''})`);
      fields[n] = o[n] as number[];
    }
    const source = typeof o.source === 'string' ? o.source : typeof o.id === 'string' ? o.id : undefined;
    const externalSource = typeof o.external_source === 'string' ? o.external_source : undefined;
    return { source, externalSource, fields };
  }
  throw inputError(`${where}: expected a combined record, an array of ids, or an object with ${names.map((n) => `"${n}"`).join(' and ')}`);
}
