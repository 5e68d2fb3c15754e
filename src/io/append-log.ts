/**
 * An append-only record log (the JSONL output itself, or the journal behind an .npy
 * output). Each `append` writes whole lines; the data is flushed to disk with fdatasync
 * at most every `syncEveryMs` and always on `close`, so a crash loses at most the last
 * moments of work. Anything a crash can leave behind (a cut-off line, a hole of zero
 * bytes) is found and cut off by batch/resume.ts before the log is trusted again.
 */
import { promises as fs } from 'node:fs';
import { ioError } from './io-errors';
import { DEFAULTS } from '../defaults';

export class AppendLog {
  private lastSync = Date.now();
  private pending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: fs.FileHandle,
    private readonly syncEveryMs: number,
  ) {}

  /** Open for appending; `truncateTo` first cuts the file to that many bytes (resume). */
  static async open(
    path: string,
    options: { truncateTo?: number; fresh?: boolean; syncEveryMs?: number } = {},
  ): Promise<AppendLog> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(path, options.fresh ? 'w' : 'a');
      if (options.truncateTo !== undefined) {
        await fh.truncate(options.truncateTo);
        await fh.datasync();
      }
    } catch (err) {
      throw ioError(err, path, 'open');
    }
    return new AppendLog(path, fh, options.syncEveryMs ?? DEFAULTS.batch.syncEveryMs);
  }

  /**
   * Queue `text` (whole lines) after the previous appends. Resolves when it is written
   * (and synced, when due); at most one append is in flight, so callers that await the
   * previous one before queueing the next get back-pressure.
   */
  append(text: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`append to closed log ${this.path}`));
    const run = async () => {
      try {
        await this.fh.appendFile(text); // loops until every byte is written
        if (Date.now() - this.lastSync >= this.syncEveryMs) await this.sync();
      } catch (err) {
        // A disk that filled up: the lines before stay whole, so --resume continues once there is space.
        throw ioError(err, this.path, 'write');
      }
    };
    this.pending = this.pending.then(run);
    return this.pending;
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
    this.lastSync = Date.now();
  }

  /** Wait for queued appends, sync, close. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pending;
      await this.sync().catch((err) => Promise.reject(ioError(err, this.path, 'write')));
    } finally {
      await this.fh.close();
    }
  }
}
