/** An async iterator you can look one item ahead in (resume compares before it consumes). */
export class Peekable<T> {
  private readonly it: AsyncIterator<T>;
  private head: IteratorResult<T> | undefined;

  constructor(source: AsyncIterable<T>) {
    this.it = source[Symbol.asyncIterator]();
  }

  async peek(): Promise<T | undefined> {
    if (!this.head) this.head = await this.it.next();
    return this.head.done ? undefined : this.head.value;
  }

  async next(): Promise<T | undefined> {
    const value = await this.peek();
    if (!this.head!.done) this.head = undefined;
    return value;
  }

  /** Stop the underlying generator (closes list files and directory walks). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
