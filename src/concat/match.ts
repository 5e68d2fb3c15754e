/**
 * Pairing our records with external codes, by order (rows) or by file stem (keyed
 * sources), with an account of everything that did not pair: nothing is dropped silently.
 */
import { inputError, usageError } from '../errors';
import { ExternalCodes, ExternalEntry, stemOf } from './external-codes';
import type { StyledEntry, StyledTokens } from './styled-input';

export type MatchBy = 'order' | 'stem';
export const MATCH_MODES: readonly (MatchBy | 'auto')[] = ['auto', 'order', 'stem'];

export interface Pair {
  styled: StyledEntry;
  external: ExternalEntry;
}

export interface MatchResult {
  by: MatchBy;
  pairs: Pair[];
  /** Our inputs that failed to tokenize (error records): nothing to concatenate. */
  failed: StyledEntry[];
  /** Our records with no external codes. */
  unmatchedStyled: StyledEntry[];
  /** External codes with no record of ours. */
  unmatchedExternal: ExternalEntry[];
}

/** First few names of a list, for messages. */
export function sample(names: readonly string[], n = 3): string {
  return names.slice(0, n).join(', ') + (names.length > n ? `, ... (${names.length} in all)` : '');
}

function duplicates(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const k of keys) (seen.has(k) ? dup : seen).add(k);
  return [...dup];
}

export function matchCodes(styled: StyledTokens, external: ExternalCodes, mode: MatchBy | 'auto' = 'auto'): MatchResult {
  const by: MatchBy = mode === 'auto' ? (external.keyed ? 'stem' : 'order') : mode;
  if (by === 'stem' && !external.keyed) throw usageError(`${external.path} holds rows without names: it can only be matched by order (--match order)`);
  return by === 'order' ? byOrder(styled, external) : byStem(styled, external);
}

function byOrder(styled: StyledTokens, external: ExternalCodes): MatchResult {
  const a = styled.entries.length;
  const b = external.entries.length;
  if (a !== b) {
    throw inputError(
      `${styled.path} has ${a} records (failed inputs included) but ${external.path} has codes for ${b} images: ` +
        'matching by order needs the same count (match by file stem with a folder of .npy files or keyed JSON)',
    );
  }
  const result: MatchResult = { by: 'order', pairs: [], failed: [], unmatchedStyled: [], unmatchedExternal: [] };
  styled.entries.forEach((s, i) => (s.error !== undefined ? result.failed.push(s) : result.pairs.push({ styled: s, external: external.entries[i] })));
  return result;
}

function byStem(styled: StyledTokens, external: ExternalCodes): MatchResult {
  const ours = duplicates(styled.entries.map((s) => stemOf(s.source)));
  if (ours.length) throw inputError(`${styled.path}: several sources share the file stem ${sample(ours.map((d) => `"${d}"`))}; matching by stem would be ambiguous (use --match order)`);
  const theirs = duplicates(external.entries.map((e) => e.key!));
  if (theirs.length) throw inputError(`${external.path}: several entries share the name ${sample(theirs.map((d) => `"${d}"`))}`);
  const byKey = new Map(external.entries.map((e) => [e.key!, e]));
  const result: MatchResult = { by: 'stem', pairs: [], failed: [], unmatchedStyled: [], unmatchedExternal: [] };
  for (const s of styled.entries) {
    const key = stemOf(s.source);
    const e = byKey.get(key);
    byKey.delete(key);
    if (s.error !== undefined) result.failed.push(s);
    else if (e) result.pairs.push({ styled: s, external: e });
    else result.unmatchedStyled.push(s);
  }
  result.unmatchedExternal = [...byKey.values()];
  return result;
}
