import type { Argv, ArgumentsCamelCase } from 'yargs';
import { EXTERNAL_OUTS, type ExternalOut, splitSequences } from '../concat/run-split';
import { sample } from '../concat/match';
import { type GlobalArgs, notice, printJson, say } from '../cli/globals';
import { OVERWRITE_OPTION, type OverwriteArgs } from '../cli/output-options';
import { DEFAULTS } from '../defaults';
import { removedTempsNotice } from '../cli/interrupts';

export interface SplitArgs extends GlobalArgs, OverwriteArgs {
  combined: string;
  output: string;
  'layout-file'?: string;
  'external-out': ExternalOut;
  'skip-invalid': boolean;
}

export const command = 'split <combined>';
export const describe =
  "Take combined sequences (concat output or a generator's) apart: tokens.jsonl for decode, .npy codes for the external decoder";

export function builder(y: Argv<GlobalArgs>): Argv<SplitArgs> {
  return y
    .positional('combined', {
      type: 'string',
      demandOption: true,
      describe: 'JSONL of combined sequences: concat records, bare id arrays, or objects with the sequence fields',
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        demandOption: true,
        requiresArg: true,
        describe: 'A new (or empty) folder for tokens.jsonl, external codes and split.json',
      },
      'layout-file': {
        type: 'string',
        requiresArg: true,
        describe: 'The layout concat wrote',
        defaultDescription: '<combined stem>.layout.json, then layout.json next to it',
      },
      'external-out': {
        type: 'string',
        choices: EXTERNAL_OUTS,
        default: DEFAULTS.concat.externalOut,
        describe: 'per-image: external/<name>.npy as the codes came in; single: external.npy [N, n]',
      },
      'skip-invalid': {
        type: 'boolean',
        default: false,
        describe: 'Leave out (and report) sequences that do not fit the layout instead of failing',
      },
      ...OVERWRITE_OPTION,
    })
    .example('$0 split train.jsonl -o parts/', 'parts/tokens.jsonl + parts/external/<name>.npy')
    .example(
      '$0 split samples.jsonl --layout-file train.layout.json -o gen/ --skip-invalid',
      "a generator's output; malformed samples are reported",
    ) as unknown as Argv<SplitArgs>;
}

export async function handler(argv: ArgumentsCamelCase<SplitArgs>): Promise<void> {
  const s = await splitSequences({
    input: argv.combined,
    layout: argv['layout-file'],
    outDir: argv.output,
    externalOut: argv['external-out'],
    skipInvalid: argv['skip-invalid'],
    overwrite: argv.overwrite,
  });
  if (s.removedTemps.length) notice(argv, removedTempsNotice(s.removedTemps));
  if (argv.json) printJson(s);
  else say(argv, `wrote ${s.written} images to ${s.outDir}: ${s.files.tokens}, ${s.files.external}`);
  if (s.skipped.length)
    notice(
      argv,
      `${s.skipped.length} sequence(s) did not fit the layout and were left out: ${sample(
        s.skipped.map((k) => k.error),
        2,
      )}`,
    );
}
