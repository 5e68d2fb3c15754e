/** A progress bar on stderr for multi-image work, only on a terminal and without --quiet/--json. */
import { SingleBar, Presets } from 'cli-progress';
import type { GlobalArgs } from './globals';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(argv: GlobalArgs, total: number, label: string): Progress {
  if (argv.quiet || argv.json || total < 2 || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`, stream: process.stderr, hideCursor: true },
    Presets.legacy,
  );
  bar.start(total, 0);
  return {
    update: (done) => bar.update(done),
    stop: () => bar.stop(),
  };
}
