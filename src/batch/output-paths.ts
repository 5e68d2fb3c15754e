/**
 * The files a batch run writes, and the checks made on them before any slow work.
 *
 * jsonl: the records are appended to the output itself (it is its own resume journal).
 * npy:   the records are appended to `<out>.journal.jsonl`; when every input is done the
 *        arrays are written from it (temporary file + rename) and the journal is removed:
 *          tokens.npy            int32 [N,36]
 *          tokens.latents.npy    float32 [N,36,D]   (with --latents)
 *          tokens.sources.json   the N sources in order, the model, the failed rows
 *        The sidecar is written last: it marks a complete output.
 */
import { promises as fs } from 'node:fs';
import { extname } from 'node:path';
import { usageError, msg, opt } from '../errors';
import { ioError } from '../io/io-errors';

export type BatchFormat = 'jsonl' | 'npy';
export const BATCH_FORMATS: readonly BatchFormat[] = ['jsonl', 'npy'];

/** jsonl: the output is its own journal. */
export interface JsonlPaths {
  format: 'jsonl';
  /** Where records are appended during the run: the output. */
  log: string;
}

/** npy: a journal during the run, then the arrays and the sidecar. */
export interface NpyPaths {
  format: 'npy';
  /** Where records are appended during the run: `<out>.journal.jsonl`. */
  log: string;
  tokens: string;
  latents: string;
  sidecar: string;
}

export type BatchPaths = JsonlPaths | NpyPaths;

/** The format an output name implies when none is given: .npy -> npy, else jsonl. */
export function formatFor(output: string, format?: BatchFormat): BatchFormat {
  const ext = extname(output).toLowerCase();
  const implied: BatchFormat = ext === '.npy' ? 'npy' : 'jsonl';
  const chosen = format ?? implied;
  if (chosen === 'npy' && ext !== '.npy')
    throw usageError(
      msg`${opt('output', output)}: ${opt('format', 'npy')} writes a .npy file; name it <something>.npy`,
    );
  if (chosen === 'jsonl' && ext !== '.jsonl')
    throw usageError(
      msg`${opt('output', output)}: batch writes JSONL (name it <something>.jsonl) or, with a .npy name, NumPy arrays`,
    );
  return chosen;
}

export function batchPaths(output: string, format: BatchFormat): BatchPaths {
  if (format === 'jsonl') return { format, log: output };
  const stem = output.slice(0, output.length - extname(output).length);
  return {
    format,
    log: `${output}.journal.jsonl`,
    tokens: output,
    latents: `${stem}.latents.npy`,
    sidecar: `${stem}.sources.json`,
  };
}

const exists = async (p: string) => !!(await fs.stat(p).catch(() => null));

/** Files of a finished npy output (no journal, sidecar present). */
export async function npyComplete(paths: NpyPaths): Promise<boolean> {
  return !(await exists(paths.log)) && (await exists(paths.sidecar));
}

/**
 * Without resume an existing output is never overwritten silently: refuse, or with
 * `overwrite` return what a previous run left, for the caller to remove once the new run
 * has started (model loaded, inputs found): a run that cannot start leaves it intact.
 */
export async function claimOutputs(
  paths: BatchPaths,
  options: { resume: boolean; overwrite: boolean },
): Promise<string[]> {
  if (options.resume) {
    // An .npy without journal or sidecar is not ours to finish: never overwrite it silently.
    if (
      paths.format === 'npy' &&
      (await exists(paths.tokens)) &&
      !(await exists(paths.log)) &&
      !(await exists(paths.sidecar))
    ) {
      throw usageError(
        msg`${paths.tokens} exists but no batch run is recorded for it (no ${paths.log}, no ${paths.sidecar}); use ${opt('overwrite', true)} to replace it`,
      );
    }
    return [];
  }
  const present: string[] = [];
  const files = paths.format === 'npy' ? [paths.log, paths.tokens, paths.latents, paths.sidecar] : [paths.log];
  for (const p of files) if ((await exists(p)) && !present.includes(p)) present.push(p);
  if (!present.length) return [];
  if (!options.overwrite) {
    const interrupted = paths.format === 'npy' && present.includes(paths.log);
    const what = interrupted ? `${paths.log} (an interrupted run's journal)` : present.join(', ');
    throw usageError(
      msg`Output exists: ${what}; add ${opt('resume', true)} to continue the run that wrote it, or ${opt('overwrite', true)} to start over`,
    );
  }
  return present;
}

/** Remove the files of a replaced output (see claimOutputs). */
export async function removeReplaced(files: readonly string[]): Promise<void> {
  for (const f of files) {
    try {
      await fs.rm(f, { force: true });
    } catch (err) {
      throw ioError(err, f, 'remove');
    }
  }
}
