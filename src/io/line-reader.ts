/**
 * Lines of a file with their byte offsets, streamed (memory stays flat however long the
 * file). A line is "terminated" when a "\n" follows it; the last line of a file cut off
 * mid-write is not.
 */
import { createReadStream } from 'node:fs';

export interface Line {
  /** The line without its "\n" (decoded as UTF-8). */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line and its "\n". */
  end: number;
  terminated: boolean;
}

export async function* readLines(path: string): AsyncGenerator<Line> {
  let carry: Buffer = Buffer.alloc(0);
  let offset = 0; // file offset of carry[0]
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let from = 0;
    for (let nl = buf.indexOf(0x0a, from); nl >= 0; nl = buf.indexOf(0x0a, from)) {
      yield { text: buf.toString('utf8', from, nl), start: offset + from, end: offset + nl + 1, terminated: true };
      from = nl + 1;
    }
    offset += from;
    buf = buf.subarray(from);
    carry = Buffer.from(buf); // detach from the stream's chunk
  }
  if (carry.length)
    yield { text: carry.toString('utf8'), start: offset, end: offset + carry.length, terminated: false };
}
