/**
 * Webdataset shards as input: the images of a `.tar`, read from the stream (never
 * unpacked to disk), in archive order. A member with an image extension is one input,
 * recorded as `<tar path>/<member name>` (the webdataset key is its stem, so `concat`
 * matches per-image codes by key); other members (`.txt`, `.json`, `.cls` companions)
 * are counted as ignored, like non-image files in a folder. A member that is named like
 * an image but does not decode gets an error record, as a bad file does.
 *
 * tar-stream raises an error on an archive cut inside a member, but no reader notices an
 * archive cut exactly at a member boundary: it just looks shorter. `checkTarArchive` walks
 * the headers itself (one 512-byte read per member) and insists on the end-of-archive
 * block, so a truncated shard is refused before any work instead of silently missing ids.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { extract, type Header } from 'tar-stream';
import { inputError } from '../errors';
import { decodeName, fsPath } from '../io/byte-names';

const BLOCK = 512;

const isZero = (b: Buffer) => b.every((v) => v === 0);

/** An octal (or GNU base-256) number field of a tar header. */
function numberField(h: Buffer, start: number, length: number): number {
  if (h[start] & 0x80) {
    let v = h[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + h[i];
    return v;
  }
  const text = h
    .toString('latin1', start, start + length)
    .replace(/\0.*$/s, '')
    .trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === numberField(h, 148, 8);
}

/**
 * Check that `path` is a whole tar archive: every header's checksum is right, every
 * member's data is there, and the headers end with the end-of-archive (zero) block.
 * Throws a one-line input error naming what is wrong.
 */
export async function checkTarArchive(path: string): Promise<{ members: number }> {
  const fh = await fs.open(fsPath(path), 'r').catch((err: Error) => {
    throw inputError(`Cannot read ${path}: ${err.message}`, err);
  });
  try {
    const size = (await fh.stat()).size;
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    let members = 0;
    let last = '';
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, BLOCK, offset);
      if (bytesRead < BLOCK) {
        const where = members ? `after member ${JSON.stringify(last)}` : 'before its first member';
        throw inputError(`${path} is truncated: it ends ${where} without the end-of-archive block (a tar cut short?)`);
      }
      if (isZero(header)) return { members };
      if (!checksumOk(header))
        throw inputError(`${path}: bad tar header at byte ${offset} (not a tar archive, or damaged)`);
      last = header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const type = String.fromCharCode(header[156] || 0x30);
      // Links, folders and devices carry no data whatever their size field says.
      const dataSize = '1256'.includes(type) ? 0 : numberField(header, 124, 12);
      const next = offset + BLOCK + Math.ceil(dataSize / BLOCK) * BLOCK;
      if (offset + BLOCK + dataSize > size)
        throw inputError(`${path} is truncated inside member ${JSON.stringify(last)} (a tar cut short?)`);
      if (!'xgLK'.includes(type)) members++; // pax and GNU long-name headers describe the next member
      offset = next;
    }
  } finally {
    await fh.close();
  }
}

/** A member's name: a pax path is UTF-8 text already; a ustar / GNU name arrives as latin1 bytes. */
function memberName(h: Header): string {
  const pax = h.pax as { path?: string } | null | undefined;
  return pax?.path !== undefined ? h.name : decodeName(Buffer.from(h.name, 'latin1'));
}

export interface TarMember {
  /** Member path inside the archive. */
  name: string;
  /** The member's bytes (its own buffer: safe to transfer to a worker thread), unless names only were asked for. */
  data?: Uint8Array;
}

/**
 * The regular-file members of `path`, in archive order, read lazily: the next member is
 * read only when asked for. `accept(name)` false members are skipped unread (and
 * reported to `onRejected`). With `withData: false` only the names are listed.
 */
export async function* tarMembers(
  path: string,
  options: { accept: (name: string) => boolean; onRejected?: (name: string) => void; withData?: boolean },
): AsyncGenerator<TarMember> {
  const source = createReadStream(fsPath(path));
  // latin1 keeps the bytes of a ustar / GNU name: one that is not UTF-8 is escaped, not lost (io/byte-names.ts).
  // (tar-stream's types omit the option its extract() reads.)
  const ex = extract({ filenameEncoding: 'latin1' } as Parameters<typeof extract>[0]);
  source.on('error', (err) => ex.destroy(err));
  source.pipe(ex);
  try {
    for await (const entry of ex) {
      const h = { ...entry.header, name: memberName(entry.header) };
      if ((h.type !== 'file' && h.type !== 'contiguous-file') || !options.accept(h.name)) {
        if (h.type === 'file' || h.type === 'contiguous-file') options.onRejected?.(h.name);
        entry.resume();
        continue;
      }
      if (options.withData === false) {
        entry.resume();
        yield { name: h.name };
        continue;
      }
      const data = new Uint8Array(h.size);
      let at = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        data.set(chunk.subarray(0, Math.max(0, h.size - at)), at);
        at += chunk.length;
      }
      yield { name: h.name, data };
    }
  } catch (err) {
    throw inputError(`${path}: ${(err as Error).message} (a damaged or truncated tar?)`, err);
  } finally {
    source.destroy();
    ex.destroy();
  }
}
