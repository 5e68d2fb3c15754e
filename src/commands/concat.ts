import type { Argv, ArgumentsCamelCase } from 'yargs';
import { readManifest } from '../model/manifest';
import { resolveModelDir } from '../model/resolve';
import { packageFingerprints } from '../model/variant';
import { concatCodes, type ConcatOptions, type ConcatSummary } from '../concat/run-concat';
import { DEFAULTS } from '../defaults';
import { LAYOUT_KINDS, type LayoutKind } from '../concat/layout';
import { type MatchBy, MATCH_MODES, sample } from '../concat/match';
import { type GlobalArgs, notice, integerArg, printJson, say } from '../cli/globals';
import { OVERWRITE_OPTION, type OverwriteArgs } from '../cli/output-options';
import { type Progress, progressBar } from '../cli/progress';
import { removedTempsNotice } from '../cli/interrupts';

export interface ConcatArgs extends GlobalArgs, OverwriteArgs {
  styled: string;
  external: string;
  output: string;
  layout: LayoutKind;
  'layout-file'?: string;
  bos: boolean;
  sep: boolean;
  eos: boolean;
  'external-name': string;
  'external-vocab': number;
  'aug-index'?: number;
  match: MatchBy | 'auto';
  'allow-unmatched': boolean;
  'styled-vocab'?: number;
  force: boolean;
}

export const command = 'concat <styled> <external>';
export const describe =
  "Join the 36 styled tokens with an external VQ-VAE's codes (e.g. LlamaGen) into sequences for an autoregressive model";

export function builder(y: Argv<GlobalArgs>): Argv<ConcatArgs> {
  return y
    .positional('styled', {
      type: 'string',
      demandOption: true,
      describe:
        'Our tokens: tokens.json, a .jsonl of records (encode/batch; - for stdin), or a batch .npy with its ' +
        '.sources.json',
    })
    .positional('external', {
      type: 'string',
      demandOption: true,
      describe:
        'External codes: a folder of per-image .npy ((N,), (1,N), (1,A,N)) matched by file stem, one .npy (M,N) in ' +
        'record order, or .json/.jsonl arrays',
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        demandOption: true,
        requiresArg: true,
        describe: 'Combined sequences, one JSONL line per image',
      },
      layout: {
        type: 'string',
        choices: LAYOUT_KINDS,
        default: DEFAULTS.concat.layout,
        describe: 'shared: one vocabulary (external ids shifted by K); separate: two parallel sequences',
      },
      'layout-file': {
        type: 'string',
        requiresArg: true,
        describe: 'Where to write the layout (K, V, offsets, special ids, fingerprint)',
        defaultDescription: '<output stem>.layout.json',
      },
      bos: { type: 'boolean', default: false, describe: 'Start each sequence with a BOS id' },
      sep: {
        type: 'boolean',
        default: false,
        describe: 'Put a SEP id between styled and external tokens (shared layout)',
      },
      eos: { type: 'boolean', default: false, describe: 'End each sequence with an EOS id' },
      'external-name': {
        type: 'string',
        default: DEFAULTS.concat.externalName,
        requiresArg: true,
        describe: 'Name of the external tokenizer, recorded in the layout',
      },
      'external-vocab': {
        type: 'string',
        default: DEFAULTS.concat.externalVocab,
        requiresArg: true,
        describe: 'External codebook size V',
        coerce: (v: unknown) => integerArg('externalVocab', v),
      },
      'aug-index': {
        type: 'string',
        requiresArg: true,
        describe: 'Which augmentation of (1, A, N) codes to use',
        coerce: (v: unknown) => integerArg('augIndex', v, 0),
      },
      match: {
        type: 'string',
        choices: MATCH_MODES,
        default: DEFAULTS.concat.match,
        describe:
          'Pair records with codes by file stem, or by order (auto: stem for folders and keyed JSON, else order)',
      },
      'allow-unmatched': {
        type: 'boolean',
        default: false,
        describe: 'Write the pairs and report unmatched images instead of failing',
      },
      'styled-vocab': {
        type: 'string',
        requiresArg: true,
        describe: 'Styled codebook size K, when the model package is not at hand (else read from --model)',
        coerce: (v: unknown) => integerArg('styledVocab', v),
      },
      force: { type: 'boolean', default: false, describe: 'Accept tokens made by another model than --model' },
      ...OVERWRITE_OPTION,
    })
    .example(
      '$0 concat tokens.jsonl codes/ -o train.jsonl --bos --sep --eos',
      'codes/<image stem>.npy per image, one shared vocabulary',
    )
    .example(
      '$0 concat tokens.npy codes.npy -o train.jsonl --layout separate',
      'rows in order; two sequences per image',
    )
    .example(
      '$0 concat tokens.jsonl llamagen_codes/ --match order --aug-index 0 -o train.jsonl',
      "LlamaGen's 0.npy, 1.npy, ... of shape (1, 2, 256): take the unflipped crop",
    ) as unknown as Argv<ConcatArgs>;
}

function report(argv: GlobalArgs, s: ConcatSummary): void {
  const l = s.layout;
  const seqs = Object.entries(l.sequences)
    .map(([name, q]) => `${name}: ${q.length} ids, vocabulary ${q.vocab_size}`)
    .join('; ');
  say(argv, `wrote ${s.written} sequences to ${s.output} (${seqs}); layout in ${s.layoutFile}`);
  if (s.failed.length)
    notice(
      argv,
      `${s.failed.length} input(s) failed to tokenize (error records) and were left out: ${sample(s.failed)}`,
    );
  if (s.unmatchedStyled.length)
    notice(
      argv,
      `${s.unmatchedStyled.length} record(s) had no external codes and were left out: ${sample(s.unmatchedStyled)}`,
    );
  const n = s.unmatchedExternal.length;
  if (n)
    notice(
      argv,
      `${n} external entr${n === 1 ? 'y has' : 'ies have'} no record and ${n === 1 ? 'was' : 'were'} left out: ` +
        `${sample(s.unmatchedExternal)}`,
    );
}

async function styledModel(argv: ConcatArgs): Promise<ConcatOptions['model']> {
  if (argv['styled-vocab']) return { vocabSize: argv['styled-vocab'] };
  // Only the manifest is needed (K, tokens per image, fingerprint): no sessions, no hashing.
  const { dir } = resolveModelDir(argv.model);
  const m = await readManifest(dir);
  return {
    vocabSize: m.codebook.size,
    numTokens: m.config.num_tokens,
    ref: { name: m.name, fingerprint: m.fingerprint, fingerprints: packageFingerprints(m) },
  };
}

export async function handler(argv: ArgumentsCamelCase<ConcatArgs>): Promise<void> {
  let bar: Progress | undefined;
  const summary = await concatCodes({
    styled: argv.styled,
    external: argv.external,
    output: argv.output,
    layoutOutput: argv['layout-file'],
    layout: argv.layout,
    special: { bos: argv.bos, sep: argv.sep, eos: argv.eos },
    model: await styledModel(argv),
    force: argv.force,
    externalName: argv['external-name'],
    externalVocab: argv['external-vocab'],
    augIndex: argv['aug-index'],
    match: argv.match,
    allowUnmatched: argv['allow-unmatched'],
    overwrite: argv.overwrite,
    onProgress: (seen, total) => {
      bar ??= progressBar(argv, total, 'concat');
      bar.update(seen, total);
    },
  }).finally(() => bar?.stop());
  if (summary.removedTemps.length) notice(argv, removedTempsNotice(summary.removedTemps));
  if (argv.json) printJson(summary);
  else report(argv, summary);
}
