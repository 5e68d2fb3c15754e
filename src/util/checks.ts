/**
 * One way to say "bad argument" (after sharp's lib/is.js): small predicates and one error
 * builder that names the parameter, what was expected and what came.
 */
import { msg, opt, usageError, type StyledVqError } from '../errors';

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `"${value}" of type string`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `${String(value)} of type ${typeof value}`;
}

/**
 * "Expected positive integer for batchSize but received -3 of type number". `name` is the
 * option field; the CLI shows its flag (src/cli/flags.ts).
 */
export function invalidParameter(name: string, expected: string, value: unknown): StyledVqError {
  return usageError(msg`Expected ${expected} for ${opt(name)} but received ${describeValue(value)}`);
}

export function nonNegativeInteger(name: string, value: unknown): number {
  if (!isInteger(value) || value < 0) throw invalidParameter(name, 'non-negative integer', value);
  return value;
}

export const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

export function positiveInteger(name: string, value: unknown): number {
  if (!isInteger(value) || value < 1) throw invalidParameter(name, 'positive integer', value);
  return value;
}

export function inArray<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidParameter(name, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}
