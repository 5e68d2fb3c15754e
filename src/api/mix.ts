/**
 * Attribute transfer by token ranges: the 36 tokens run from high-level to low-level
 * attributes, so the first K tokens of A with the rest of B keep A's layout and colour
 * with B's detail (for a model trained with prefix dropout). Decoding needs no prefix
 * fill: every position holds a real token.
 */
import type { Model } from '../model/model';
import { inputError, usageError, msg, opt } from '../errors';
import { invalidParameter } from '../util/checks';
import { type BatchOptions, decodeTokens, type RgbImage } from './decode';
import { checkPrefixLength } from './prefix';

/** Which positions come from A: `true` at position p takes A's token there, else B's. */
export type TokenMask = readonly boolean[];

/** The mask of "the first `keep` tokens from A, the rest from B". */
export function keepMask(model: Model, keep: number, name = 'keep'): boolean[] {
  checkPrefixLength(model, keep, name);
  return Array.from({ length: model.numTokens }, (_, p) => p < keep);
}

/**
 * Positions as text, "0-7,12" (inclusive ranges and single positions, 0-based), into the
 * set of positions they name; `name` is the option field for messages.
 */
export function parsePositions(text: string, numTokens: number, name = 'positions'): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const a = m ? Number(m[1]) : NaN;
    const b = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || a > b || b >= numTokens)
      throw invalidParameter(name, `positions or ranges within 0-${numTokens - 1} like "0-7,12"`, text);
    for (let p = a; p <= b; p++) out.add(p);
  }
  return out;
}

/**
 * The mask from explicit ranges: `fromA` and/or `fromB` (each "0-7"-style text); when only
 * one is given the other side takes the remaining positions; when both are given they must
 * cover every position exactly once.
 */
export function rangeMask(model: Model, fromA?: string, fromB?: string): boolean[] {
  const t = model.numTokens;
  if (fromA === undefined && fromB === undefined)
    throw invalidParameter('fromA', 'positions like "0-7" (or fromB)', fromA);
  const a = fromA !== undefined ? parsePositions(fromA, t, 'fromA') : undefined;
  const b = fromB !== undefined ? parsePositions(fromB, t, 'fromB') : undefined;
  if (a && b) {
    const both = [...a].filter((p) => b.has(p));
    const missing = Array.from({ length: t }, (_, p) => p).filter((p) => !a.has(p) && !b.has(p));
    const why = both.length
      ? `both name ${both.join(',')}`
      : missing.length
        ? `leave ${missing.join(',')} unnamed`
        : '';
    if (why)
      throw usageError(
        msg`${opt('fromA')} and ${opt('fromB')} ${why}: together they must name each position 0-${t - 1} once`,
      );
  }
  return Array.from({ length: t }, (_, p) => (a ? a.has(p) : !b!.has(p)));
}

/** A's tokens where the mask is true, B's elsewhere. */
export function mixTokens(a: readonly number[], b: readonly number[], mask: TokenMask): number[] {
  if (a.length !== mask.length || b.length !== mask.length) {
    throw inputError(`Expected ${mask.length} tokens from A and B but received ${a.length} and ${b.length}`);
  }
  return mask.map((fromA, p) => (fromA ? a[p] : b[p]));
}

/** Decode A's tokens where the mask says so and B's elsewhere. */
export async function mix(
  model: Model,
  a: readonly number[],
  b: readonly number[],
  mask: TokenMask,
  options: BatchOptions = {},
): Promise<RgbImage> {
  const [image] = await decodeTokens(model, [mixTokens(a, b, mask)], options);
  return image;
}

/** The whole sweep K = 0..T (first K tokens from A): T+1 images, K = 0 is B, K = T is A. */
export async function mixSweep(
  model: Model,
  a: readonly number[],
  b: readonly number[],
  options: BatchOptions = {},
): Promise<RgbImage[]> {
  const rows = Array.from({ length: model.numTokens + 1 }, (_, k) => mixTokens(a, b, keepMask(model, k)));
  return decodeTokens(model, rows, options);
}
