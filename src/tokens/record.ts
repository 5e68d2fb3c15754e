/**
 * Token records (docs/model-package.md, "Token files"): one per image, carrying the model
 * fingerprint so tokens are never decoded with the wrong model.
 */
import { inputError, msg, opt, type MessageText } from '../errors';
import type { Preprocessing } from '../model/manifest';

export const TOKENS_FORMAT = 'styled-vq-tokens';
export const TOKENS_VERSION = 1;

export interface ModelRef {
  name: string;
  fingerprint: string;
}

export interface TokenRecord {
  format: typeof TOKENS_FORMAT;
  version: typeof TOKENS_VERSION;
  model: ModelRef;
  source: string;
  /** [width, height] of the input before preprocessing; absent when not made from an image. */
  original_size?: [number, number];
  preprocessing?: Preprocessing;
  tokens: number[];
  /** Continuous latents, [num_tokens][latent_dim], only when asked for. */
  latents?: number[][];
}

/** Stands in a batch file for an input that failed, so no input is lost track of. */
export interface ErrorRecord {
  format: typeof TOKENS_FORMAT;
  version: typeof TOKENS_VERSION;
  model: ModelRef;
  source: string;
  error: string;
}

export type AnyRecord = TokenRecord | ErrorRecord;

export const isErrorRecord = (r: AnyRecord): r is ErrorRecord => typeof (r as ErrorRecord).error === 'string';

/** What a record is checked against: the few numbers of a loaded model. */
export interface ModelShape {
  name: string;
  fingerprint: string;
  /** Every fingerprint of the package (fp32 and its variants), when it has several: all decode alike. */
  fingerprints?: readonly string[];
  /** The dtype whose graphs run (the CLI's --dtype), and which of the package's dtypes made `fingerprint`. */
  dtype?: string;
  dtypeOf?(fingerprint: string): string | undefined;
  numTokens: number;
  codebookSize: number;
  latentDim: number;
}

export function makeRecord(
  model: ModelRef & { preprocessing?: Preprocessing },
  fields: {
    source: string;
    tokens: ArrayLike<number>;
    originalSize?: [number, number];
    latents?: number[][];
    /** How alpha was handled when it differs from the manifest's (alphaText: "background:R,G,B"). */
    alpha?: string;
  },
): TokenRecord {
  const rec: TokenRecord = {
    format: TOKENS_FORMAT,
    version: TOKENS_VERSION,
    model: { name: model.name, fingerprint: model.fingerprint },
    source: fields.source,
  } as TokenRecord;
  if (fields.originalSize) rec.original_size = fields.originalSize;
  // The manifest's preprocessing, with what this run did to alpha (issue 15.8: it changes the tokens).
  if (model.preprocessing)
    rec.preprocessing =
      fields.alpha && fields.alpha !== model.preprocessing.alpha
        ? { ...model.preprocessing, alpha: fields.alpha }
        : model.preprocessing;
  rec.tokens = Array.from(fields.tokens);
  if (fields.latents) rec.latents = fields.latents;
  return rec;
}

export function makeErrorRecord(model: ModelRef, source: string, error: string): ErrorRecord {
  return {
    format: TOKENS_FORMAT,
    version: TOKENS_VERSION,
    model: { name: model.name, fingerprint: model.fingerprint },
    source,
    error,
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Structural check of one parsed record (any model). `where` names it in messages, e.g.
 * "tokens.jsonl line 3".
 */
export function parseRecord(raw: unknown, where: MessageText): AnyRecord {
  const fail = (what: string) => inputError(msg`${where}: ${what}`);
  if (!isObject(raw)) throw fail('expected a JSON object (a styled-vq token record)');
  if (raw.format !== TOKENS_FORMAT) throw fail(`format is ${JSON.stringify(raw.format)}, expected "${TOKENS_FORMAT}"`);
  if (raw.version !== TOKENS_VERSION)
    throw fail(`unsupported version ${JSON.stringify(raw.version)} (expected ${TOKENS_VERSION})`);
  const model = raw.model;
  if (!isObject(model) || typeof model.fingerprint !== 'string' || typeof model.name !== 'string') {
    throw fail('model must be an object with "name" and "fingerprint"');
  }
  if (typeof raw.source !== 'string') throw fail('source must be a string');
  if (typeof raw.error === 'string') return raw as unknown as ErrorRecord;
  if (!Array.isArray(raw.tokens)) throw fail('tokens must be an array of integers');
  const bad = raw.tokens.findIndex((t) => typeof t !== 'number' || !Number.isInteger(t));
  if (bad >= 0) throw fail(`tokens[${bad}] is ${JSON.stringify(raw.tokens[bad])}, expected an integer`);
  if (raw.latents !== undefined) {
    if (
      !Array.isArray(raw.latents) ||
      raw.latents.some((row) => !Array.isArray(row) || row.some((x) => typeof x !== 'number'))
    ) {
      throw fail('latents must be an array of arrays of numbers');
    }
  }
  if (raw.original_size !== undefined) {
    const s = raw.original_size;
    if (!Array.isArray(s) || s.length !== 2 || s.some((x) => !Number.isInteger(x) || (x as number) < 1)) {
      throw fail('original_size must be [width, height]');
    }
  }
  return raw as unknown as TokenRecord;
}

export interface CheckOptions {
  /** Accept records made by another model (count and range are still checked). */
  force?: boolean;
  /** The record must carry latents (decode --latents). */
  needLatents?: boolean;
  /** The record must carry tokens (default true). */
  needTokens?: boolean;
}

/** Check a record against the model that is about to use it: fingerprint, count, range, latents. */
export function checkRecordForModel(
  rec: TokenRecord,
  model: ModelShape,
  where: MessageText,
  options: CheckOptions = {},
): void {
  const fail = (what: MessageText) => inputError(msg`${where}: ${what}`);
  const known = model.fingerprints ?? [model.fingerprint];
  if (!known.includes(rec.model.fingerprint) && !options.force) {
    throw fail(
      msg`made by model "${rec.model.name}" (fingerprint ${rec.model.fingerprint}), but the loaded model is "${model.name}" (fingerprint ${model.fingerprint}); use the matching ${opt('model')}, or ${opt('force', true)} to use it anyway`,
    );
  }
  if (options.needTokens !== false) {
    if (rec.tokens.length !== model.numTokens)
      throw fail(`expected ${model.numTokens} tokens, found ${rec.tokens.length}`);
    const k = model.codebookSize;
    const bad = rec.tokens.findIndex((t) => t < 0 || t >= k);
    if (bad >= 0) throw fail(`token ${rec.tokens[bad]} at position ${bad} is outside the codebook [0, ${k})`);
  }
  if (options.needLatents) {
    if (!rec.latents) throw fail(msg`has no latents (encode with ${opt('latents', true)} to store them)`);
    if (rec.latents.length !== model.numTokens || rec.latents.some((row) => row.length !== model.latentDim)) {
      throw fail(`latents must be ${model.numTokens} x ${model.latentDim}`);
    }
  }
}
