/**
 * The one table from library option fields to CLI flags. Library errors name fields
 * (`layoutFile`, `maxPixels`); bin/ renders every message through {@link flagName}, so the
 * CLI's user reads `--layout-file`, `--max-pixels`. test/cli-flags.test.ts checks that every
 * flag here, and every flag written in a message, exists in the parser.
 */
import { fieldName, firstLine, type OptionNamer } from '../errors';

export const FLAGS: Readonly<Record<string, string>> = {
  // Global options
  model: '--model',
  device: '--device',
  dtype: '--dtype',
  threads: '--threads',
  // Inputs and outputs
  output: '-o',
  overwrite: '--overwrite',
  // setup cuda
  from: '--from',
  force: '--force',
  format: '--format',
  key: '--key',
  latents: '--latents',
  batchSize: '--batch-size',
  size: '--size',
  // Images
  maxPixels: '--max-pixels',
  maxDecodedBytes: '--max-decoded-bytes',
  background: '--background',
  // batch and merge
  resume: '--resume',
  concurrency: '--concurrency',
  shard: '--shard',
  shards: '--shards',
  shardFromEnv: '--shard-from-env',
  'model.vocabSize': '--styled-vocab',
  inputsAreShard: '--inputs-are-shard',
  recursive: '--recursive',
  // prefixes: decode --prefix, explain, evaluate, mix
  prefix: '--prefix',
  ks: '--ks',
  keep: '--keep',
  fromA: '--from-a',
  fromB: '--from-b',
  grid: '--grid',
  scale: '--scale',
  // concat and split
  layout: '--layout',
  layoutFile: '--layout-file',
  augIndex: '--aug-index',
  match: '--match',
  allowUnmatched: '--allow-unmatched',
  externalVocab: '--external-vocab',
  externalName: '--external-name',
  styledVocab: '--styled-vocab',
  externalOut: '--external-out',
  skipInvalid: '--skip-invalid',
  sep: '--sep',
  bos: '--bos',
  eos: '--eos',
};

/** A field as its flag (`--aug-index 0..3`, `--overwrite`); a field with no flag keeps its name. */
export const flagName: OptionNamer = (ref) => {
  const flag = FLAGS[ref.field];
  if (!flag) return fieldName(ref);
  return ref.value === undefined || ref.value === true ? flag : `${flag} ${ref.value}`;
};

/** The one-line message of an error, in the CLI's words. */
export const cliMessage = (err: unknown): string => firstLine(err, flagName);
