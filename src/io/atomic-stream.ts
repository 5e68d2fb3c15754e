/**
 * A file written piece by piece that still appears whole or not at all: the pieces go to
 * a temporary file next to the target, which `commit` fsyncs and renames over the target
 * (atomic-write.ts). For outputs too large to build in memory first.
 */
import { promises as fs } from 'node:fs';
import { ioError } from './io-errors';
import { commitTempFile } from './atomic-write';
import { tempPathFor, trackTemp, untrackTemp } from './temp-files';

export class AtomicStreamWriter {
  private buffered: Buffer[] = [];
  private text = '';
  private bufferedBytes = 0;

  private constructor(
    readonly target: string,
    private readonly tmp: string,
    private readonly fh: fs.FileHandle,
  ) {}

  static async open(target: string): Promise<AtomicStreamWriter> {
    const tmp = tempPathFor(target);
    trackTemp(tmp); // an interrupt removes it (temp-files.ts)
    try {
      return new AtomicStreamWriter(target, tmp, await fs.open(tmp, 'wx'));
    } catch (err) {
      untrackTemp(tmp);
      throw ioError(err, target, 'write');
    }
  }

  /** Buffers small pieces; writes in blocks of about 1 MiB. */
  async write(data: string | Uint8Array): Promise<void> {
    if (typeof data === 'string') {
      // Small strings are joined first and encoded once per block (concat writes millions of lines).
      this.text += data;
      this.bufferedBytes += data.length;
      if (this.text.length >= 1 << 16) this.encodeText();
    } else if (data.byteLength >= 1 << 16) {
      // A block already: written as is, now (no copy; the caller may reuse it once this resolves).
      try {
        await this.flush();
        await this.fh.writeFile(data);
      } catch (err) {
        throw ioError(err, this.target, 'write');
      }
      return;
    } else {
      this.encodeText();
      this.buffered.push(Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))); // copy: callers reuse their arrays
      this.bufferedBytes += data.byteLength;
    }
    if (this.bufferedBytes >= 1 << 20) {
      try {
        await this.flush();
      } catch (err) {
        throw ioError(err, this.target, 'write');
      }
    }
  }

  /**
   * Flush and fsync without renaming, so that a caller can make two files durable before
   * renaming either (concat's combined file and its layout, issue 15.12).
   */
  async sync(): Promise<void> {
    try {
      await this.flush();
      await this.fh.sync();
    } catch (err) {
      throw ioError(err, this.target, 'write');
    }
  }

  async commit(): Promise<void> {
    try {
      await this.flush();
      await commitTempFile(this.fh, this.tmp, this.target);
      untrackTemp(this.tmp);
    } catch (err) {
      await this.abort();
      throw ioError(err, this.target, 'write');
    }
  }

  /** Drop the temporary file (safe after a failed or finished commit). */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.rm(this.tmp, { force: true });
    untrackTemp(this.tmp);
  }

  private encodeText(): void {
    if (!this.text) return;
    this.buffered.push(Buffer.from(this.text));
    this.text = '';
  }

  private async flush(): Promise<void> {
    this.encodeText();
    if (!this.bufferedBytes) return;
    const block = Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    await this.fh.writeFile(block);
  }
}
