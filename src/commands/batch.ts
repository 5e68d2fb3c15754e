import type { Argv, ArgumentsCamelCase } from 'yargs';
import { inputError, interruptedError, StyledVqError, terminatedError, usageError } from '../errors';
import { DEFAULTS } from '../defaults';
import { countInputs } from '../batch/input-list';
import { BATCH_FORMATS, type BatchFormat } from '../batch/output-paths';
import { progressView } from '../cli/progress';
import { type BatchSummary, runBatch } from '../batch/run-batch';
import { parseShard, SHARD_INDEX_VARIABLES, shardFromEnvironment, shardRange, type ShardSpec } from '../batch/shard';
import { announce, type GlobalArgs, notice, integerArg, printJson, withModel } from '../cli/globals';
import { IMAGE_READ_OPTIONS, type ImageReadArgs, imageOptions } from '../cli/image-options';
import { removedTempsNotice, stopGracefully } from '../cli/interrupts';

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
  shard?: string;
  shards?: number;
  'shard-from-env'?: string;
  'inputs-are-shard'?: boolean;
}

export const command = 'batch <inputs...>';
export const describe =
  'Tokenize a whole folder, glob or list of images into one JSONL or .npy output (streaming, resumable)';

export function builder(y: Argv<GlobalArgs>): Argv<BatchArgs> {
  return y
    .positional('inputs', {
      type: 'string',
      array: true,
      demandOption: true,
      describe:
        'Folders (image files by extension), quoted globs ("photos/**/*.jpg"), list files (.txt: one path per line) ' +
        'or images',
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        demandOption: true,
        requiresArg: true,
        describe: 'out.jsonl (one record per input) or out.npy',
      },
      format: {
        type: 'string',
        choices: BATCH_FORMATS,
        describe: 'jsonl, or npy: int32 [N,36] + <stem>.sources.json',
        defaultDescription: 'from the -o extension',
      },
      recursive: { alias: 'r', type: 'boolean', default: false, describe: 'Include subfolders of folder inputs' },
      'batch-size': {
        type: 'string',
        requiresArg: true,
        describe: 'Images per ONNX Runtime run',
        defaultDescription: `${DEFAULTS.batchSizes.cpu.batch} on CPU, ${DEFAULTS.batchSizes.cuda.batch} on CUDA, ${DEFAULTS.batchSizes.webgpu.batch} on WebGPU`,
        coerce: (v: unknown) => integerArg('batchSize', v),
      },
      concurrency: {
        type: 'string',
        requiresArg: true,
        describe: 'Images decoded and resized at once (worker threads)',
        defaultDescription: `one per core (${DEFAULTS.batch.concurrency()} here)`,
        coerce: (v: unknown) => integerArg('concurrency', v),
      },
      resume: {
        type: 'boolean',
        describe: 'Finish an interrupted run into the same output (inputs already written are skipped)',
      },
      overwrite: {
        type: 'boolean',
        alias: 'force',
        describe: 'Replace an existing output (removed only once the new run has started; --force is the old name)',
      },
      latents: {
        type: 'boolean',
        default: false,
        describe: 'Also store the continuous latents (records, or float32 [N,36,D] <stem>.latents.npy)',
      },
      shard: {
        type: 'string',
        requiresArg: true,
        describe:
          'Write only shard I of N (0-based): a contiguous slice of the inputs, into <out>-000II-of-000NN.<ext> (or ' +
          '{shard}/{shards} in -o)',
      },
      shards: {
        type: 'number',
        requiresArg: true,
        describe: `Number of shards, this task's index from the engine: $${SHARD_INDEX_VARIABLES.join(', then $')}`,
        coerce: (v: unknown) => integerArg('shards', v),
      },
      'shard-from-env': {
        type: 'string',
        requiresArg: true,
        describe: 'With --shards: the variable that holds the shard index (e.g. RAY_SHARD)',
      },
      'inputs-are-shard': {
        type: 'boolean',
        describe:
          "With --shard/--shards: the inputs are this shard's own (a webdataset tar or list per task): take them whole, name and mark the output as the shard",
      },
      ...IMAGE_READ_OPTIONS,
    })
    .conflicts('resume', 'overwrite')
    .conflicts('shard', 'shards')
    .conflicts('shard', 'shard-from-env')
    .example('$0 batch photos/ -o tokens.jsonl', 'every image in photos/, one record per line')
    .example('$0 batch photos/ -r -o tokens.npy', 'all subfolders too; int32 [N,36] + tokens.sources.json')
    .example('$0 batch "data/**/*.png" list.txt -o tokens.jsonl', 'a quoted glob, then the paths listed in list.txt')
    .example('$0 batch photos/ -o tokens.jsonl --resume', 'finish a run that was interrupted (Ctrl-C, kill, power cut)')
    .example(
      '$0 batch list.txt --shard 3/128 -o out/tokens.jsonl --resume',
      'shard 3 of 128 -> out/tokens-00003-of-00128.jsonl (+ .done.json)',
    )
    .example(
      '$0 batch list.txt --shards 128 -o out/tokens.jsonl --resume',
      'the shard index from $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX',
    )
    .example(
      '$0 batch shard-00012.tar -o tokens-00012.jsonl',
      'the images of a webdataset tar, keys kept',
    ) as unknown as Argv<BatchArgs>;
}

function summaryLine(s: BatchSummary): string {
  const skipped = s.skipped
    ? `, ${s.skipped} skipped (already in the output${s.skippedFailed ? `, ${s.skippedFailed} of them failed` : ''})`
    : '';
  const ignored = s.ignored
    ? `; ${s.ignored} file${s.ignored === 1 ? '' : 's'} without an image extension ignored`
    : '';
  return (
    `batch: ${s.done} done, ${s.failed} failed${skipped}; ${s.total} records in ${s.files.join(' + ')}; ` +
    `${s.elapsedSeconds.toFixed(1)} s, ${s.imagesPerSecond.toFixed(1)} images/s${ignored}`
  );
}

/** The shard the flags name: --shard I/N, or --shards N with the index from the engine's variable. */
export function shardArg(
  argv: Pick<BatchArgs, 'shard' | 'shards' | 'shard-from-env' | 'inputs-are-shard'>,
  env: Record<string, string | undefined>,
): ShardSpec | undefined {
  if (argv['inputs-are-shard'] && argv.shard === undefined && argv.shards === undefined)
    throw usageError('--inputs-are-shard needs --shard I/N or --shards N (which shard the inputs are)');
  if (argv.shard !== undefined) return parseShard(argv.shard);
  if (argv['shard-from-env'] !== undefined && argv.shards === undefined)
    throw usageError('--shard-from-env needs --shards N (the number of shards)');
  if (argv.shards === undefined) return undefined;
  return shardFromEnvironment(argv.shards, env, argv['shard-from-env']);
}

export async function handler(argv: ArgumentsCamelCase<BatchArgs>): Promise<void> {
  const shard = shardArg(argv, process.env);
  // SIGTERM (what Slurm, Kubernetes and Ray send before SIGKILL) is handled like Ctrl-C:
  // finish the batch in flight, sync, release the lock, exit 143 (130 for SIGINT).
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    notice(
      argv,
      `${signal}: stopping after the current batch (a second signal quits at once; the output stays resumable ` +
        `either way)`,
    );
    controller.abort();
  };
  // bin/ hands the first signal here; a second one ends the process (removing the temporaries being written).
  const stopHandling = stopGracefully(onSignal);
  try {
    await withModel(argv, async (model) => {
      const view = progressView({ stream: process.stderr, quiet: argv.quiet });
      // The total is only for the progress bar: counted alongside, never waited for.
      const counting = new AbortController();
      void countInputs(argv.inputs, { recursive: argv.recursive, signal: counting.signal }).then(
        (n) =>
          counting.signal.aborted ||
          view.setTotal(shard && !argv['inputs-are-shard'] ? shardRange(n, shard).end - shardRange(n, shard).start : n),
        () => undefined,
      );
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
          shard,
          inputsAreShard: argv['inputs-are-shard'],
          ...imageOptions(argv),
        });
      } catch (err) {
        throw resumableHint(err, argv.output);
      } finally {
        counting.abort();
        view.stop();
      }
      announce(argv, summary.execution);
      if (summary.lockTakenOver) notice(argv, `took over the stale lock of ${summary.lockTakenOver}`);
      if (summary.removedTemps.length) notice(argv, removedTempsNotice(summary.removedTemps));
      if (summary.markerInvalid)
        notice(argv, `the done marker of ${summary.output} did not hold (${summary.markerInvalid}); redone`);
      if (summary.repairedBytes)
        notice(
          argv,
          `cut ${summary.repairedBytes} bytes of an interrupted write from the end of the output; those inputs were ` +
            `redone`,
        );
      if (summary.preprocess.fallback) notice(argv, `preprocessing on the main thread: ${summary.preprocess.fallback}`);
      if (summary.alreadyComplete)
        notice(argv, `${summary.output} is already complete (${summary.total} records); nothing to do`);
      else notice(argv, summaryLine(summary));
      if (argv.json) printJson(summary);
      if (summary.interrupted) {
        const message = `interrupted: ${summary.total} inputs are in ${summary.files[0]}; to finish, run the same command with --resume`;
        throw stoppedBy === 'SIGTERM'
          ? terminatedError(message.replace('interrupted', 'terminated (SIGTERM)'))
          : interruptedError(message);
      }
      if (summary.allFailed) {
        throw inputError(
          `every one of the ${summary.total} inputs failed (see the error records in ${summary.files[0]}); not ` +
            `marked done`,
        );
      }
    });
  } finally {
    stopHandling();
  }
}

/** A disk that filled up mid-run: what was written stays, and --resume finishes it. */
function resumableHint(err: unknown, output: string): unknown {
  const code = ((err as Error)?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof StyledVqError) || !code || !['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO'].includes(code)) return err;
  return new StyledVqError(
    err.kind,
    `${err.message}; the records written so far are kept: free some space, then run the same command with --resume ` +
      `to finish ${output}`,
    { cause: err },
  );
}
