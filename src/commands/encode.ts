import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { encodeImages } from '../api/encode';
import { usageError } from '../errors';
import { formatTokenFile } from '../tokens/token-file';
import { checkOutputPath, writeFileAtomic } from '../util/atomic';
import { announce, GlobalArgs, io, positiveIntegerArg, printJson, say, withModel } from '../cli/globals';
import { IMAGE_READ_OPTIONS, ImageReadArgs, imageOptions } from '../cli/image-options';
import { progressBar } from '../cli/progress';

export interface EncodeArgs extends GlobalArgs, ImageReadArgs {
  image: string[];
  output?: string;
  latents: boolean;
  'batch-size'?: number;
}

export const command = 'encode <image...>';
export const describe = 'Turn images into 36 token ids (tokens.json; JSONL for several images)';

export function builder(y: Argv<GlobalArgs>): Argv<EncodeArgs> {
  return y
    .positional('image', { type: 'string', array: true, describe: 'Image files (PNG, JPEG, WebP, GIF, TIFF, ...)', demandOption: true })
    .options({
      output: { alias: 'o', type: 'string', requiresArg: true, describe: 'Write the records here (.json for one image, .jsonl for any number) instead of stdout' },
      latents: { type: 'boolean', default: false, describe: 'Also store the continuous latents (36 x D floats) in each record' },
      'batch-size': { type: 'number', requiresArg: true, describe: 'Images per ONNX Runtime run', defaultDescription: '8', coerce: (v: unknown) => positiveIntegerArg('--batch-size', v) },
      ...IMAGE_READ_OPTIONS,
    })
    .example('$0 encode examples/pier.jpg', 'print a tokens.json record for one photo')
    .example('$0 encode photos/*.jpg -o tokens.jsonl', 'one JSONL record per photo')
    .example('$0 encode cat.png --latents -o cat.json', 'keep the continuous latents too') as unknown as Argv<EncodeArgs>;
}

export async function handler(argv: ArgumentsCamelCase<EncodeArgs>): Promise<void> {
  const images = argv.image;
  const output = argv.output;
  if (output) {
    const ext = extname(output).toLowerCase();
    if (ext !== '.json' && ext !== '.jsonl') throw usageError(`-o ${output}: token files end in .json (one image) or .jsonl`);
    if (ext === '.json' && images.length > 1) throw usageError(`-o ${output}: ${images.length} images make JSONL records; name the file .jsonl`);
    await checkOutputPath(output, images);
  }
  await withModel(argv, async (model) => {
    const bar = progressBar(argv, images.length, 'encode');
    let result;
    try {
      result = await encodeImages(model, images, {
        ...imageOptions(argv),
        batchSize: argv['batch-size'],
        latents: argv.latents,
        onProgress: (done, total) => bar.update(done, total),
      });
    } finally {
      bar.stop();
    }
    announce(argv, result.execution);
    const text = formatTokenFile(result.records, output);
    if (!output) {
      io.stdout(text);
      return;
    }
    await writeFileAtomic(output, text);
    if (argv.json) printJson({ output, records: result.records.length, model: { name: model.name, fingerprint: model.fingerprint }, execution: result.execution });
    else say(argv, `wrote ${result.records.length} record${result.records.length === 1 ? '' : 's'} to ${output}`);
  });
}
