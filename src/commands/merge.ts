import type { Argv, ArgumentsCamelCase } from 'yargs';
import { StyledVqError } from '../errors';
import { IncompleteShardsError, mergeShards } from '../batch/merge';
import { type GlobalArgs, io, notice, printJson } from '../cli/globals';
import { removedTempsNotice } from '../cli/interrupts';

export interface MergeArgs extends GlobalArgs {
  shards: string[];
  output: string;
  overwrite?: boolean;
}

export const command = 'merge <shards...>';
export const describe =
  'Check every shard of a batch --shard job (markers, sha256, completeness) and join them in shard order';

export function builder(y: Argv<GlobalArgs>): Argv<MergeArgs> {
  return y
    .positional('shards', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: "The shards' folder, a quoted glob of shard outputs, or the outputs (each with its .done.json)",
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        demandOption: true,
        requiresArg: true,
        describe: 'all.jsonl or all.npy (the format of the shards)',
      },
      overwrite: { type: 'boolean', describe: 'Replace an existing merged output' },
    })
    .example('$0 merge out/ -o all.jsonl', 'every shard in out/, checked, joined in order (+ all.jsonl.done.json)')
    .example("$0 merge 'out/tokens-*-of-00128.npy' -o all.npy", 'the shards of one job, by glob')
    .epilogue(
      'When shards are missing, unfinished or changed nothing is written, stdout gets the indices to rerun as a ' +
        'ready Slurm option (--array=3,17,40-42) and the exit code is 2.',
    ) as unknown as Argv<MergeArgs>;
}

/** Library messages name option fields; here they become flags. */
const FLAGS: [RegExp, string][] = [
  [/\bfor output\b/, 'for -o'],
  [/\bfor shards\b/, 'for the shards argument'],
  [/\bset overwrite\b/, 'add --overwrite'],
];

export async function handler(argv: ArgumentsCamelCase<MergeArgs>): Promise<void> {
  try {
    const s = await mergeShards({ shards: argv.shards, output: argv.output, overwrite: argv.overwrite });
    if (s.removedTemps.length) notice(argv, removedTempsNotice(s.removedTemps));
    if (argv.json) printJson(s);
    notice(
      argv,
      `merge: ${s.shards} shards, ${s.records} records (${s.failed} failed) in ${s.files.join(' + ')}; ` +
        `${s.elapsedSeconds.toFixed(1)} s; marked done: ${s.marker}`,
    );
  } catch (err) {
    if (err instanceof IncompleteShardsError) {
      if (argv.json) printJson({ missing: err.indices, array: err.array });
      else io.stdout(`--array=${err.array}\n`);
    }
    if (err instanceof StyledVqError) {
      let message = err.message;
      for (const [re, flag] of FLAGS) message = message.replace(re, flag);
      if (message !== err.message) throw new StyledVqError(err.kind, message, { cause: err });
    }
    throw err;
  }
}
