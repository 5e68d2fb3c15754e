/**
 * `concat`: our 36 styled tokens + an external VQ-VAE's codes -> one combined JSONL line
 * per image, and the layout file that says how to take the sequences apart again.
 * Both files are written whole or not at all; with unmatched images (and no
 * `allowUnmatched`) nothing is written.
 */
import { extname } from 'node:path';
import { inputError, usageError, msg, opt } from '../errors';
import type { ModelRef } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import { checkOutputPath, ensureParentDir } from '../io/output-path';
import { inArray, positiveInteger, isInteger, invalidParameter } from '../util/checks';
import { AtomicStreamWriter } from '../io/atomic-stream';
import { removeStaleTemps } from '../io/temp-files';
import { CombinedLineEncoder } from './combined-record';
import { type ExternalCodes, readExternalCodes, stemOf } from './external-codes';
import { buildLayout, type Layout, type LayoutKind, LAYOUT_KINDS, type Special } from './layout';
import { type MatchBy, MATCH_MODES, sample } from './match';
import { streamStyledTokens } from './styled-input';
import { DEFAULTS } from '../defaults';

export interface ConcatOptions {
  /** tokens.json, a JSONL of records, or a batch .npy (with its .sources.json). */
  styled: string;
  /** A .npy, a folder of .npy (matched by stem), or .json / .jsonl. */
  external: string;
  /** The combined JSONL. */
  output: string;
  /** Default `<output stem>.layout.json`. */
  layoutOutput?: string;
  layout?: LayoutKind;
  special?: Partial<Record<Special, boolean>>;
  /**
   * The styled model: its codebook size K, tokens per image (default: the records') and its
   * identity (checked against the records' fingerprint when given).
   */
  model: { vocabSize: number; numTokens?: number; ref?: ModelRef & { fingerprints?: readonly string[] } };
  /** Accept records of another model than `model.ref` (the layout then names the records' model). */
  force?: boolean;
  externalName?: string;
  externalVocab?: number;
  augIndex?: number;
  match?: MatchBy | 'auto';
  /** Write the images that paired and report the rest, instead of failing. */
  allowUnmatched?: boolean;
  /** Replace an existing output and layout file. */
  overwrite?: boolean;
  /** Called every 10,000 records with (records read, external entries). */
  onProgress?: (seen: number, externalCount: number) => void;
}

export interface ConcatSummary {
  output: string;
  layoutFile: string;
  layout: Layout;
  matchedBy: MatchBy;
  written: number;
  /** Sources of our failed inputs (error records): not concatenated. */
  failed: string[];
  unmatchedStyled: string[];
  unmatchedExternal: string[];
  /** Temporary files an interrupted concat into the same output had left, removed first. */
  removedTemps: string[];
}

export function defaultLayoutPath(output: string): string {
  return `${output.slice(0, output.length - extname(output).length)}.layout.json`;
}

export async function concatCodes(options: ConcatOptions): Promise<ConcatSummary> {
  const kind = inArray('layout', options.layout ?? DEFAULTS.concat.layout, LAYOUT_KINDS);
  const match = inArray('match', options.match ?? DEFAULTS.concat.match, MATCH_MODES);
  const externalVocab = positiveInteger('externalVocab', options.externalVocab ?? DEFAULTS.concat.externalVocab);
  if (options.augIndex !== undefined && (!isInteger(options.augIndex) || options.augIndex < 0))
    throw invalidParameter('augIndex', 'non-negative integer', options.augIndex);
  if (extname(options.output).toLowerCase() !== '.jsonl')
    throw usageError(
      msg`${opt('output', options.output)}: combined sequences are written as JSONL; name it <something>.jsonl`,
    );
  const layoutOutput = options.layoutOutput ?? defaultLayoutPath(options.output);
  if (layoutOutput === options.output) throw usageError('The layout file and the output must differ');
  await checkOutputPath(options.output, [options.styled, options.external], 'output', { overwrite: options.overwrite });
  await checkOutputPath(layoutOutput, [options.styled, options.external], 'layoutFile', {
    overwrite: options.overwrite,
  });

  // What a concat killed outright into the same files left behind (issue 15.17).
  const removedTemps = [...(await removeStaleTemps(options.output)), ...(await removeStaleTemps(layoutOutput))];

  const vocabSize = positiveInteger('model.vocabSize', options.model.vocabSize);
  const ref = options.model.ref;
  const external = await readExternalCodes(options.external, {
    vocabSize: externalVocab,
    augIndex: options.augIndex,
    numericOrder: match === 'order',
  });
  const by: MatchBy = match === 'auto' ? (external.keyed ? 'stem' : 'order') : match;
  if (by === 'stem' && !external.keyed)
    throw usageError(
      msg`${external.path} holds rows without names: it can only be matched by order (${opt('match', 'order')})`,
    );
  const keyIndex = by === 'stem' ? indexKeys(external) : undefined;
  const used = new Uint8Array(external.count);

  // One pass over our tokens, pairing and writing as they come: memory stays flat however many.
  const out = await AtomicStreamWriter.open(options.output);
  const shape = { numTokens: options.model.numTokens, vocabSize };
  const failed: string[] = [];
  const unmatchedStyled: string[] = [];
  const ourStems = by === 'stem' ? new Map<string, string>() : undefined;
  let layout: Layout | undefined;
  let encoder: CombinedLineEncoder | undefined;
  let model: ModelRef | undefined;
  let seen = 0;
  let written = 0;
  try {
    for await (const batch of streamStyledTokens(options.styled, shape))
      for (const s of batch) {
        const index = seen++;
        if (!model) {
          model = s.model;
          // fingerprints: the package's variants and the packages it has the same tokens as.
          if (ref && !(ref.fingerprints ?? [ref.fingerprint]).includes(model.fingerprint) && !options.force) {
            throw inputError(
              msg`${options.styled} was made by model "${model.name}" (fingerprint ${model.fingerprint}), but the model is "${ref.name}" (fingerprint ${ref.fingerprint}); use the matching ${opt('model')}, or ${opt('force', true)}`,
            );
          }
        }
        let e: number | undefined;
        if (ourStems) {
          const stem = stemOf(s.source);
          const other = ourStems.get(stem);
          if (other !== undefined)
            throw inputError(
              msg`${options.styled}: ${JSON.stringify(other)} and ${JSON.stringify(s.source)} share the file stem "${stem}"; matching by stem would be ambiguous (use ${opt('match', 'order')})`,
            );
          ourStems.set(stem, s.source);
          e = keyIndex!.get(stem);
        } else e = index < external.count ? index : undefined;
        if (e !== undefined) used[e] = 1;
        if (s.error !== undefined) {
          failed.push(s.source);
          continue;
        }
        if (e === undefined) {
          unmatchedStyled.push(s.source);
          continue;
        }
        const entry = external.entry(e);
        layout ??= buildLayout({
          kind,
          styled: { model, vocab_size: vocabSize, tokens_per_image: shape.numTokens ?? s.tokens!.length },
          external: {
            tokenizer: options.externalName ?? DEFAULTS.concat.externalName,
            vocab_size: externalVocab,
            tokens_per_image: external.tokensPerImage,
            npy: external.npy,
            aug_index: external.augmentations ? (options.augIndex ?? 0) : null,
          },
          special: options.special ?? {},
        });
        encoder ??= new CombinedLineEncoder(layout, (bytes) => out.write(bytes));
        const codes = entry.load();
        const pending = encoder.add({
          source: s.source,
          externalSource: entry.label,
          styled: s.tokens!,
          external: codes instanceof Promise ? await codes : codes, // no await per row when it is in memory
        });
        if (pending) await pending;
        written++;
        if (written % 10_000 === 0) options.onProgress?.(seen, external.count);
      }
    if (!seen) throw inputError(`${options.styled} holds no token records`);
    if (by === 'order' && seen !== external.count) {
      throw inputError(
        `${options.styled} has ${seen} records (failed inputs included) but ${external.path} has codes for ${external.count} images: ` +
          'matching by order needs the same count (match by file stem with a folder of .npy files or keyed JSON)',
      );
    }
    const unmatchedExternal: string[] = [];
    for (let i = 0; i < external.count; i++) if (!used[i]) unmatchedExternal.push(external.entry(i).label);
    if ((unmatchedStyled.length || unmatchedExternal.length) && !options.allowUnmatched) {
      const parts = [
        unmatchedStyled.length
          ? `${unmatchedStyled.length} record(s) without external codes (${sample(unmatchedStyled)})`
          : '',
        unmatchedExternal.length
          ? `${unmatchedExternal.length} external entr${unmatchedExternal.length === 1 ? 'y' : 'ies'} without a record (${sample(unmatchedExternal)})`
          : '',
      ].filter(Boolean);
      throw inputError(
        msg`Unmatched images: ${parts.join('; ')}. Nothing written; ${opt('allowUnmatched', true)} writes the pairs and reports the rest`,
      );
    }
    if (!written || !layout) {
      if (!failed.length && !unmatchedStyled.length)
        throw inputError(`No image of ${options.styled} pairs with codes in ${options.external}`);
      throw inputError(
        failed.length === seen
          ? `${options.styled} holds no tokens (every input failed)`
          : `No image of ${options.styled} pairs with codes in ${options.external}`,
      );
    }
    options.onProgress?.(seen, external.count);
    await encoder?.flush();
    // Both files written and synced before either is renamed: a combined file without its
    // layout is unusable, so a layout that cannot be written leaves neither (issue 15.12).
    await ensureParentDir(layoutOutput);
    const layoutOut = await AtomicStreamWriter.open(layoutOutput);
    try {
      await layoutOut.write(`${formatPretty(layout)}\n`);
      await out.sync();
      await layoutOut.sync();
      await out.commit();
      await layoutOut.commit();
    } catch (err) {
      await layoutOut.abort();
      throw err;
    }
    return {
      output: options.output,
      layoutFile: layoutOutput,
      layout,
      matchedBy: by,
      written,
      failed,
      unmatchedStyled,
      unmatchedExternal,
      removedTemps,
    };
  } catch (err) {
    await out.abort();
    throw err;
  } finally {
    await external.close();
  }
}

/** Stem -> entry index of keyed codes; duplicated names are an error. */
function indexKeys(external: ExternalCodes): Map<string, number> {
  const keys = new Map<string, number>();
  const dup: string[] = [];
  for (let i = 0; i < external.count; i++) {
    const k = external.entry(i).key!;
    if (keys.has(k)) dup.push(`"${k}"`);
    else keys.set(k, i);
  }
  if (dup.length) throw inputError(`${external.path}: several entries share the name ${sample(dup)}`);
  return keys;
}
