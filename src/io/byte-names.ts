/**
 * File names that are not valid UTF-8 (Linux allows any bytes but "/" and NUL), kept
 * exactly (issue 15.9). Node.js decodes such names lossily (each bad byte becomes U+FFFD),
 * after which the file can no longer be opened, so names are read as bytes and carried
 * as strings in Python's "surrogateescape" form: every byte that is not part of valid
 * UTF-8 becomes the lone surrogate U+DC80..U+DCFF (byte 0xNN -> U+DCNN). A valid UTF-8
 * name is unchanged, and the escape is reversible: {@link fsPath} gives the bytes back to
 * open the file; JSON writes the escapes as "\udcNN", and Python's `os.fsencode(source)`
 * turns a record's source back into the exact bytes.
 */

/** A lone surrogate U+DC80..U+DCFF (not the low half of a pair): an escaped byte. */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Whether `name` holds escaped bytes (so the file system needs its bytes, not the string). */
export const hasEscapedBytes = (name: string): boolean => ESCAPED.test(name);

/** Length of the valid UTF-8 sequence at `i`, or 0 if the byte there does not start one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const d = b[i + 1];
    if (c === 0xe0 && d < 0xa0) return 0; // overlong
    if (c === 0xed && d >= 0xa0) return 0; // a UTF-16 surrogate: not valid UTF-8
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const d = b[i + 1];
    if (c === 0xf0 && d < 0x90) return 0; // overlong
    if (c === 0xf4 && d >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

/** File-name bytes -> string: UTF-8, with every byte that is not valid UTF-8 escaped as U+DC80 + byte. */
export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  let from = 0; // start of the valid run not yet decoded
  let i = 0;
  while (i < buf.length) {
    const n = sequenceLength(buf, i);
    if (n) {
      i += n;
      continue;
    }
    out += buf.toString('utf8', from, i) + String.fromCharCode(0xdc00 + buf[i]);
    i++;
    from = i;
  }
  return out + buf.toString('utf8', from, buf.length);
}

/** A name -> its bytes (the inverse of {@link decodeName}). */
export function encodeName(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    const lone =
      u >= 0xdc80 && u <= 0xdcff && !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff);
    if (!lone) {
      run += name[i];
      continue;
    }
    parts.push(Buffer.from(run, 'utf8'), Buffer.from([u - 0xdc00]));
    run = '';
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** What to hand to `fs` for a path: the string itself, or its bytes when it holds escaped ones. */
export const fsPath = (path: string): string | Buffer => (hasEscapedBytes(path) ? encodeName(path) : path);
