/**
 * Reading and writing token files: `tokens.json` (one record, pretty) and `*.jsonl` (one
 * compact record per line). Writes are atomic.
 */
import { promises as fs } from 'node:fs';
import { extname } from 'node:path';
import { inputError } from '../errors';
import { writeFileAtomic } from '../io/atomic-write';
import { checkReadableFile, readStdin, STDIO } from '../io/stdio';
import { type ByteSource, bytesSource, fileSource, JsonSplitter, type JsonValueText } from './json-stream';
import { type AnyRecord, parseRecord } from './record';

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
 * Parse token-file text: JSON records (one, or a JSON array of them) one after another,
 * in any layout: JSONL, pretty documents concatenated, or a mix. `name` is used in messages.
 */
export function parseTokenText(text: string, name: string): LocatedRecord[] {
  if (!text.trim()) throw inputError(`${name} is empty (expected a styled-vq token record)`);
  const splitter = new JsonSplitter(name);
  const values = splitter.push(text);
  splitter.end();
  return values.flatMap((v) => locate(v, name));
}

function locate({ text, line, value }: JsonValueText, name: string): LocatedRecord[] {
  const where = `${name} line ${line}`;
  let raw: unknown = value;
  if (raw === undefined) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw inputError(`${where} is not valid JSON: ${(err as Error).message}`, err);
    }
  }
  if (Array.isArray(raw))
    return raw.map((r, i) => ({ record: parseRecord(r, `${where} [${i}]`), where: `${where} [${i}]` }));
  return [{ record: parseRecord(raw, where), where }];
}

export async function readTokenFile(path: string): Promise<LocatedRecord[]> {
  const out: LocatedRecord[] = [];
  for await (const r of streamRecords(await tokenSource(path))) out.push(r);
  if (!out.length) throw inputError(`${path === STDIO ? 'stdin' : path} is empty (expected styled-vq token records)`);
  return out;
}

/** Where token records come from: a file (streamed, re-readable) or `-` (stdin, read once). */
export async function tokenSource(path: string, what = 'token file'): Promise<ByteSource> {
  if (path === STDIO) return bytesSource(await readStdin(), 'stdin');
  await checkReadableFile(path, what);
  return fileSource(path);
}

/**
 * Records one at a time, memory flat: JSONL, pretty records concatenated, or JSON arrays
 * of records (each array is held while its records are yielded).
 */
export async function* streamRecords(source: ByteSource): AsyncGenerator<LocatedRecord> {
  for await (const batch of streamRecordBatches(source)) yield* batch;
}

/** The same records, a block of input (about 1 MiB) at a time: far fewer awaits for big files. */
export async function* streamRecordBatches(source: ByteSource): AsyncGenerator<LocatedRecord[]> {
  const splitter = new JsonSplitter(source.name);
  for await (const chunk of source.chunks()) {
    const values = splitter.push(chunk);
    if (values.length) yield values.flatMap((v) => locate(v, source.name));
  }
  splitter.end();
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

/** One line, with a space after each separator; strings and keys are JSON.stringify'd, never edited. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : inline(v))).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * JSON with 2-space indentation where it helps reading: number arrays stay on one line,
 * a latents matrix gets one row per line, small objects stay inline. The text always
 * parses back to the same value (hostile strings included: test/tokens.test.ts).
 */
export function formatPretty(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every(isPrimitive)) return inline(value);
    return `[\n${value.map((v) => inner + formatPretty(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    const oneLine = inline(value);
    if (indent && oneLine.length <= 100) return oneLine;
    if (!entries.length) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatPretty(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** One record as a pretty `tokens.json` document (with trailing newline). */
export function formatRecordJson(record: AnyRecord): string {
  return `${formatPretty(record)}\n`;
}

/** Records as JSONL: one compact line each. */
export function formatRecordsJsonl(records: readonly AnyRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/**
 * How a set of records is written: a `.json` file of one record is a pretty document;
 * everything else (stdout, `.jsonl`, several records) is JSONL, one compact line each, so
 * outputs appended to each other stay a valid JSONL file.
 */
export function formatTokenFile(records: readonly AnyRecord[], path?: string): string {
  const pretty = records.length === 1 && path !== undefined && extname(path).toLowerCase() === '.json';
  return pretty ? formatRecordJson(records[0]) : formatRecordsJsonl(records);
}

export async function writeTokenFile(path: string, records: readonly AnyRecord[]): Promise<void> {
  await writeFileAtomic(path, formatTokenFile(records, path));
}
