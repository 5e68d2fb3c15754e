/**
 * Resuming a batch run: which records of an existing log can be trusted, and where the
 * log must be cut.
 *
 * Records are written in input order, so the inputs already done are always a prefix of
 * the listing. A line is trusted only when it ends in "\n", parses, is a styled-vq record
 * of the loaded model, and names the input the listing has at that position. The first
 * line that is cut off or unparseable (what a crash or power cut leaves: a partial line,
 * a hole of zero bytes) ends the trusted part; it and everything after it are dropped and
 * redone. A complete, parseable line that disagrees (another input, another model, not a
 * token record) is not a torn write: that stops the run with a message instead of
 * throwing away data the user may care about.
 */
import { promises as fs } from 'node:fs';
import { type MessageText, type StyledVqError, usageError, msg, opt } from '../errors';
import type { Preprocessing } from '../model/manifest';
import { checkRecordForModel, isErrorRecord, type ModelRef, type ModelShape, parseRecord } from '../tokens/record';
import type { ListedInput } from './input-list';
import { readLines } from '../io/line-reader';
import type { Peekable } from './peekable';

export interface RecoveredLog {
  /** Trusted records: the first `count` inputs are done. */
  count: number;
  /** Of those, error records. */
  failed: number;
  /** Length of the trusted part in bytes; the log is cut here before appending. */
  trustedBytes: number;
  /** Bytes after the trusted part (an interrupted write), dropped. */
  droppedBytes: number;
}

export interface RecoverOptions {
  /** Whether this run stores latents: a resumed run must match the first one. */
  latents: boolean;
  /** How this run handles alpha (alphaText): it changes tokens, so it must match the records' (issue 15.8). */
  alpha: string;
  /** The loaded model's preprocessing: the records' must be the same (apart from alpha, checked above). */
  preprocessing?: Preprocessing;
}

/** Preprocessing without alpha, keys sorted: two records were made alike iff these are equal. */
const preprocessingKey = (p: Preprocessing) =>
  JSON.stringify(
    Object.keys(p)
      .filter((k) => k !== 'alpha')
      .sort()
      .map((k) => [k, p[k]]),
  );

const restart = msg`use a new ${opt('output')}, or ${opt('force', true)} to start over`;

/** A resumed run that handles alpha differently from the run that wrote `where` (one line, naming the flag). */
export function alphaDiffers(where: MessageText, before: string, now: string): StyledVqError {
  const how = (a: string) =>
    a === 'drop'
      ? msg`without ${opt('background')} (alpha dropped)`
      : msg`with ${opt('background', a.replace(/^background:/, ''))}`;
  return usageError(
    msg`${where} was made ${how(before)}, this run is ${how(now)}; resume with the same ${opt('background')} as the first run, or ${restart}`,
  );
}

/**
 * An output made by other graphs than the loaded ones (one line): the same package's other
 * dtype says which `dtype` made it (fp16 graphs have their own fingerprint), anything else
 * asks for the first run's `model` and `dtype`. `verb`: what the user does next.
 */
export function modelDiffers(
  where: MessageText,
  made: ModelRef,
  model: ModelShape,
  restartWith: MessageText,
  verb: 'resume' | 'rerun' = 'resume',
): StyledVqError {
  const madeDtype = model.dtypeOf?.(made.fingerprint);
  if (madeDtype && model.dtype && madeDtype !== model.dtype)
    return usageError(
      msg`${where} was made with ${opt('dtype', madeDtype)} (model "${made.name}", fingerprint ${made.fingerprint}), this run uses ${opt('dtype', model.dtype)} (fingerprint ${model.fingerprint}); ${verb} with ${opt('dtype', madeDtype)}, or ${restartWith}`,
    );
  const loaded = model.dtype ? msg`, ${opt('dtype', model.dtype)}` : '';
  return usageError(
    msg`${where} was made by model "${made.name}" (fingerprint ${made.fingerprint}), but the loaded model is "${model.name}" (fingerprint ${model.fingerprint}${loaded}); ${verb} with the same ${opt('model')} and ${opt('dtype')} as the first run, or ${restartWith}`,
  );
}

/**
 * Scan `path` and consume from `inputs` every input it already holds. A missing file is
 * an empty log.
 */
export async function recoverLog(
  path: string,
  inputs: Peekable<ListedInput>,
  model: ModelShape,
  options: RecoverOptions,
): Promise<RecoveredLog> {
  const size = (await fs.stat(path).catch(() => null))?.size;
  if (size === undefined) return { count: 0, failed: 0, trustedBytes: 0, droppedBytes: 0 };
  let count = 0;
  let failed = 0;
  let trustedBytes = 0;
  // A line over the record limit can only be an interrupted write (a run of zero bytes left by a
  // crash): skipped without being held, and cut like any torn tail.
  for await (const line of readLines(path, { tooLong: 'yield' })) {
    if (!line.terminated || line.tooLong) break;
    let raw: unknown;
    try {
      raw = JSON.parse(line.text);
    } catch {
      break; // torn: cut here
    }
    const where = `${path} line ${count + 1}`;
    const record = parseRecord(raw, msg`${where} (not a styled-vq batch output? ${restart})`);
    if (record.model.fingerprint !== model.fingerprint) throw modelDiffers(where, record.model, model, restart);
    const expected = await inputs.peek();
    if (!expected)
      throw usageError(
        msg`${where}: the output holds more records than there are inputs now; the inputs changed since the first run (${restart})`,
      );
    if (record.source !== expected.source) {
      throw usageError(
        msg`${where} records ${JSON.stringify(record.source)} but input ${count + 1} is now ${JSON.stringify(expected.source)}: the inputs (or the folder they were named from) changed since the first run; ${restart}`,
      );
    }
    if (!isErrorRecord(record)) {
      if (options.latents && !record.latents)
        throw usageError(
          msg`${where} has no latents: the first run did not use ${opt('latents', true)}; resume without it`,
        );
      if (!options.latents && record.latents)
        throw usageError(
          msg`${where} has latents: the first run used ${opt('latents', true)}; resume with ${opt('latents', true)} too`,
        );
      const alpha = record.preprocessing?.alpha;
      if (typeof alpha === 'string' && alpha !== options.alpha) throw alphaDiffers(where, alpha, options.alpha);
      if (record.preprocessing && options.preprocessing) {
        const [was, now] = [preprocessingKey(record.preprocessing), preprocessingKey(options.preprocessing)];
        if (was !== now)
          throw usageError(
            msg`${where} was made with other preprocessing (${was}) than the loaded model's (${now}); resume with the same ${opt('model')}, or ${restart}`,
          );
      }
      checkRecordForModel(record, model, where, { needLatents: options.latents });
    }
    await inputs.next();
    count++;
    if (isErrorRecord(record)) failed++;
    trustedBytes = line.end;
  }
  return { count, failed, trustedBytes, droppedBytes: size - trustedBytes };
}
