import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { type EncodeResult, encodeImages } from '../api/encode';
import { StyledVqError, usageError } from '../errors';
import { isErrorRecord } from '../tokens/record';
import { formatRecordJson, formatRecordsJsonl, formatTokenFile } from '../tokens/token-file';
import { checkOutputPath } from '../io/output-path';
import { STDIO } from '../io/stdio';
import { announce, type GlobalArgs, notice, integerArg, printJson, say, withModel } from '../cli/globals';
import { checkOneStdin, imageInput, OVERWRITE_OPTION, type OverwriteArgs, writeOutput } from '../cli/output-options';
import { IMAGE_READ_OPTIONS, type ImageReadArgs, imageOptions } from '../cli/image-options';
import { progressBar } from '../cli/progress';
import { DEFAULTS } from '../defaults';

export interface EncodeArgs extends GlobalArgs, ImageReadArgs, OverwriteArgs {
  image: string[];
  output?: string;
  latents: boolean;
  pretty: boolean;
  'continue-on-error': boolean;
  'batch-size'?: number;
}

export const command = 'encode <image...>';
export const describe = 'Turn images into 36 token ids: one compact JSON record per line on stdout, or -o file';

export function builder(y: Argv<GlobalArgs>): Argv<EncodeArgs> {
  return y
    .positional('image', {
      type: 'string',
      array: true,
      describe: 'Image files (PNG, JPEG, WebP, GIF, TIFF, ...); - reads one image from stdin',
      demandOption: true,
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: 'Write the records here (.json: one image, pretty; .jsonl: one compact line each; -: stdout)',
      },
      pretty: {
        type: 'boolean',
        default: false,
        describe: 'Indented JSON instead of one compact line per record (stdout or .json)',
      },
      'continue-on-error': {
        type: 'boolean',
        default: false,
        describe: 'Write an error record for an image that cannot be read and go on (batch does this always)',
      },
      ...OVERWRITE_OPTION,
      latents: {
        type: 'boolean',
        default: false,
        describe: 'Also store the continuous latents (36 x D floats) in each record',
      },
      'batch-size': {
        type: 'string',
        requiresArg: true,
        describe: 'Images per ONNX Runtime run',
        defaultDescription: `${DEFAULTS.batchSizes.cpu.interactive} on CPU, ${DEFAULTS.batchSizes.cuda.interactive} on CUDA, ${DEFAULTS.batchSizes.webgpu.interactive} on WebGPU`,
        coerce: (v: unknown) => integerArg('batchSize', v),
      },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 encode examples/pier.jpg', 'print the record for one photo (one JSON line)')
    .example('cat pier.jpg | $0 encode -', 'read the image from stdin')
    .example('$0 encode photos/*.jpg -o tokens.jsonl', 'one JSONL record per photo')
    .example(
      '$0 encode cat.png --latents -o cat.json',
      'keep the continuous latents too',
    ) as unknown as Argv<EncodeArgs>;
}

export async function handler(argv: ArgumentsCamelCase<EncodeArgs>): Promise<void> {
  const images = argv.image;
  checkOneStdin(images);
  const output = argv.output === STDIO ? undefined : argv.output;
  if (output) {
    const ext = extname(output).toLowerCase();
    if (ext !== '.json' && ext !== '.jsonl')
      throw usageError(`-o ${output}: token files end in .json (one image) or .jsonl`);
    if (ext === '.json' && images.length > 1)
      throw usageError(`-o ${output}: ${images.length} images make JSONL records; name the file .jsonl`);
    await checkOutputPath(output, images, 'output', { overwrite: argv.overwrite });
  }
  const inputs = await Promise.all(images.map(imageInput));
  await withModel(argv, async (model) => {
    const bar = progressBar(argv, images.length, 'encode');
    let result: EncodeResult;
    try {
      result = await encodeImages(model, inputs, {
        ...imageOptions(argv),
        batchSize: argv['batch-size'],
        latents: argv.latents,
        continueOnError: argv['continue-on-error'],
        onProgress: (done, total) => bar.update(done, total),
      });
    } catch (err) {
      // One bad file among many: say how to keep going.
      if (images.length > 1 && err instanceof StyledVqError && err.kind === 'input') {
        throw new StyledVqError(
          'input',
          `${err.message} (nothing written; --continue-on-error records it and goes on, and batch does that for ` +
            `whole folders)`,
          { cause: err },
        );
      }
      throw err;
    } finally {
      bar.stop();
    }
    announce(argv, result.execution);
    for (const r of result.records) if (isErrorRecord(r)) notice(argv, `failed: ${r.error}`);
    if (!output) {
      // stdout: always one compact record per line, so `encode a >> t.jsonl; encode b >> t.jsonl` makes JSONL.
      const text = argv.pretty ? result.records.map(formatRecordJson).join('') : formatRecordsJsonl(result.records);
      await writeOutput(STDIO, text);
      return;
    }
    await writeOutput(output, formatTokenFile(result.records, output));
    if (argv.json)
      printJson({
        output,
        records: result.records.length,
        model: { name: model.name, fingerprint: model.fingerprint },
        execution: result.execution,
      });
    else say(argv, `wrote ${result.records.length} record${result.records.length === 1 ? '' : 's'} to ${output}`);
  });
}
