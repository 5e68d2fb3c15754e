import type { Argv, ArgumentsCamelCase } from 'yargs';
import { reconstruct } from '../api/reconstruct';
import { sideBySide, writeImage } from '../image';
import { checkOutputPath } from '../util/atomic';
import { announce, GlobalArgs, printJson, say, withModel } from '../cli/globals';
import { checkImageExtension, IMAGE_READ_OPTIONS, ImageReadArgs, imageOptions } from '../cli/image-options';

export interface ReconstructArgs extends GlobalArgs, ImageReadArgs {
  image: string;
  output?: string;
  compare?: boolean;
  continuous: boolean;
}

export const command = 'reconstruct <image>';
export const describe = 'Encode and decode an image; print PSNR and SSIM against the preprocessed input';

export function builder(y: Argv<GlobalArgs>): Argv<ReconstructArgs> {
  return y
    .positional('image', { type: 'string', describe: 'Image file', demandOption: true })
    .options({
      output: { alias: 'o', type: 'string', requiresArg: true, describe: 'Write the reconstruction here (.png, .jpg, .webp)' },
      compare: { type: 'boolean', describe: 'Write model input | reconstruction side by side to -o', implies: 'output' },
      continuous: { type: 'boolean', default: false, describe: 'Decode the continuous latents instead of the 36 tokens' },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 reconstruct examples/pier.jpg', 'print PSNR / SSIM of the token round trip')
    .example('$0 reconstruct cat.jpg -o cat-vs-recon.png --compare', 'save input and reconstruction side by side') as unknown as Argv<ReconstructArgs>;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'inf');

export async function handler(argv: ArgumentsCamelCase<ReconstructArgs>): Promise<void> {
  if (argv.output) {
    checkImageExtension(argv.output);
    await checkOutputPath(argv.output, [argv.image]);
  }
  await withModel(argv, async (model) => {
    const r = await reconstruct(model, argv.image, { ...imageOptions(argv), continuous: argv.continuous });
    announce(argv, r.execution);
    if (argv.output) {
      if (argv.compare) {
        const both = sideBySide([r.input, r.output]);
        await writeImage(both.rgb, both.width, both.height, argv.output);
      } else {
        await writeImage(r.output.rgb, r.output.width, r.output.height, argv.output);
      }
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
      say(argv, `PSNR ${fmt(r.psnr, 2)} dB  SSIM ${fmt(r.ssim, 4)}  (${r.output.width}x${r.output.height}, via ${r.via}, ${model.name})`);
      if (argv.output) say(argv, `wrote ${argv.output}`);
    }
  });
}
