/**
 * The yargs program: global options, the commands of commands/index.ts, and failures
 * turned into StyledVqErrors (bin/ maps those to a message and an exit code).
 */
import yargs, { type Argv } from 'yargs';
import { StyledVqError, usageError } from '../errors';
import { COMMANDS } from '../commands';
import { DEFAULTS } from '../defaults';
import { GLOBAL_OPTIONS, type GlobalArgs } from './globals';
import { friendlyYargsMessage } from './yargs-messages';
import { packageVersion } from '../util/package-root';

/**
 * yargs drops a lone `-` (stdin/stdout in Unix tools): it travels through the parser as a
 * name no path can have (NUL is not allowed in paths) and is put back before the handler runs.
 */
const DASH = '\u0000-';

function restoreDash(value: unknown): unknown {
  if (value === DASH) return '-';
  if (Array.isArray(value)) return value.map(restoreDash);
  return value;
}

export function buildParser(args: string[]): Argv<GlobalArgs> {
  let y = yargs(args.map((a) => (a === '-' ? DASH : a)))
    .middleware((argv) => {
      for (const k of Object.keys(argv)) (argv as Record<string, unknown>)[k] = restoreDash(argv[k]);
    }, true)
    .scriptName('styled-vq')
    .usage('$0 <command> [options]\n\nImages <-> 36 discrete tokens, ordered from high-level to low-level attributes.')
    .options(GLOBAL_OPTIONS)
    .group(Object.keys(GLOBAL_OPTIONS), 'Global options:') as unknown as Argv<GlobalArgs>;
  for (const c of COMMANDS) y = y.command(c);
  return y
    .demandCommand(
      1,
      'Name a command (encode, decode, reconstruct, preprocess, quantize, dequantize, info, doctor, batch, merge, ' +
        'concat, split)',
    )
    .recommendCommands()
    .strict()
    .example('$0 encode examples/pier.jpg', 'tokens.json record on stdout')
    .example(
      '$0 encode examples/pier.jpg -o pier.json && $0 decode pier.json -o pier.png',
      'round trip through 36 tokens',
    )
    .example('$0 doctor', 'what runs here: providers, versions, default model')
    .epilogue(
      `Model: --model DIR, else $${DEFAULTS.modelEnv}, else the default in models/. ` +
        'Exit codes: 0 ok, 1 bad usage, 2 bad input or model, 75 output busy (another writer), 130 Ctrl-C, 143 ' +
        'SIGTERM. Docs: README.md.',
    )
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err instanceof StyledVqError) throw err;
      // A YError is yargs' own (including errors thrown by option coerce functions): usage.
      if (err?.name === 'YError') throw usageError(friendlyYargsMessage(err.message, args));
      if (err) throw err;
      // yargs' own messages can span lines and name no flags; errors are one line that does.
      throw usageError(friendlyYargsMessage(msg, args));
    });
}
