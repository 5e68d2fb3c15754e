/**
 * The CLI entry: runs the yargs program and is the only place that turns errors into a
 * one-line message on stderr and an exit code (0 ok, 1 bad usage, 2 bad input or model).
 */
import { cliMessage } from '../src/cli/flags';
import { buildParser } from '../src/cli/parser';
import { setDebug } from '../src/debug';
import { exitCodeFor, StyledVqError } from '../src/errors';
import { ioError, isErrnoError } from '../src/io/io-errors';
import { offerSignal, signalExitLine } from '../src/cli/interrupts';
import { recoverRawArgs } from '../src/cli/raw-args';
import { removeLiveTemps } from '../src/io/temp-files';

/** The one-line message for an error (also for one that escaped every await: see below). */
function report(caught: unknown, debug: boolean): number {
  // Node's own file-system errors (ENOSPC, EROFS, EACCES ...) that no command caught: still one line, exit 2.
  const err = isErrnoError(caught)
    ? ioError(
        caught,
        caught.path ?? 'a file',
        caught.syscall === 'open' || caught.syscall === 'read' ? 'read' : 'write',
      )
    : caught;
  const line = cliMessage(err);
  if (debug && err instanceof Error)
    process.stderr.write(`${err.stack}\n${err.cause ? `cause: ${(err.cause as Error).stack ?? err.cause}\n` : ''}`);
  const prefix = err instanceof StyledVqError ? 'error' : 'internal error';
  process.stderr.write(
    `styled-vq: ${prefix}: ${line}${debug || err instanceof StyledVqError ? '' : ' (run with --debug for details)'}\n`,
  );
  return exitCodeFor(err);
}

/**
 * SIGINT / SIGTERM: a command that stops gracefully takes the first (batch); otherwise the
 * temporaries being written are removed and the process ends with the README's exit code,
 * 130 for SIGINT, 143 for SIGTERM (issue 15.17).
 */
function onSignal(signal: NodeJS.Signals): void {
  if (offerSignal(signal)) return;
  const removed = removeLiveTemps();
  process.stderr.write(signalExitLine(signal, removed));
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/**
 * Run the CLI on `args`; resolves to the exit code. `catchEscaped: false` leaves the
 * process-wide error handlers alone (tests that run commands in their own process).
 */
export async function main(args: string[], options: { catchEscaped?: boolean } = {}): Promise<number> {
  const debug = args.includes('--debug');
  setDebug(debug);
  // An error raised outside the awaited chain (a stream's 'error' event) must not become a stack trace.
  const escaped = (err: unknown) => process.exit(report(err, debug));
  if (options.catchEscaped !== false) {
    process.on('uncaughtException', escaped);
    process.on('unhandledRejection', escaped);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    await buildParser(recoverRawArgs(args)).parseAsync();
    return 0;
  } catch (caught) {
    return report(caught, debug);
  }
}
