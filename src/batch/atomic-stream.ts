/**
 * A file written piece by piece that still appears whole or not at all: the pieces go to
 * a temporary file next to the target (util/atomic's naming), which is synced and renamed
 * over the target on `commit`. For outputs too large to build in memory first.
 */
import { promises as fs } from 'node:fs';
import { ioError } from '../util/io-errors';
import { tempPathFor } from '../util/atomic';

export class AtomicStreamWriter {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  private constructor(
    readonly target: string,
    private readonly tmp: string,
    private readonly fh: fs.FileHandle,
  ) {}

  static async open(target: string): Promise<AtomicStreamWriter> {
    const tmp = tempPathFor(target);
    try {
      return new AtomicStreamWriter(target, tmp, await fs.open(tmp, 'wx'));
    } catch (err) {
      throw ioError(err, target, 'write');
    }
  }

  /** Buffers small pieces; writes in blocks of about 1 MiB. */
  async write(data: string | Uint8Array): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.buffered.push(typeof data === 'string' ? buf : Buffer.from(buf)); // copy: callers reuse their arrays
    this.bufferedBytes += buf.length;
    if (this.bufferedBytes >= 1 << 20) {
      try {
        await this.flush();
      } catch (err) {
        throw ioError(err, this.target, 'write');
      }
    }
  }

  async commit(): Promise<void> {
    try {
      await this.flush();
      await this.fh.datasync();
      await this.fh.close();
      await fs.rename(this.tmp, this.target);
    } catch (err) {
      await this.abort();
      throw ioError(err, this.target, 'write');
    }
  }

  /** Drop the temporary file (safe after a failed or finished commit). */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.rm(this.tmp, { force: true });
  }

  private async flush(): Promise<void> {
    if (!this.bufferedBytes) return;
    const block = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    await this.fh.writeFile(block);
  }
}
