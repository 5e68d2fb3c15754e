import type { Argv, ArgumentsCamelCase } from 'yargs';
import { explain, type ExplainResult } from '../api/explain';
import { labelledGrid } from '../image/labelled-grid';
import { encodeImageBytes } from '../image/write';
import { checkOutputPath } from '../io/output-path';
import { STDIO } from '../io/stdio';
import { announce, type GlobalArgs, integerArg, printJson, result, say, withModel } from '../cli/globals';
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
import { checkPrefixFlag, parsePrefixList } from '../cli/prefix-options';
import type { RgbImage } from '../api/decode';

export interface ExplainArgs extends GlobalArgs, ImageReadArgs, OverwriteArgs, ImageFormatArgs {
  image: string;
  output?: string;
  ks?: number[];
  scale?: number;
}

export const command = 'explain <image>';
export const describe = 'Decode the first k tokens of an image for several k: a labelled strip and PSNR/SSIM per k';

export function builder(y: Argv<GlobalArgs>): Argv<ExplainArgs> {
  return y
    .positional('image', { type: 'string', describe: 'Image file; - reads it from stdin', demandOption: true })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: 'Write the strip here (.png, .jpg, .webp; - for stdout with --format)',
      },
      ...IMAGE_FORMAT_OPTION,
      ks: {
        type: 'string',
        requiresArg: true,
        describe: 'Prefix lengths to decode, comma-separated',
        defaultDescription: '1,2,4,8,16,36',
        coerce: (v: unknown) => parsePrefixList('ks', v),
      },
      scale: {
        type: 'string',
        requiresArg: true,
        describe: 'Enlarge each tile this many times (nearest-neighbour)',
        defaultDescription: '4',
        coerce: (v: unknown) => integerArg('scale', v),
      },
      ...OVERWRITE_OPTION,
      ...IMAGE_READ_OPTIONS,
    })
    .example(
      '$0 explain examples/pier.jpg -o pier-explain.png',
      'input, then the decode of the first 1, 2, 4, 8, 16, 36 tokens',
    )
    .example('$0 explain cat.jpg --ks 0,1,36 --json', 'the numbers only, as JSON') as unknown as Argv<ExplainArgs>;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'inf');

/** The strip: the preprocessed input, then one labelled tile per k. */
export async function explainStrip(r: ExplainResult, scale = 4): Promise<RgbImage> {
  return labelledGrid(
    [
      { image: r.input, label: ['input', `${r.input.width}x${r.input.height}`, ''] },
      ...r.steps.map((s) => ({
        image: s.image,
        label: [`k = ${s.k}`, `${fmt(s.psnr, 2)} dB`, `SSIM ${fmt(s.ssim, 3)}`],
      })),
    ],
    { scale },
  );
}

export function explainTable(r: ExplainResult): string {
  const rows = r.steps.map(
    (s) => `${String(s.k).padStart(3)}  ${fmt(s.psnr, 2).padStart(7)}  ${fmt(s.ssim, 4).padStart(6)}`,
  );
  return ['  k  PSNR dB    SSIM', ...rows].join('\n');
}

export async function handler(argv: ArgumentsCamelCase<ExplainArgs>): Promise<void> {
  const format = argv.output ? outputImageFormat(argv.output, argv.format) : undefined;
  if (argv.output) await checkOutputPath(argv.output, [argv.image], 'output', { overwrite: argv.overwrite });
  await withModel(argv, async (model) => {
    if (argv.ks) checkPrefixFlag('ks', argv.ks, model);
    const r = await explain(model, await imageInput(argv.image), { ...imageOptions(argv), ks: argv.ks });
    announce(argv, r.execution);
    if (argv.output) {
      const strip = await explainStrip(r, argv.scale);
      await writeOutput(
        argv.output,
        await encodeImageBytes(strip.rgb, strip.width, strip.height, format!, {}, argv.output),
      );
    }
    const table = explainTable(r);
    if (argv.json) {
      printJson({
        source: r.source,
        model: { name: model.name, fingerprint: model.fingerprint, prefix_fill: model.manifest.prefix_fill!.kind },
        original_size: r.originalSize,
        tokens: r.tokens,
        steps: r.steps.map((s) => ({ k: s.k, psnr: Number.isFinite(s.psnr) ? s.psnr : null, ssim: s.ssim })),
        output: argv.output ?? null,
        execution: r.execution,
      });
    } else if (argv.output === STDIO) {
      say(argv, table); // stdout holds the image: the table is a message then
    } else {
      result(argv, table);
      if (argv.output) say(argv, `wrote ${argv.output}`);
    }
  });
}
