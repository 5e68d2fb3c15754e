import type { Argv, ArgumentsCamelCase } from 'yargs';
import { reconstruct } from '../api/reconstruct';
import { labelledGrid } from '../image/labelled-grid';
import type { ReconstructResult } from '../api/reconstruct';
import type { RgbImage } from '../api/decode';
import { encodeImageBytes } from '../image/write';
import { checkOutputPath } from '../io/output-path';
import { usageError } from '../errors';
import { announce, type GlobalArgs, printJson, result, say, withModel } from '../cli/globals';
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
import { STDIO } from '../io/stdio';

export interface ReconstructArgs extends GlobalArgs, ImageReadArgs, OverwriteArgs, ImageFormatArgs {
  image: string;
  output?: string;
  compare?: boolean;
  continuous: boolean;
}

export const command = 'reconstruct <image>';
export const describe = 'Encode and decode an image; print PSNR and SSIM against the preprocessed input';

export function builder(y: Argv<GlobalArgs>): Argv<ReconstructArgs> {
  return y
    .positional('image', { type: 'string', describe: 'Image file; - reads it from stdin', demandOption: true })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: 'Write the reconstruction here (.png, .jpg, .webp; - for stdout with --format)',
      },
      ...IMAGE_FORMAT_OPTION,
      compare: {
        type: 'boolean',
        describe:
          'Write model input | reconstruction side by side, enlarged and labelled with PSNR/SSIM, to -o (needs -o)',
      },
      ...OVERWRITE_OPTION,
      continuous: {
        type: 'boolean',
        default: false,
        describe: 'Decode the continuous latents instead of the 36 tokens',
      },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 reconstruct examples/pier.jpg', 'print PSNR / SSIM of the token round trip')
    .example(
      '$0 reconstruct cat.jpg -o cat-vs-recon.png --compare',
      'save input and reconstruction side by side',
    ) as unknown as Argv<ReconstructArgs>;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'inf');

/** Model input | reconstruction, enlarged 4x (nearest-neighbour) and labelled: a picture to look at. */
export async function compareStrip(r: ReconstructResult, modelName: string): Promise<RgbImage> {
  return labelledGrid(
    [
      { image: r.input, label: ['model input', `${r.input.width}x${r.input.height}`, ''] },
      { image: r.output, label: ['reconstruction', `${fmt(r.psnr, 2)} dB`, `SSIM ${fmt(r.ssim, 3)}`] },
    ],
    { scale: 4, title: `${modelName}, via ${r.via}` },
  );
}

export async function handler(argv: ArgumentsCamelCase<ReconstructArgs>): Promise<void> {
  if (argv.compare && !argv.output)
    throw usageError('--compare writes the input and the reconstruction side by side to a file: add -o compare.png');
  const format = argv.output ? outputImageFormat(argv.output, argv.format) : undefined;
  if (argv.output) await checkOutputPath(argv.output, [argv.image], 'output', { overwrite: argv.overwrite });
  const toStdout = argv.output === STDIO;
  await withModel(argv, async (model) => {
    const r = await reconstruct(model, await imageInput(argv.image), {
      ...imageOptions(argv),
      continuous: argv.continuous,
    });
    announce(argv, r.execution);
    if (argv.output) {
      const img = argv.compare ? await compareStrip(r, model.name) : r.output;
      await writeOutput(argv.output, await encodeImageBytes(img.rgb, img.width, img.height, format!, {}, argv.output));
    }
    const line = `PSNR ${fmt(r.psnr, 2)} dB  SSIM ${fmt(r.ssim, 4)}  (${r.output.width}x${r.output.height}, via ${r.via}, ${model.name})`;
    if (toStdout) {
      // stdout holds the image: the numbers are a message then.
      say(argv, line);
      return;
    }
    if (argv.json) {
      printJson({
        source: r.source,
        size: [r.output.width, r.output.height],
        original_size: r.originalSize,
        via: r.via,
        psnr: Number.isFinite(r.psnr) ? r.psnr : null,
        ssim: r.ssim,
        tokens: r.tokens,
        output: argv.output ?? null,
        execution: r.execution,
      });
    } else {
      result(argv, line);
      if (argv.output) say(argv, `wrote ${argv.output}`);
    }
  });
}
