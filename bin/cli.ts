/**
 * The CLI entry: runs the yargs program and is the only place that turns errors into a
 * one-line message on stderr and an exit code (0 ok, 1 bad usage, 2 bad input or model).
 */
import { buildParser } from '../src/cli/parser';
import { setDebug } from '../src/debug';
import { exitCodeFor, StyledVqError } from '../src/errors';

export async function main(args: string[]): Promise<number> {
  const debug = args.includes('--debug');
  setDebug(debug);
  try {
    await buildParser(args).parseAsync();
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const line = message.split('\n')[0];
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n${err.cause ? `cause: ${(err.cause as Error).stack ?? err.cause}\n` : ''}`);
    const prefix = err instanceof StyledVqError ? 'error' : 'internal error';
    process.stderr.write(`styled-vq: ${prefix}: ${line}${debug || err instanceof StyledVqError ? '' : ' (run with --debug for details)'}\n`);
    return exitCodeFor(err);
  }
}
