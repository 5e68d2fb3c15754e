/**
 * Global CLI options, typed once so flags and argv cannot drift, and the small helpers
 * every handler shares (opening the model, notices on stderr, JSON on stdout).
 */
import type { Options } from 'yargs';
import { DEFAULTS } from '../defaults';
import { usageError } from '../errors';
import { DTYPES, type Dtype } from '../model/manifest';
import { Model } from '../model/model';
import { parseDtype } from '../model/variant';
import { type Device, DEVICE_NAMES, type ExecutionInfo, parseDevice } from '../runtime/onnx';
import { invalidParameter } from '../util/checks';
import { cliMessage } from './flags';

export interface GlobalArgs {
  model?: string;
  device: Device;
  dtype: Dtype;
  threads?: number;
  quiet: boolean;
  json: boolean;
  debug: boolean;
}

export const GLOBAL_OPTIONS: { [K in keyof GlobalArgs]-?: Options } = {
  model: {
    type: 'string',
    describe: `Model package directory (default: $${DEFAULTS.modelEnv}, then the shipped default in models/)`,
    requiresArg: true,
  },
  device: {
    type: 'string',
    default: DEFAULTS.device,
    describe: `Execution provider: ${DEVICE_NAMES.join(' | ')}; auto uses CUDA where it is set up (\`setup cuda\`) and loads, else CPU`,
    requiresArg: true,
    coerce: parseDevice,
  },
  dtype: {
    type: 'string',
    default: DEFAULTS.dtype,
    describe: `Graph precision: ${DTYPES.join(' | ')}; fp16 runs the package's float16 encoder and decoder (made by training/fp16.py; for GPUs)`,
    requiresArg: true,
    coerce: parseDtype,
  },
  threads: {
    type: 'string',
    describe: `ONNX Runtime threads (default: all cores, ${DEFAULTS.threads()} here)`,
    requiresArg: true,
    coerce: (v: unknown) => integerArg('threads', v),
  },
  quiet: { type: 'boolean', alias: 'q', default: false, describe: 'No notices or progress bars on stderr' },
  json: { type: 'boolean', default: false, describe: 'Machine-readable JSON on stdout' },
  debug: { type: 'boolean', default: false, describe: 'Stack traces and ONNX Runtime logs on errors' },
};

/**
 * A whole-number flag, checked like the library's options (util/checks.ts) and named by
 * its flag. Read as text: yargs' own number parsing turns "abc" into NaN. yargs passes on
 * only the message of an error thrown here, so it is rendered in the CLI's words now.
 */
export function integerArg(field: string, v: unknown, min: 0 | 1 = 1): number {
  const text = Array.isArray(v) ? v[v.length - 1] : v;
  const n = typeof text === 'string' && /^\s*\d+\s*$/.test(text) ? Number(text) : typeof text === 'number' ? text : NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw usageError(cliMessage(invalidParameter(field, min ? 'positive integer' : 'non-negative integer', text)));
  return n;
}

/** Where handlers write (tests capture the process streams themselves: test/helpers/cli.ts). */
export const io = {
  stdout: (text: string) => void process.stdout.write(text),
  stderr: (text: string) => void process.stderr.write(text),
} as const;

/** A notice on stderr, unless --quiet. */
export function notice(argv: GlobalArgs, message: string): void {
  if (!argv.quiet) io.stderr(`styled-vq: ${message}\n`);
}

/**
 * A human-readable status line ("wrote 3 records to t.jsonl"): a message, so it goes to
 * stderr, and --quiet or --json silence it. Data (records, images, --json reports) is
 * the only thing on stdout.
 */
export function say(argv: GlobalArgs, line: string): void {
  if (!argv.json && !argv.quiet) io.stderr(`${line}\n`);
}

/** A result line that is the command's data (e.g. reconstruct's PSNR/SSIM): stdout, even with -q. */
export function result(argv: GlobalArgs, line: string): void {
  if (!argv.json) io.stdout(`${line}\n`);
}

/** A --json report: one compact line on stdout. */
export function printJson(value: unknown): void {
  io.stdout(`${JSON.stringify(value)}\n`);
}

/** Announce a fallback ('auto' could not use CUDA): never silent. */
export function announce(argv: GlobalArgs, execution: ExecutionInfo | undefined): void {
  if (execution?.fallback) {
    notice(
      argv,
      `running on ${execution.provider.toUpperCase()}: ${execution.fallback}; --device cpu skips the attempt`,
    );
  }
}

/** Open the model the flags name, run `fn`, and release every session, also on failure. */
export async function withModel<T>(argv: GlobalArgs, fn: (model: Model) => Promise<T>): Promise<T> {
  const model = await Model.open({ model: argv.model, device: argv.device, dtype: argv.dtype, threads: argv.threads });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}
