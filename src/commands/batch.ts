import type { Argv, ArgumentsCamelCase } from 'yargs';
import { interruptedError, StyledVqError } from '../errors';
import { BATCH_DEFAULTS } from '../batch/defaults';
import { countInputs } from '../batch/input-list';
import { BATCH_FORMATS, BatchFormat } from '../batch/output-paths';
import { progressView } from '../batch/progress-view';
import { BatchSummary, runBatch } from '../batch/run-batch';
import { announce, GlobalArgs, notice, positiveIntegerArg, printJson, withModel } from '../cli/globals';
import { IMAGE_READ_OPTIONS, ImageReadArgs, imageOptions } from '../cli/image-options';

export interface BatchArgs extends GlobalArgs, ImageReadArgs {
  inputs: string[];
  output: string;
  format?: BatchFormat;
  recursive: boolean;
  'batch-size'?: number;
  concurrency?: number;
  resume?: boolean;
  overwrite?: boolean;
  latents: boolean;
}

export const command = 'batch <inputs...>';
export const describe = 'Tokenize a whole folder, glob or list of images into one JSONL or .npy output (streaming, resumable)';

export function builder(y: Argv<GlobalArgs>): Argv<BatchArgs> {
  return y
    .positional('inputs', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: 'Folders (image files by extension), quoted globs ("photos/**/*.jpg"), list files (.txt: one path per line) or images',
    })
    .options({
      output: { alias: 'o', type: 'string', demandOption: true, requiresArg: true, describe: 'out.jsonl (one record per input) or out.npy' },
      format: { type: 'string', choices: BATCH_FORMATS, describe: 'jsonl, or npy: int32 [N,36] + <stem>.sources.json', defaultDescription: 'from the -o extension' },
      recursive: { alias: 'r', type: 'boolean', default: false, describe: 'Include subfolders of folder inputs' },
      'batch-size': {
        type: 'string',
        requiresArg: true,
        describe: 'Images per ONNX Runtime run',
        defaultDescription: String(BATCH_DEFAULTS.batchSize),
        coerce: (v: unknown) => positiveIntegerArg('--batch-size', v),
      },
      concurrency: {
        type: 'string',
        requiresArg: true,
        describe: 'Images decoded and resized at once (worker threads)',
        defaultDescription: 'one per core',
        coerce: (v: unknown) => positiveIntegerArg('--concurrency', v),
      },
      resume: { type: 'boolean', describe: 'Finish an interrupted run into the same output (inputs already written are skipped)' },
      overwrite: { type: 'boolean', alias: 'force', describe: 'Replace an existing output (removed only once the new run has started; --force is the old name)' },
      latents: { type: 'boolean', default: false, describe: 'Also store the continuous latents (records, or float32 [N,36,D] <stem>.latents.npy)' },
      ...IMAGE_READ_OPTIONS,
    })
    .conflicts('resume', 'overwrite')
    .example('$0 batch photos/ -o tokens.jsonl', 'every image in photos/, one record per line')
    .example('$0 batch photos/ -r -o tokens.npy', 'all subfolders too; int32 [N,36] + tokens.sources.json')
    .example('$0 batch "data/**/*.png" list.txt -o tokens.jsonl', 'a quoted glob, then the paths listed in list.txt')
    .example('$0 batch photos/ -o tokens.jsonl --resume', 'finish a run that was interrupted (Ctrl-C, kill, power cut)') as unknown as Argv<BatchArgs>;
}

function summaryLine(s: BatchSummary): string {
  const skipped = s.skipped ? `, ${s.skipped} skipped (already in the output${s.skippedFailed ? `, ${s.skippedFailed} of them failed` : ''})` : '';
  const ignored = s.ignored ? `; ${s.ignored} file${s.ignored === 1 ? '' : 's'} without an image extension ignored` : '';
  return (
    `batch: ${s.done} done, ${s.failed} failed${skipped}; ${s.total} records in ${s.files.join(' + ')}; ` +
    `${s.elapsedSeconds.toFixed(1)} s, ${s.imagesPerSecond.toFixed(1)} images/s${ignored}`
  );
}

export async function handler(argv: ArgumentsCamelCase<BatchArgs>): Promise<void> {
  const controller = new AbortController();
  const onSigint = () => {
    notice(argv, 'stopping after the current batch (Ctrl-C again to quit at once; the output stays resumable either way)');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    await withModel(argv, async (model) => {
      const view = progressView({ stream: process.stderr, quiet: argv.quiet });
      // The total is only for the progress bar: counted alongside, never waited for.
      const counting = new AbortController();
      void countInputs(argv.inputs, { recursive: argv.recursive, signal: counting.signal }).then((n) => counting.signal.aborted || view.setTotal(n), () => undefined);
      let summary: BatchSummary;
      try {
        summary = await runBatch(model, {
          inputs: argv.inputs,
          output: argv.output,
          format: argv.format,
          recursive: argv.recursive,
          batchSize: argv['batch-size'],
          concurrency: argv.concurrency,
          latents: argv.latents,
          resume: argv.resume,
          overwrite: argv.overwrite,
          signal: controller.signal,
          onProgress: view.update,
          ...imageOptions(argv),
        });
      } catch (err) {
        throw resumableHint(err, argv.output);
      } finally {
        counting.abort();
        view.stop();
      }
      announce(argv, summary.execution);
      if (summary.repairedBytes) notice(argv, `cut ${summary.repairedBytes} bytes of an interrupted write from the end of the output; those inputs were redone`);
      if (summary.preprocess.fallback) notice(argv, `preprocessing on the main thread: ${summary.preprocess.fallback}`);
      if (summary.alreadyComplete) notice(argv, `${summary.output} is already complete (${summary.total} records); nothing to do`);
      else notice(argv, summaryLine(summary));
      if (argv.json) printJson(summary);
      if (summary.interrupted) {
        throw interruptedError(
          `interrupted: ${summary.total} inputs are in ${summary.files[0]}; to finish, run the same command with --resume`,
        );
      }
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** A disk that filled up mid-run: what was written stays, and --resume finishes it. */
function resumableHint(err: unknown, output: string): unknown {
  const code = ((err as Error)?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof StyledVqError) || !code || !['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO'].includes(code)) return err;
  return new StyledVqError(err.kind, `${err.message}; the records written so far are kept: free some space, then run the same command with --resume to finish ${output}`, { cause: err });
}
