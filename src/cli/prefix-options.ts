/** Flags that name token prefix lengths (`explain --ks`, `evaluate --ks`, `decode --prefix`, `mix --keep`). */
import { usageError } from '../errors';
import type { Model } from '../model/model';

/** "1,2,4,36" -> [1, 2, 4, 36]: non-negative integers, no repeats (the range needs the model). */
export function parsePrefixList(flag: string, v: unknown): number[] {
  const text = String(Array.isArray(v) ? v[v.length - 1] : v).trim();
  const parts = text.split(',').map((p) => p.trim());
  if (!text || parts.some((p) => !/^\d+$/.test(p))) {
    throw usageError(`${flag} must be comma-separated token counts (e.g. ${flag} 1,2,4,8,16,36), got ${JSON.stringify(text)}`);
  }
  const ks = parts.map(Number);
  if (new Set(ks).size !== ks.length) throw usageError(`${flag} names a prefix length twice: ${text}`);
  return ks;
}

/** One prefix length: a non-negative integer (the range needs the model). */
export function parsePrefixLength(flag: string, v: unknown): number {
  const text = String(Array.isArray(v) ? v[v.length - 1] : v).trim();
  if (!/^\d+$/.test(text)) throw usageError(`${flag} must be a token count between 0 and the model's num_tokens (e.g. ${flag} 8), got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Prefix lengths against the loaded model: each in [0, num_tokens], named by the flag. */
export function checkPrefixFlag(flag: string, ks: readonly number[], model: Model): void {
  const bad = ks.find((k) => k > model.numTokens);
  if (bad !== undefined) throw usageError(`${flag} ${bad} is out of range: model "${model.name}" has ${model.numTokens} tokens (0..${model.numTokens})`);
}
