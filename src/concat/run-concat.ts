/**
 * `concat`: our 36 styled tokens + an external VQ-VAE's codes -> one combined JSONL line
 * per image, and the layout file that says how to take the sequences apart again.
 * Both files are written whole or not at all; with unmatched images (and no
 * `allowUnmatched`) nothing is written.
 */
import { extname } from 'node:path';
import { inputError, usageError } from '../errors';
import type { ModelRef } from '../tokens/record';
import { formatPretty } from '../tokens/token-file';
import { checkOutputPath, writeFileAtomic } from '../util/atomic';
import { inArray, positiveInteger, isInteger, invalidParameter } from '../util/checks';
import { AtomicStreamWriter } from '../batch/atomic-stream';
import { makeCombined } from './combined-record';
import { readExternalCodes } from './external-codes';
import { buildLayout, Layout, LayoutKind, LAYOUT_KINDS, Special } from './layout';
import { MatchBy, matchCodes, MATCH_MODES, sample } from './match';
import { readStyledTokens } from './styled-input';

/** LlamaGen's VQ-16 (the external tokenizer DESIGN.md has in mind). */
export const EXTERNAL_DEFAULTS = { name: 'llamagen-vq16', vocabSize: 16384 } as const;

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
  model: { vocabSize: number; numTokens?: number; ref?: ModelRef };
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
}

export function defaultLayoutPath(output: string): string {
  return `${output.slice(0, output.length - extname(output).length)}.layout.json`;
}

export async function concatCodes(options: ConcatOptions): Promise<ConcatSummary> {
  const kind = inArray('layout', options.layout ?? 'shared', LAYOUT_KINDS);
  const match = inArray('match', options.match ?? 'auto', MATCH_MODES);
  const externalVocab = positiveInteger('externalVocab', options.externalVocab ?? EXTERNAL_DEFAULTS.vocabSize);
  if (options.augIndex !== undefined && (!isInteger(options.augIndex) || options.augIndex < 0)) throw invalidParameter('augIndex', 'non-negative integer', options.augIndex);
  if (extname(options.output).toLowerCase() !== '.jsonl') throw usageError(`-o ${options.output}: combined sequences are written as JSONL; name it <something>.jsonl`);
  const layoutOutput = options.layoutOutput ?? defaultLayoutPath(options.output);
  if (layoutOutput === options.output) throw usageError('The layout file and the output must differ');
  await checkOutputPath(options.output, [options.styled, options.external], '-o', { overwrite: options.overwrite });
  await checkOutputPath(layoutOutput, [options.styled, options.external], '--layout-file', { overwrite: options.overwrite });

  const styled = await readStyledTokens(options.styled, { numTokens: options.model.numTokens, vocabSize: positiveInteger('model.vocabSize', options.model.vocabSize) });
  const ref = options.model.ref;
  if (ref && styled.model.fingerprint !== ref.fingerprint && !options.force) {
    throw inputError(
      `${options.styled} was made by model "${styled.model.name}" (fingerprint ${styled.model.fingerprint}), but the model is "${ref.name}" ` +
        `(fingerprint ${ref.fingerprint}); use the matching --model, or --force`,
    );
  }
  const external = await readExternalCodes(options.external, { vocabSize: externalVocab, augIndex: options.augIndex, numericOrder: match === 'order' });
  const m = matchCodes(styled, external, match);
  if ((m.unmatchedStyled.length || m.unmatchedExternal.length) && !options.allowUnmatched) {
    const parts = [
      m.unmatchedStyled.length ? `${m.unmatchedStyled.length} record(s) without external codes (${sample(m.unmatchedStyled.map((s) => s.source))})` : '',
      m.unmatchedExternal.length ? `${m.unmatchedExternal.length} external entr${m.unmatchedExternal.length === 1 ? 'y' : 'ies'} without a record (${sample(m.unmatchedExternal.map((e) => e.label))})` : '',
    ].filter(Boolean);
    throw inputError(`Unmatched images: ${parts.join('; ')}. Nothing written; --allow-unmatched writes the pairs and reports the rest`);
  }
  if (!m.pairs.length) throw inputError(`No image of ${options.styled} pairs with codes in ${options.external}`);

  const layout = buildLayout({
    kind,
    styled: { model: styled.model, vocab_size: options.model.vocabSize, tokens_per_image: styled.numTokens },
    external: {
      tokenizer: options.externalName ?? EXTERNAL_DEFAULTS.name,
      vocab_size: externalVocab,
      tokens_per_image: external.tokensPerImage,
      npy: external.npy,
      aug_index: external.augmentations ? options.augIndex ?? 0 : null,
    },
    special: options.special ?? {},
  });

  const out = await AtomicStreamWriter.open(options.output);
  try {
    for (const { styled: s, external: e } of m.pairs) {
      const codes = await e.load();
      const line = makeCombined(layout, { source: s.source, externalSource: e.label, styled: s.tokens!, external: codes });
      await out.write(JSON.stringify(line) + '\n');
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  await writeFileAtomic(layoutOutput, formatPretty(layout) + '\n');
  return {
    output: options.output,
    layoutFile: layoutOutput,
    layout,
    matchedBy: m.by,
    written: m.pairs.length,
    failed: m.failed.map((s) => s.source),
    unmatchedStyled: m.unmatchedStyled.map((s) => s.source),
    unmatchedExternal: m.unmatchedExternal.map((e) => e.label),
  };
}
