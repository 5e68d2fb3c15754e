/** Flags that name token prefix lengths (`explain --ks`, `evaluate --ks`, `decode --prefix`, `mix --keep`). */
import { usageError } from '../errors';
import type { Model } from '../model/model';
import { invalidParameter } from '../util/checks';
import { cliMessage } from './flags';

/** A usage error in the CLI's words: "Expected <what> for --flag but received <value>". */
const bad = (field: string, what: string, value: unknown) =>
  usageError(cliMessage(invalidParameter(field, what, value)));

/** "1,2,4,36" -> [1, 2, 4, 36] for option `field`: non-negative integers, no repeats (the range needs the model). */
export function parsePrefixList(field: string, v: unknown): number[] {
  const text = String(Array.isArray(v) ? v[v.length - 1] : v).trim();
  const parts = text.split(',').map((p) => p.trim());
  if (!text || parts.some((p) => !/^\d+$/.test(p)))
    throw bad(field, 'comma-separated token counts like 1,2,4,8,16,36', text);
  const ks = parts.map(Number);
  if (new Set(ks).size !== ks.length) throw bad(field, 'token counts without repeats', text);
  return ks;
}

/** One prefix length for option `field`: a non-negative integer (the range needs the model). */
export function parsePrefixLength(field: string, v: unknown): number {
  const text = String(Array.isArray(v) ? v[v.length - 1] : v).trim();
  if (!/^\d+$/.test(text)) throw bad(field, "a token count between 0 and the model's num_tokens", text);
  return Number(text);
}

/** Prefix lengths of option `field` against the loaded model: each in [0, num_tokens]. */
export function checkPrefixFlag(field: string, ks: readonly number[], model: Model): void {
  const k = ks.find((x) => x > model.numTokens);
  if (k !== undefined)
    throw bad(
      field,
      `a token count between 0 and ${model.numTokens} (model "${model.name}" has ${model.numTokens} tokens)`,
      k,
    );
}
