/**
 * Top-level JSON values of a byte stream, one after another, whatever the layout: JSONL
 * (one compact value per line), pretty documents concatenated (`encode --pretty a >> t`;
 * `cat a.json b.json`), or a mix. Each byte is looked at once (linear in the input, also
 * for very long values) and only the value being read is held in memory, so files of any
 * size stream with flat memory.
 */
import { createReadStream } from 'node:fs';
import { DEFAULTS } from '../defaults';
import { inputError } from '../errors';
import { ioError } from '../io/io-errors';
import { recordTooLongError } from '../io/line-reader';

export interface JsonValueText {
  /** The value's JSON text. */
  text: string;
  /** The parsed value, when the fast path for a one-line value already parsed it. */
  value?: unknown;
  /** 1-based line where the value starts. */
  line: number;
}

/** Longest single value accepted: the record limit shared by every reader of token records. */
export const MAX_VALUE_BYTES = DEFAULTS.maxRecordBytes;

const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const isSpace = (b: number) => b === 0x20 || b === LF || b === 0x0d || b === 0x09;

/**
 * Splits bytes into top-level JSON object/array texts, fed chunk by chunk. Anything else at
 * the top level (a bare number, a stray character) is an error naming the line.
 */
export class JsonSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private line = 1;
  private startLine = 0;
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(
    private readonly name: string,
    private readonly maxBytes = MAX_VALUE_BYTES,
  ) {}

  /** The values completed by this chunk. */
  push(raw: Buffer | string): JsonValueText[] {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    const out: JsonValueText[] = [];
    let from = 0; // start of the current value's bytes within this chunk
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === LF) this.line++;
      if (this.depth === 0) {
        if (isSpace(b)) continue;
        if (b === OPEN_BRACE) {
          // Fast path for JSONL: a whole value on one line parses as is (JSON strings hold no raw newline).
          const nl = chunk.indexOf(LF, i);
          let end = nl - 1;
          while (end > i && (chunk[end] === 0x0d || chunk[end] === 0x20 || chunk[end] === 0x09)) end--;
          if (nl > 0 && end + 1 - i > this.maxBytes) throw recordTooLongError(this.name, this.line, this.maxBytes);
          if (nl > 0 && chunk[end] === CLOSE_BRACE) {
            const text = chunk.toString('utf8', i, end + 1);
            let value: unknown;
            try {
              value = JSON.parse(text);
            } catch {
              value = undefined; // not one value (or not valid): the byte scanner below decides
            }
            if (value !== undefined) {
              out.push({ text, value, line: this.line });
              this.line++;
              i = nl;
              continue;
            }
          }
        }
        if (b !== OPEN_BRACE && b !== OPEN_BRACKET) {
          const shown = b < 0x20 || b > 0x7e ? `byte 0x${b.toString(16)}` : JSON.stringify(String.fromCharCode(b));
          throw inputError(
            `${this.name} line ${this.line} is not valid JSON: unexpected ${shown} (expected a JSON record)`,
          );
        }
        this.depth = 1;
        from = i;
        this.startLine = this.line;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          const tail = chunk.subarray(from, i + 1);
          if (this.partBytes + tail.length > this.maxBytes)
            throw recordTooLongError(this.name, this.startLine, this.maxBytes);
          const text = this.parts.length
            ? Buffer.concat([...this.parts, tail], this.partBytes + tail.length).toString('utf8')
            : tail.toString('utf8');
          this.parts = [];
          this.partBytes = 0;
          out.push({ text, line: this.startLine });
        }
      }
    }
    if (this.depth > 0) {
      // The value continues in the next chunk: keep its bytes (copied: streams reuse buffers).
      const rest = Buffer.from(chunk.subarray(from));
      this.parts.push(rest);
      this.partBytes += rest.length;
      if (this.partBytes > this.maxBytes) throw recordTooLongError(this.name, this.startLine, this.maxBytes);
    }
    return out;
  }

  /** At the end of the input: an unfinished value is an error. */
  end(): void {
    if (this.depth > 0)
      throw inputError(
        `${this.name} line ${this.startLine} is not valid JSON: the input ends inside a value (cut off?)`,
      );
  }
}

/** Top-level JSON values of a stream of chunks, one at a time. */
export async function* jsonValues(
  chunks: AsyncIterable<Buffer | string>,
  name: string,
  maxBytes = MAX_VALUE_BYTES,
): AsyncGenerator<JsonValueText> {
  const splitter = new JsonSplitter(name, maxBytes);
  for await (const chunk of chunks) yield* splitter.push(chunk);
  splitter.end();
}

/** A re-readable byte source: a file (streamed each time) or bytes already in memory (stdin). */
export interface ByteSource {
  name: string;
  chunks(): AsyncIterable<Buffer>;
}

export function fileSource(path: string, name = path): ByteSource {
  return {
    name,
    chunks: () => readFileChunks(path, name),
  };
}

export function bytesSource(bytes: Buffer, name: string): ByteSource {
  return {
    name,
    chunks: async function* () {
      yield bytes;
    },
  };
}

/**
 * Bytes per read. Every value of a chunk is parsed before the first is used, so a chunk's
 * records are alive together: at 1 MiB (about 3,000 records) they outlived V8's young
 * generation and a full GC ran every few hundred milliseconds (a third of concat's time);
 * at 128 KiB they die young.
 */
const READ_CHUNK_BYTES = 128 * 1024;

async function* readFileChunks(path: string, name: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw ioError(err, name, 'read');
  } finally {
    stream.destroy();
  }
}
