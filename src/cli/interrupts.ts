/**
 * SIGINT / SIGTERM in the CLI (issue 15.17). bin/ listens for both; a command that can stop
 * gracefully (batch: finish the chunk in flight, sync, stay resumable) takes the first
 * signal through {@link stopGracefully}. Otherwise, and on a second signal, bin/ removes
 * the temporaries being written (io/temp-files.ts) and exits 130 (SIGINT) or 143 (SIGTERM).
 */
import { basename } from 'node:path';

type Stopper = (signal: NodeJS.Signals) => void;
let stopper: Stopper | undefined;

/** Until the returned function is called, the next signal goes to `stop` (once) instead of ending the process. */
export function stopGracefully(stop: Stopper): () => void {
  stopper = stop;
  return () => {
    if (stopper === stop) stopper = undefined;
  };
}

/** bin/'s signal handler asks first: true when a command took the signal, false when the process should end now. */
export function offerSignal(signal: NodeJS.Signals): boolean {
  const stop = stopper;
  stopper = undefined; // a second signal ends the process
  stop?.(signal);
  return !!stop;
}

/** The line a signal that ends the process leaves on stderr. */
export function signalExitLine(signal: NodeJS.Signals, removedTemps: number): string {
  const what = signal === 'SIGINT' ? 'interrupted (SIGINT)' : `terminated (${signal})`;
  const temps = removedTemps ? '; removed the temporary files it was writing' : '';
  return `styled-vq: error: ${what}${temps}\n`;
}

/** The notice for temporaries an earlier, killed run had left (removed before this one started). */
export function removedTempsNotice(paths: readonly string[]): string {
  const names = paths.slice(0, 3).map((p) => basename(p));
  const more = paths.length > 3 ? `, and ${paths.length - 3} more` : '';
  return `removed ${paths.length === 1 ? 'a temporary' : `${paths.length} temporaries`} an interrupted run had left: ${names.join(', ')}${more}`;
}
