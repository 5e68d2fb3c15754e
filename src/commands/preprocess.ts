import type { Argv, ArgumentsCamelCase } from 'yargs';
import { preprocess } from '../api/preprocess';
import { encodeImageBytes } from '../image/write';
import { readManifest } from '../model/manifest';
import { resolveModelDir } from '../model/resolve';
import { checkOutputPath } from '../io/output-path';
import { type GlobalArgs, integerArg, printJson, say } from '../cli/globals';
import { IMAGE_READ_OPTIONS, type ImageReadArgs, imageOptions } from '../cli/image-options';
import {
  IMAGE_FORMAT_OPTION,
  type ImageFormatArgs,
  imageInput,
  outputImageFormat,
  OVERWRITE_OPTION,
  type OverwriteArgs,
  writeOutput,
} from '../cli/output-options';

export interface PreprocessArgs extends GlobalArgs, ImageReadArgs, OverwriteArgs, ImageFormatArgs {
  image: string;
  output: string;
  size?: number;
}

export const command = 'preprocess <image>';
export const describe = 'Write exactly what the model sees (orientation, RGB conversion, crop, resize)';

export function builder(y: Argv<GlobalArgs>): Argv<PreprocessArgs> {
  return y
    .positional('image', { type: 'string', describe: 'Image file; - reads it from stdin', demandOption: true })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        demandOption: true,
        describe: 'Where to write the crop (.png keeps it exact; - for stdout with --format)',
      },
      ...IMAGE_FORMAT_OPTION,
      ...OVERWRITE_OPTION,
      size: {
        type: 'string',
        requiresArg: true,
        describe: "Square side; default: the model's input size",
        coerce: (v: unknown) => integerArg('size', v),
      },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 preprocess photo.jpg -o crop.png', 'see the crop the default model encodes')
    .example('$0 preprocess logo.png --background white -o crop.png', 'composite transparency on white first')
    .example(
      '$0 preprocess photo.jpg --size 256 -o crop256.png',
      'no model needed when the size is given',
    ) as unknown as Argv<PreprocessArgs>;
}

export async function handler(argv: ArgumentsCamelCase<PreprocessArgs>): Promise<void> {
  const format = outputImageFormat(argv.output, argv.format);
  await checkOutputPath(argv.output, [argv.image], 'output', { overwrite: argv.overwrite });
  // Only the manifest is needed (for the size): no graphs are loaded or hashed.
  const size = argv.size ?? (await readManifest(resolveModelDir(argv.model).dir)).preprocessing.image_size;
  const pre = await preprocess(await imageInput(argv.image), size, imageOptions(argv));
  await writeOutput(argv.output, await encodeImageBytes(pre.rgb, pre.width, pre.height, format, {}, argv.output));
  if (argv.json)
    printJson({
      source: pre.source,
      output: argv.output,
      size: [pre.width, pre.height],
      original_size: pre.originalSize,
    });
  else
    say(argv, `wrote ${argv.output} (${pre.width}x${pre.height} from ${pre.originalSize[0]}x${pre.originalSize[1]})`);
}
