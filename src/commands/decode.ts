import type { Argv, ArgumentsCamelCase } from 'yargs';
import { basename, extname } from 'node:path';
import { decodeRecords } from '../api/decode';
import { inputError } from '../errors';
import { resizeRgb, writeImage } from '../image';
import { readTokenFile } from '../tokens/token-file';
import { checkOutputPath, OutputSet } from '../util/atomic';
import { announce, GlobalArgs, notice, positiveIntegerArg, printJson, say, withModel } from '../cli/globals';
import { checkImageExtension, parseSize } from '../cli/image-options';

export interface DecodeArgs extends GlobalArgs {
  tokens: string;
  output?: string;
  size?: [number, number];
  force: boolean;
  latents: boolean;
  'batch-size'?: number;
}

export const command = 'decode <tokens>';
export const describe = 'Turn token records (tokens.json or .jsonl) back into images';

export function builder(y: Argv<GlobalArgs>): Argv<DecodeArgs> {
  return y
    .positional('tokens', { type: 'string', describe: 'A tokens.json record or a .jsonl file of records', demandOption: true })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: 'Image to write (.png, .jpg, .webp); several records write NAME-0.png, NAME-1.png, ...',
        defaultDescription: '<tokens file name>.png in the current directory',
      },
      size: { type: 'string', requiresArg: true, describe: 'Resize the decoded image to WIDTHxHEIGHT', coerce: parseSize },
      force: { type: 'boolean', default: false, describe: 'Decode tokens made by another model (fingerprint mismatch)' },
      latents: { type: 'boolean', default: false, describe: "Decode the records' continuous latents instead of their tokens" },
      'batch-size': { type: 'number', requiresArg: true, describe: 'Images per ONNX Runtime run', defaultDescription: '8', coerce: (v: unknown) => positiveIntegerArg('--batch-size', v) },
    })
    .example('$0 decode tokens.json -o out.png', 'one record -> out.png')
    .example('$0 decode tokens.jsonl -o out/img.webp', 'every record -> out/img-0.webp, out/img-1.webp, ...')
    .example('$0 decode tokens.json --size 512x512 -o big.jpg', 'decode, then resize') as unknown as Argv<DecodeArgs>;
}

/** Output names: the given one for a single image, NAME-i.EXT (zero-padded) for several. */
export function outputNames(template: string, count: number): string[] {
  if (count === 1) return [template];
  const ext = extname(template);
  const stem = template.slice(0, template.length - ext.length);
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${stem}-${String(i).padStart(width, '0')}${ext}`);
}

export async function handler(argv: ArgumentsCamelCase<DecodeArgs>): Promise<void> {
  const output = argv.output ?? `${basename(argv.tokens, extname(argv.tokens))}.png`;
  checkImageExtension(output);
  await checkOutputPath(output, [argv.tokens]);
  const located = await readTokenFile(argv.tokens);

  await withModel(argv, async (model) => {
    const result = await decodeRecords(model, located, { force: argv.force, useLatents: argv.latents, batchSize: argv['batch-size'] });
    announce(argv, result.execution);
    for (const s of result.skipped) notice(argv, `skipped ${s.where} (${s.source}): it records a failed input: ${s.error}`);
    if (!result.images.length) throw inputError(`${argv.tokens} holds no token records to decode`);

    const names = outputNames(output, result.images.length);
    for (const name of names) await checkOutputPath(name, [argv.tokens]);
    const written = new OutputSet();
    try {
      for (let i = 0; i < names.length; i++) {
        let { rgb, width, height } = result.images[i].image;
        if (argv.size) {
          rgb = await resizeRgb(rgb, width, height, argv.size[0], argv.size[1]);
          [width, height] = argv.size;
        }
        await writeImage(rgb, width, height, names[i]);
        written.add(names[i]);
      }
    } catch (err) {
      await written.rollback();
      throw err;
    }
    const outputs = result.images.map((im, i) => ({ source: im.source, output: names[i] }));
    if (argv.json) printJson({ outputs, skipped: result.skipped, execution: result.execution });
    else for (const o of outputs) say(argv, `${o.output}  <-  ${o.source}`);
  });
}
