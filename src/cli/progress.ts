/**
 * Progress on stderr, the one home of the progress bars (cli-progress):
 * - {@link progressBar}: counted work whose total is known up front (encode, decode,
 *   concat), a bar only on a terminal and without --quiet/--json;
 * - {@link progressView}: `batch`, whose total arrives late (inputs are counted while the
 *   run starts) and may never arrive: a bar with count, images/s and ETA on a terminal, a
 *   plain line every few seconds otherwise (logs, CI), nothing when quiet.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { BatchProgress } from '../batch/run-batch';
import type { GlobalArgs } from './globals';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(argv: GlobalArgs, total: number, label: string): Progress {
  if (argv.quiet || argv.json || total < 2 || !process.stderr.isTTY)
    return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
    },
    Presets.legacy,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(done),
    stop: () => bar.stop(),
  };
}

export interface ProgressView {
  setTotal(total: number): void;
  update(progress: BatchProgress): void;
  stop(): void;
}

export interface ProgressViewOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  quiet: boolean;
  /** Plain mode: seconds between lines (default 5). */
  intervalSeconds?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function eta(p: BatchProgress, total: number | undefined): string {
  if (total === undefined || p.imagesPerSecond <= 0) return '?';
  return formatDuration(Math.max(0, total - p.written) / p.imagesPerSecond);
}

const silent: ProgressView = { setTotal: () => undefined, update: () => undefined, stop: () => undefined };

export function progressView(options: ProgressViewOptions): ProgressView {
  if (options.quiet) return silent;
  return options.stream.isTTY ? barView(options) : lineView(options);
}

function barView(options: ProgressViewOptions): ProgressView {
  let total: number | undefined;
  let last: BatchProgress | undefined;
  const bar = new SingleBar(
    {
      format: 'batch [{bar}] {written}/{totalText} | {rate} img/s | eta {etaText}',
      stream: options.stream as NodeJS.WritableStream,
      hideCursor: true,
      fps: 5,
    },
    Presets.shades_classic,
  );
  const payload = (p?: BatchProgress) => ({
    written: p?.written ?? 0,
    totalText: total ?? '?',
    rate: (p?.imagesPerSecond ?? 0).toFixed(1),
    etaText: p ? eta(p, total) : '?',
  });
  bar.start(1, 0, payload());
  const redraw = () => {
    // Until the total is known the bar stays empty; the count and rate still move.
    bar.setTotal(Math.max(1, total ?? 1));
    bar.update(total === undefined ? 0 : (last?.written ?? 0), payload(last));
  };
  return {
    setTotal: (n) => {
      total = n;
      redraw();
    },
    update: (p) => {
      last = p;
      redraw();
    },
    stop: () => bar.stop(),
  };
}

function lineView(options: ProgressViewOptions): ProgressView {
  let total: number | undefined;
  let lastLine = Date.now();
  const every = (options.intervalSeconds ?? 5) * 1000;
  return {
    setTotal: (n) => {
      total = n;
    },
    update: (p) => {
      if (Date.now() - lastLine < every) return;
      lastLine = Date.now();
      const of = total !== undefined ? `/${total} (${total ? Math.floor((100 * p.written) / total) : 100}%)` : '';
      options.stream.write(
        `styled-vq: batch ${p.written}${of}, ${p.failed} failed, ${p.imagesPerSecond.toFixed(1)} img/s, eta ` +
          `${eta(p, total)}\n`,
      );
    },
    stop: () => undefined,
  };
}
