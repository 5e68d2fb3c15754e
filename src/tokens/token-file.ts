/**
 * Reading and writing token files: `tokens.json` (one record, pretty) and `*.jsonl` (one
 * compact record per line). Writes are atomic.
 */
import { promises as fs } from 'node:fs';
import { extname } from 'node:path';
import { inputError } from '../errors';
import { writeFileAtomic } from '../util/atomic';
import { AnyRecord, parseRecord } from './record';

export interface LocatedRecord {
  record: AnyRecord;
  /** "tokens.json" or "tokens.jsonl line 3", for messages. */
  where: string;
}

export async function readText(path: string, what = 'file'): Promise<string> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw inputError(`Cannot read ${what} ${path}: ${why}`, err);
  }
}

/**
 * Parse token-file text: a single JSON record, a JSON array of records, or JSONL (one record
 * per non-empty line). `name` is used in messages.
 */
export function parseTokenText(text: string, name: string): LocatedRecord[] {
  const trimmed = text.trim();
  if (!trimmed) throw inputError(`${name} is empty (expected a styled-vq token record)`);
  const jsonl = extname(name).toLowerCase() === '.jsonl';
  if (!jsonl) {
    let whole: unknown;
    let parsed = false;
    try {
      whole = JSON.parse(trimmed);
      parsed = true;
    } catch (err) {
      // Not one JSON document: maybe JSONL under another name; if there is a single line, report the JSON error.
      if (!trimmed.includes('\n')) throw inputError(`${name} is not valid JSON: ${(err as Error).message}`, err);
    }
    if (parsed) {
      if (Array.isArray(whole)) return whole.map((r, i) => ({ record: parseRecord(r, `${name} [${i}]`), where: `${name} [${i}]` }));
      return [{ record: parseRecord(whole, name), where: name }];
    }
  }
  const out: LocatedRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const where = `${name} line ${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw inputError(`${where} is not valid JSON: ${(err as Error).message}`, err);
    }
    out.push({ record: parseRecord(raw, where), where });
  }
  return out;
}

export async function readTokenFile(path: string): Promise<LocatedRecord[]> {
  return parseTokenText(await readText(path, 'token file'), path);
}

/** Shortest decimal that reads back as the same float32 (9 significant digits always do). */
export function float32Text(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  for (let p = 6; p < 9; p++) {
    const n = Number(v.toPrecision(p));
    if (Math.fround(n) === v) return n;
  }
  return Number(v.toPrecision(9));
}

const isPrimitive = (v: unknown) => v === null || typeof v !== 'object';

/**
 * JSON with 2-space indentation where it helps reading: number arrays stay on one line,
 * a latents matrix gets one row per line, small objects stay inline.
 */
export function formatPretty(value: unknown, indent = ''): string {
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.every(isPrimitive)) return JSON.stringify(value).replace(/,/g, ', ');
    return `[\n${value.map((v) => inner + formatPretty(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    const compact = JSON.stringify(value);
    if (indent && compact.length <= 100) return compact.replace(/":/g, '": ').replace(/,"/g, ', "');
    if (!entries.length) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatPretty(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** One record as a pretty `tokens.json` document (with trailing newline). */
export function formatRecordJson(record: AnyRecord): string {
  return formatPretty(record) + '\n';
}

/** Records as JSONL: one compact line each. */
export function formatRecordsJsonl(records: readonly AnyRecord[]): string {
  return records.map((r) => JSON.stringify(r) + '\n').join('');
}

/** How a set of records is written: one record as a JSON document, else JSONL; .jsonl is always JSONL. */
export function formatTokenFile(records: readonly AnyRecord[], path?: string): string {
  const jsonl = records.length !== 1 || (path !== undefined && extname(path).toLowerCase() === '.jsonl');
  return jsonl ? formatRecordsJsonl(records) : formatRecordJson(records[0]);
}

export async function writeTokenFile(path: string, records: readonly AnyRecord[]): Promise<void> {
  await writeFileAtomic(path, formatTokenFile(records, path));
}
