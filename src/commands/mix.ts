import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { encodeImage } from '../api/encode';
import { keepMask, mix, mixSweep, rangeMask } from '../api/mix';
import type { RgbImage } from '../api/decode';
import { inputError, usageError } from '../errors';
import { preprocessImage } from '../image';
import { labelledGrid } from '../image/labelled-grid';
import { encodeImageBytes } from '../image/write';
import { checkOutputPath } from '../io/output-path';
import type { Model } from '../model/model';
import { checkRecordForModel, isErrorRecord } from '../tokens/record';
import { readTokenFile } from '../tokens/token-file';
import { announce, type GlobalArgs, integerArg, printJson, say, withModel } from '../cli/globals';
import { IMAGE_READ_OPTIONS, type ImageReadArgs, imageOptions } from '../cli/image-options';
import {
  IMAGE_FORMAT_OPTION,
  type ImageFormatArgs,
  imageInput,
  outputImageFormat,
  OVERWRITE_OPTION,
  type OverwriteArgs,
  writeOutput,
  checkOneStdin,
} from '../cli/output-options';
import { checkPrefixFlag, parsePrefixLength } from '../cli/prefix-options';
import { STDIO } from '../io/stdio';

export interface MixArgs extends GlobalArgs, ImageReadArgs, OverwriteArgs, ImageFormatArgs {
  a: string;
  b: string;
  output: string;
  keep?: number;
  'from-a'?: string;
  'from-b'?: string;
  grid?: boolean;
  scale?: number;
}

export const command = 'mix <a> <b>';
export const describe = 'Decode the first K tokens of A with the rest of B (attribute transfer); --grid for K = 0..36';

export function builder(y: Argv<GlobalArgs>): Argv<MixArgs> {
  return y
    .positional('a', {
      type: 'string',
      describe: 'Image or token record (.json / one-record .jsonl) giving the first tokens',
      demandOption: true,
    })
    .positional('b', { type: 'string', describe: 'Image or token record giving the rest', demandOption: true })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        demandOption: true,
        describe: 'Picture to write (.png, .jpg, .webp; - for stdout with --format)',
      },
      ...IMAGE_FORMAT_OPTION,
      keep: {
        type: 'string',
        requiresArg: true,
        describe: 'Tokens 0..K-1 from A, the rest from B',
        coerce: (v: unknown) => parsePrefixLength('keep', v),
      },
      'from-a': {
        type: 'string',
        requiresArg: true,
        describe: 'Positions taken from A, e.g. 0-7 or 0-3,8 (the rest from B)',
      },
      'from-b': { type: 'string', requiresArg: true, describe: 'Positions taken from B, e.g. 8-35 (the rest from A)' },
      grid: { type: 'boolean', describe: 'Write the whole sweep K = 0..36 as one labelled picture' },
      scale: {
        type: 'string',
        requiresArg: true,
        describe: 'With --grid: enlarge each tile this many times',
        defaultDescription: '2',
        coerce: (v: unknown) => integerArg('scale', v),
      },
      ...OVERWRITE_OPTION,
      ...IMAGE_READ_OPTIONS,
    })
    .conflicts('keep', ['from-a', 'from-b', 'grid'])
    .conflicts('grid', ['from-a', 'from-b'])
    .example('$0 mix pier.jpg glacier.jpg --keep 4 -o mix.png', "pier's first 4 tokens, glacier's other 32")
    .example('$0 mix a.json b.json --from-a 0-7 --from-b 8-35 -o mix.png', 'two token records')
    .example('$0 mix pier.jpg glacier.jpg --grid -o sweep.png', 'K = 0..36 in one picture') as unknown as Argv<MixArgs>;
}

const isTokenFile = (path: string) => /^\.(json|jsonl)$/i.test(extname(path));

interface MixSide {
  tokens: number[];
  source: string;
  /** The preprocessed image, when the side is an image. */
  input?: RgbImage;
}

/** An image (encoded here) or a file holding exactly one token record made by this model. */
async function readSide(path: string, model: Model, argv: MixArgs, flag: string): Promise<MixSide> {
  if (path !== STDIO && isTokenFile(path)) {
    const records = (await readTokenFile(path)).filter(({ record }) => !isErrorRecord(record));
    if (records.length !== 1)
      throw inputError(`${path}: mix takes one token record per side, found ${records.length} (${flag})`);
    const { record, where } = records[0];
    if (isErrorRecord(record)) throw inputError(`${where}: records a failed input`);
    checkRecordForModel(record, model, where);
    return { tokens: record.tokens, source: record.source };
  }
  const input = await imageInput(path);
  const record = await encodeImage(model, input, imageOptions(argv));
  const pre = await preprocessImage(typeof input === 'string' ? input : input.data, {
    size: model.imageSize,
    ...imageOptions(argv),
  });
  return {
    tokens: record.tokens,
    source: record.source,
    input: { rgb: pre.rgb, width: model.imageSize, height: model.imageSize },
  };
}

export async function handler(argv: ArgumentsCamelCase<MixArgs>): Promise<void> {
  if (!argv.grid && argv.keep === undefined && argv['from-a'] === undefined && argv['from-b'] === undefined) {
    throw usageError('mix needs --keep K, --from-a / --from-b positions, or --grid');
  }
  checkOneStdin([argv.a, argv.b]);
  const format = outputImageFormat(argv.output, argv.format);
  await checkOutputPath(argv.output, [argv.a, argv.b], 'output', { overwrite: argv.overwrite });
  await withModel(argv, async (model) => {
    if (argv.keep !== undefined) checkPrefixFlag('keep', [argv.keep], model);
    const mask = argv.grid
      ? undefined
      : argv.keep !== undefined
        ? keepMask(model, argv.keep)
        : rangeMask(model, argv['from-a'], argv['from-b']);
    const a = await readSide(argv.a, model, argv, '<a>');
    const b = await readSide(argv.b, model, argv, '<b>');
    let picture: RgbImage;
    if (mask) {
      picture = await mix(model, a.tokens, b.tokens, mask);
    } else {
      const sweep = await mixSweep(model, a.tokens, b.tokens);
      const inputs = [
        a.input && { image: a.input, label: ['A', 'input'] },
        b.input && { image: b.input, label: ['B', 'input'] },
      ];
      picture = await labelledGrid(
        [
          ...inputs.filter((t) => t !== undefined),
          ...sweep.map((image, k) => ({
            image,
            label: [`K = ${k}`, k === 0 ? 'all B' : k === model.numTokens ? 'all A' : k === 1 ? 'A 0' : `A 0-${k - 1}`],
          })),
        ],
        {
          scale: argv.scale ?? 2,
          columns: 13,
          title: `first K tokens from A (${a.source}), the rest from B (${b.source}); model ${model.name}`,
        },
      );
    }
    announce(argv, model.execution);
    await writeOutput(
      argv.output,
      await encodeImageBytes(picture.rgb, picture.width, picture.height, format, {}, argv.output),
    );
    if (argv.json) {
      printJson({
        a: a.source,
        b: b.source,
        from_a: mask ? mask.flatMap((fromA, p) => (fromA ? [p] : [])) : null,
        grid: !!argv.grid,
        size: [picture.width, picture.height],
        output: argv.output,
        execution: model.execution,
      });
    } else say(argv, `wrote ${argv.output}`);
  });
}
