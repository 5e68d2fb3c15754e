/**
 * Keeps up to `lookahead` jobs started ahead of the consumer, and hands their results
 * back strictly in input order, whatever order they finish in. This is what overlaps
 * decoding with inference while keeping memory bounded: at most `lookahead` items are in
 * flight or waiting, however long the listing.
 */
import type { Peekable } from './peekable';

export class OrderedPrefetch<I, R> {
  private readonly fifo: Promise<R>[] = [];
  private ended = false;
  private stopped = false;
  private failure: unknown;
  private filling: Promise<void> | undefined;

  constructor(
    private readonly source: Peekable<I>,
    private readonly start: (item: I) => Promise<R>,
    private readonly lookahead: number,
  ) {}

  /** The next up to `n` results in order; fewer only when the listing is exhausted. */
  async take(n: number): Promise<R[]> {
    const out: R[] = [];
    while (out.length < n && !this.stopped) {
      if (!this.fifo.length) {
        await this.fill();
        if (!this.fifo.length) {
          if (this.failure !== undefined) throw this.failure;
          break;
        }
      }
      const next = this.fifo.shift()!;
      void this.fill();
      out.push(await next);
    }
    return out;
  }

  /** Start nothing more. Jobs already started run to completion (their owner cancels them). */
  stop(): void {
    this.stopped = true;
  }

  private fill(): Promise<void> {
    this.filling ??= this.fillLoop().finally(() => {
      this.filling = undefined;
    });
    return this.filling;
  }

  private async fillLoop(): Promise<void> {
    try {
      while (!this.ended && !this.stopped && this.fifo.length < this.lookahead) {
        const item = await this.source.next();
        if (item === undefined) {
          this.ended = true;
          break;
        }
        const job = this.start(item);
        job.catch(() => undefined); // surfaced when taken, not as an unhandled rejection
        this.fifo.push(job);
      }
    } catch (err) {
      // The listing failed (e.g. a list file vanished): hand out what was started, then throw.
      this.failure = err;
      this.ended = true;
    }
  }
}
