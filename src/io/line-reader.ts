/**
 * Lines of a file with their byte offsets, streamed (memory stays flat however long the
 * file). A line is "terminated" when a "\n" follows it; the last line of a file cut off
 * mid-write is not.
 *
 * Linear in the line length (issue 15.15): the pieces of a line that spans read chunks are
 * collected in a list and joined once, when its "\n" arrives (re-joining the line with every
 * chunk was quadratic: a 100 MB line took minutes). A line longer than `maxBytes` (by
 * default the record limit, DEFAULTS.maxRecordBytes) is refused with one line naming the
 * file and line, as soon as it passes the limit, or skipped to its end when asked.
 */
import { createReadStream } from 'node:fs';
import { DEFAULTS } from '../defaults';
import { inputError } from '../errors';

export interface Line {
  /** The line without its "\n" (decoded as UTF-8); empty for a line that is `tooLong`. */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line and its "\n". */
  end: number;
  terminated: boolean;
  /** With `tooLong: 'yield'`: the line passed `maxBytes`; its bytes were skipped, not kept. */
  tooLong?: boolean;
}

export interface ReadLinesOptions {
  /** Longest line accepted, in bytes without the "\n" (default DEFAULTS.maxRecordBytes). */
  maxBytes?: number;
  /**
   * What a longer line does: 'throw' (default) an input error naming the file and line;
   * 'yield' a `tooLong` line without its text (for readers that cut a torn tail, like
   * `batch --resume`), whose bytes are skipped without being held.
   */
  tooLong?: 'throw' | 'yield';
}

/** The one-line error for a record line over the limit (shared with the JSON record reader). */
export function recordTooLongError(name: string, line: number, maxBytes: number): Error {
  return inputError(
    `${name} line ${line} is longer than ${formatBytes(maxBytes)}, the longest record styled-vq reads (is the ` +
      `file corrupt?)`,
  );
}

/** 64 MiB, 1.5 KiB, 100 bytes. */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

export async function* readLines(path: string, options: ReadLinesOptions = {}): AsyncGenerator<Line> {
  const maxBytes = options.maxBytes ?? DEFAULTS.maxRecordBytes;
  let parts: Buffer[] = []; // the current line's bytes from earlier chunks (copies)
  let partBytes = 0;
  let skipping = false; // the current line is over the limit: its bytes are dropped
  let start = 0; // file offset of the current line
  let offset = 0; // file offset of chunk[0]
  let lineNo = 1;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let from = 0;
      for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        const length = partBytes + nl - from;
        const end = offset + nl + 1;
        if (skipping || length > maxBytes) {
          if (options.tooLong !== 'yield') throw recordTooLongError(path, lineNo, maxBytes);
          yield { text: '', start, end, terminated: true, tooLong: true };
        } else {
          const text = parts.length
            ? Buffer.concat([...parts, chunk.subarray(from, nl)], length).toString('utf8')
            : chunk.toString('utf8', from, nl);
          yield { text, start, end, terminated: true };
        }
        parts = [];
        partBytes = 0;
        skipping = false;
        start = end;
        lineNo++;
        from = nl + 1;
      }
      if (from < chunk.length) {
        partBytes += chunk.length - from;
        if (partBytes > maxBytes) {
          if (options.tooLong !== 'yield') throw recordTooLongError(path, lineNo, maxBytes);
          skipping = true;
          parts = [];
        } else if (!skipping) parts.push(Buffer.from(chunk.subarray(from))); // detach from the stream's chunk
      }
      offset += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  if (partBytes) {
    if (skipping) yield { text: '', start, end: offset, terminated: false, tooLong: true };
    else yield { text: Buffer.concat(parts, partBytes).toString('utf8'), start, end: offset, terminated: false };
  }
}
