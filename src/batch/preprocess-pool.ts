/**
 * Preprocessing with bounded concurrency, off the main thread where possible.
 *
 * Decoding runs in libvips' own threads, but the PIL-exact box and bicubic resampling
 * (src/image) is JavaScript: on the main thread it would serialise every image and stall
 * the loop that feeds ONNX Runtime. So each of `concurrency` worker threads takes one
 * image at a time. A worker that dies (a crash inside a decoder) costs only the image it
 * held, which gets an error record; a fresh worker takes its place.
 *
 * 'main' mode runs the same job on the main thread, `concurrency` images at a time. It is
 * used when asked for, and when the compiled worker script is absent (running the library
 * from TypeScript sources, e.g. under ts-jest); `mode` and `fallback` say which ran.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { preprocessFile, type PreprocessOutcome, type PreprocessSettings, reasonOf } from './preprocess-job';

export type PreprocessMode = 'workers' | 'main';

export interface Preprocessor {
  readonly mode: PreprocessMode;
  readonly concurrency: number;
  /** Why 'workers' was asked for and 'main' runs. */
  readonly fallback?: string;
  /**
   * Resolves with the outcome (bad inputs included); rejects only if the pool itself is
   * broken. `data`: the image's bytes when it is not a file (a tar member); it is handed
   * to the worker (transferred: the caller must not use it afterwards).
   */
  run(path: string, data?: Uint8Array): Promise<PreprocessOutcome>;
  close(): Promise<void>;
}

export interface PoolOptions {
  concurrency: number;
  /** Default 'workers'. */
  mode?: PreprocessMode;
}

/** The compiled worker next to this file (dist/src/batch/), or undefined under ts sources. */
export function workerScript(): string | undefined {
  const js = join(__dirname, 'preprocess-worker.js');
  return __filename.endsWith('.js') && existsSync(js) ? js : undefined;
}

export function createPreprocessor(settings: PreprocessSettings, options: PoolOptions): Preprocessor {
  const script = workerScript();
  if ((options.mode ?? 'workers') === 'workers') {
    if (script) return new WorkerPool(script, settings, options.concurrency);
    return new MainThread(settings, options.concurrency, 'no compiled worker script (running from TypeScript sources)');
  }
  return new MainThread(settings, options.concurrency);
}

/** A counting semaphore's worth of queueing: at most `limit` jobs run at once. */
class MainThread implements Preprocessor {
  readonly mode = 'main' as const;
  private running = 0;
  private closed = false;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly settings: PreprocessSettings,
    readonly concurrency: number,
    readonly fallback?: string,
  ) {}

  async run(path: string, data?: Uint8Array): Promise<PreprocessOutcome> {
    if (this.running >= this.concurrency) await new Promise<void>((go) => this.waiting.push(go));
    if (this.closed) {
      this.waiting.shift()?.();
      return { ok: false, error: 'cancelled' };
    }
    this.running++;
    try {
      return await preprocessFile(data ?? path, this.settings);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    // Jobs still waiting for a slot are cancelled; running ones finish.
    this.closed = true;
    this.waiting.shift()?.();
  }
}

interface Job {
  id: number;
  path: string;
  data?: Uint8Array;
  resolve: (o: PreprocessOutcome) => void;
  reject: (e: Error) => void;
}

class WorkerPool implements Preprocessor {
  readonly mode = 'workers' as const;
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private nextId = 0;
  private anyDone = false;
  private closed = false;
  private broken: Error | undefined;

  constructor(
    private readonly script: string,
    private readonly settings: PreprocessSettings,
    readonly concurrency: number,
  ) {
    for (let i = 0; i < concurrency; i++) this.idle.push(this.spawn());
  }

  run(path: string, data?: Uint8Array): Promise<PreprocessOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: 'cancelled' });
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, path, data, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve({ ok: false, error: 'cancelled' });
    for (const job of this.busy.values()) job.resolve({ ok: false, error: 'cancelled' });
    const all = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    this.busy.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }

  private spawn(): Worker {
    const w = new Worker(this.script, { workerData: this.settings });
    w.on('message', (msg: { id: number; outcome: PreprocessOutcome }) => {
      const job = this.busy.get(w);
      if (!job || job.id !== msg.id) return;
      this.busy.delete(w);
      this.anyDone = true;
      this.idle.push(w);
      job.resolve(msg.outcome);
      this.dispatch();
    });
    w.on('error', (err) => this.lost(w, reasonOf(err)));
    w.on('exit', (code) => this.lost(w, `exited with code ${code}`));
    // Idle workers must not keep the process alive.
    w.unref();
    return w;
  }

  /** A worker died: its image gets an error record, and a new worker takes its place. */
  private lost(w: Worker, why: string): void {
    if (this.closed) return;
    const job = this.busy.get(w);
    const wasIdle = this.idle.indexOf(w);
    if (wasIdle >= 0) this.idle.splice(wasIdle, 1);
    if (!job && wasIdle < 0) return; // already handled ('error' is followed by 'exit')
    this.busy.delete(w);
    if (!this.anyDone) {
      // Not one image has come back: the pool cannot work here at all.
      const err = new Error(`preprocessing worker failed before its first image: ${why}`);
      this.broken = err;
      for (const j of [...(job ? [job] : []), ...this.queue.splice(0)]) j.reject(err);
      return;
    }
    job?.resolve({ ok: false, error: `${job.path}: preprocessing crashed on this image (${why})` });
    this.idle.push(this.spawn());
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.ref();
      // Tar members' bytes move to the worker (their buffers are their own: tar-input.ts).
      w.postMessage({ id: job.id, path: job.path, data: job.data }, job.data ? [job.data.buffer as ArrayBuffer] : []);
      job.data = undefined;
    }
    for (const w of this.idle) w.unref();
  }
}
