/**
 * How concat pairs our records with external codes: by order (rows) or by file stem (keyed
 * sources). The pairing itself streams in run-concat.ts.
 */
export type MatchBy = 'order' | 'stem';
export const MATCH_MODES: readonly (MatchBy | 'auto')[] = ['auto', 'order', 'stem'];

/** First few names of a list, for messages. */
export function sample(names: readonly string[], n = 3): string {
  return names.slice(0, n).join(', ') + (names.length > n ? `, ... (${names.length} in all)` : '');
}
