import type { Argv, ArgumentsCamelCase } from 'yargs';
import { evaluatePrefixCurve, type EvaluateResult } from '../api/evaluate';
import { prefixFillOf } from '../api/prefix';
import { countInputs, InputList } from '../batch/input-list';
import { announce, type GlobalArgs, integerArg, printJson, result, withModel } from '../cli/globals';
import { IMAGE_READ_OPTIONS, type ImageReadArgs, imageOptions } from '../cli/image-options';
import { checkPrefixFlag, parsePrefixList } from '../cli/prefix-options';
import { progressBar } from '../cli/progress';
import { DEFAULTS } from '../defaults';

export interface EvaluateArgs extends GlobalArgs, ImageReadArgs {
  inputs: string[];
  ks?: number[];
  recursive: boolean;
  'batch-size'?: number;
}

export const command = 'evaluate <inputs..>';
export const describe =
  "Mean PSNR / SSIM of the first k tokens' decode, per k, over a folder of images (the model card's prefix curve)";

export function builder(y: Argv<GlobalArgs>): Argv<EvaluateArgs> {
  return y
    .positional('inputs', {
      type: 'string',
      array: true,
      describe: 'Folders, quoted globs, list files (.txt), .tar shards or images',
      demandOption: true,
    })
    .options({
      ks: {
        type: 'string',
        requiresArg: true,
        describe: 'Prefix lengths, comma-separated (0 and 36 are always measured)',
        defaultDescription: '0,1,2,3,4,6,8,12,16,24,32,36',
        coerce: (v: unknown) => parsePrefixList('ks', v),
      },
      recursive: { type: 'boolean', alias: 'r', default: false, describe: 'Enter subfolders' },
      'batch-size': {
        type: 'string',
        requiresArg: true,
        describe: 'Images per ONNX Runtime run',
        defaultDescription: String(DEFAULTS.batchSize),
        coerce: (v: unknown) => integerArg('batchSize', v),
      },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 evaluate photos/', 'the prefix curve over a folder')
    .example('$0 evaluate photos/ --ks 1,4,16 --json', 'three points, as JSON') as unknown as Argv<EvaluateArgs>;
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'inf');

export function curveTable(r: EvaluateResult): string {
  const rows = r.curve.map(
    (p) => `${String(p.k).padStart(3)}  ${fmt(p.psnr, 2).padStart(7)}  ${fmt(p.ssim, 4).padStart(6)}`,
  );
  return [`${r.images} images`, '  k  PSNR dB    SSIM', ...rows].join('\n');
}

export async function handler(argv: ArgumentsCamelCase<EvaluateArgs>): Promise<void> {
  const list = new InputList(argv.inputs, { recursive: argv.recursive });
  await list.check();
  await withModel(argv, async (model) => {
    prefixFillOf(model);
    if (argv.ks) checkPrefixFlag('ks', argv.ks, model);
    const total = await countInputs(argv.inputs, { recursive: argv.recursive });
    const bar = progressBar(argv, total, 'evaluate');
    let r: EvaluateResult;
    try {
      r = await evaluatePrefixCurve(model, list, {
        ...imageOptions(argv),
        ks: argv.ks,
        batchSize: argv['batch-size'],
        onProgress: (done) => bar.update(done, total),
      });
    } finally {
      bar.stop();
    }
    announce(argv, r.execution);
    if (argv.json) {
      printJson({
        model: { name: model.name, fingerprint: model.fingerprint, prefix_fill: model.manifest.prefix_fill!.kind },
        images: r.images,
        prefix_curve: {
          k: r.curve.map((p) => p.k),
          psnr: r.curve.map((p) => (Number.isFinite(p.psnr) ? p.psnr : null)),
          ssim: r.curve.map((p) => p.ssim),
          psnr_std: r.curve.map((p) => (Number.isFinite(p.psnrStd) ? p.psnrStd : null)),
          ssim_std: r.curve.map((p) => p.ssimStd),
        },
        execution: r.execution,
      });
    } else result(argv, curveTable(r));
  });
}
