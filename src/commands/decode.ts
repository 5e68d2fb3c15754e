import type { Argv, ArgumentsCamelCase } from 'yargs';
import { basename, extname } from 'node:path';
import { batchSizeFor } from '../api/batch-size';
import { decodeRecords, decodeTokens, type RgbImage } from '../api/decode';
import { decodePrefix, prefixFillOf } from '../api/prefix';
import { removedTempsNotice, stopGracefully } from '../cli/interrupts';
import { checkPrefixFlag, parsePrefixLength } from '../cli/prefix-options';
import { inputError, interruptedError, terminatedError, usageError } from '../errors';
import { resizeRgb } from '../image';
import { encodeImageBytes } from '../image/write';
import type { Model } from '../model/model';
import { readTokens } from '../tokens/arrays';
import { checkRecordForModel, isErrorRecord } from '../tokens/record';
import { type LocatedRecord, streamRecords, tokenSource } from '../tokens/token-file';
import { checkOutputPath } from '../io/output-path';
import { OutputSet } from '../io/output-set';
import { removeStaleTempsOf } from '../io/temp-files';
import { STDIO } from '../io/stdio';
import { announce, type GlobalArgs, notice, integerArg, printJson, say, withModel } from '../cli/globals';
import { parseSize } from '../cli/image-options';
import {
  IMAGE_FORMAT_OPTION,
  type ImageFormatArgs,
  outputImageFormat,
  OVERWRITE_OPTION,
  type OverwriteArgs,
  writeOutput,
} from '../cli/output-options';
import { progressBar } from '../cli/progress';
import { DEFAULTS } from '../defaults';

export interface DecodeArgs extends GlobalArgs, OverwriteArgs, ImageFormatArgs {
  tokens: string;
  output?: string;
  size?: [number, number];
  force: boolean;
  latents: boolean;
  key?: string;
  'batch-size'?: number;
  prefix?: number;
}

export const command = 'decode <tokens>';
export const describe = 'Turn token records (.json / .jsonl, or a .npy/.npz token array) back into images';

export function builder(y: Argv<GlobalArgs>): Argv<DecodeArgs> {
  return y
    .positional('tokens', {
      type: 'string',
      describe:
        'Token records (one, JSONL, or pretty records one after another), a token array .npy [N,36] / .npz, or - ' +
        'for records on stdin',
      demandOption: true,
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe:
          'Image to write (.png, .jpg, .webp; - for stdout with --format); several records write NAME-0.png, ' +
          'NAME-1.png, ...',
        defaultDescription: '<tokens file name>.png in the current directory',
      },
      ...IMAGE_FORMAT_OPTION,
      size: {
        type: 'string',
        requiresArg: true,
        describe: 'Resize the decoded image to WIDTHxHEIGHT',
        coerce: parseSize,
      },
      force: {
        type: 'boolean',
        default: false,
        describe:
          'Decode tokens made by another model (fingerprint mismatch; packages listed in model.json same_tokens_as need no --force, see info)',
      },
      latents: {
        type: 'boolean',
        default: false,
        describe: "Decode the records' continuous latents instead of their tokens",
      },
      key: {
        type: 'string',
        requiresArg: true,
        describe: 'Which array of an .npz to read',
        defaultDescription: 'its only array',
      },
      'batch-size': {
        type: 'string',
        requiresArg: true,
        describe: 'Images per ONNX Runtime run',
        defaultDescription: `${DEFAULTS.batchSizes.cpu.interactive} on CPU, ${DEFAULTS.batchSizes.cuda.interactive} on CUDA, ${DEFAULTS.batchSizes.webgpu.interactive} on WebGPU`,
        coerce: (v: unknown) => integerArg('batchSize', v),
      },
      prefix: {
        type: 'string',
        requiresArg: true,
        describe: "Decode only the first K tokens (the rest from the model's prefix fill)",
        coerce: (v: unknown) => parsePrefixLength('prefix', v),
      },
      ...OVERWRITE_OPTION,
    })
    .example('$0 decode tokens.json -o out.png', 'one record -> out.png')
    .example('$0 decode tokens.jsonl -o out/img.webp', 'every record -> out/img-0.webp, out/img-1.webp, ...')
    .example('$0 encode pier.jpg | $0 decode - -o - --format png > pier-64.png', 'a pipe in, an image out')
    .example('$0 decode tokens.npy -o out/img.png', 'an int array [N,36] as numpy saved it')
    .example(
      '$0 decode tokens.json --prefix 4 -o coarse.png',
      'what the first 4 tokens alone say',
    ) as unknown as Argv<DecodeArgs>;
}

/** Output names: the given one for a single image, NAME-i.EXT (zero-padded) for several. */
export function outputNames(template: string, count: number): string[] {
  if (count === 1) return [template];
  const ext = extname(template);
  const stem = template.slice(0, template.length - ext.length);
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${stem}-${String(i).padStart(width, '0')}${ext}`);
}

const isArrayFile = (path: string) => /\.(npy|npz)$/i.test(path);

interface Decodable {
  /** Records (or array rows) to decode, streamed in batches. */
  batches(size: number): AsyncGenerator<{ source: string; image: RgbImage }[]>;
  count: number;
  skipped: { source: string; where: string; error: string }[];
}

/** Token records: pass 1 checks every record and counts (nothing kept), pass 2 decodes in batches. */
async function recordsInput(argv: DecodeArgs, model: Model): Promise<Decodable> {
  const source = await tokenSource(argv.tokens);
  const skipped: Decodable['skipped'] = [];
  let count = 0;
  for await (const { record, where } of streamRecords(source)) {
    if (isErrorRecord(record)) skipped.push({ source: record.source, where, error: record.error });
    else {
      checkRecordForModel(record, model, where, {
        force: argv.force,
        needLatents: argv.latents,
        needTokens: !argv.latents,
      });
      count++;
    }
  }
  return {
    count,
    skipped,
    batches: async function* (size) {
      let chunk: LocatedRecord[] = [];
      const run = async () =>
        (
          await decodeRecords(model, chunk, {
            force: argv.force,
            useLatents: argv.latents,
            batchSize: size,
            prefix: argv.prefix,
          })
        ).images;
      for await (const located of streamRecords(source)) {
        if (isErrorRecord(located.record)) continue;
        chunk.push(located);
        if (chunk.length === size) {
          yield await run();
          chunk = [];
        }
      }
      if (chunk.length) yield await run();
    },
  };
}

/** A token array (.npy / .npz): no fingerprint to check, so rows are named FILE[i]. */
async function arrayInput(argv: DecodeArgs, model: Model): Promise<Decodable> {
  if (argv.latents)
    throw usageError(
      '--latents decodes the latents stored in token records; a token array has none (dequantize makes latents from ' +
        'it)',
    );
  const arr = await readTokens(argv.tokens, model, { key: argv.key });
  const [n, t] = arr.batch.dims;
  return {
    count: n,
    skipped: [],
    batches: async function* (size) {
      for (let i = 0; i < n; i += size) {
        const m = Math.min(size, n - i);
        const rows = { data: arr.batch.data.subarray(i * t, (i + m) * t), dims: [m, t] };
        const images =
          argv.prefix === undefined
            ? await decodeTokens(model, rows, { batchSize: size })
            : await decodePrefix(model, rows, argv.prefix, { batchSize: size });
        yield images.map((image, j) => ({ source: arr.sources[i + j], image }));
      }
    },
  };
}

export async function handler(argv: ArgumentsCamelCase<DecodeArgs>): Promise<void> {
  if (argv.key !== undefined && !/\.npz$/i.test(argv.tokens))
    throw usageError('--key names an array inside an .npz file');
  const stem = argv.tokens === STDIO ? 'stdin' : basename(argv.tokens, extname(argv.tokens));
  const output = argv.output ?? `${stem}.${argv.format === 'jpeg' ? 'jpg' : (argv.format ?? 'png')}`;
  const format = outputImageFormat(output, argv.format);
  await checkOutputPath(output, [argv.tokens], 'output', { overwrite: argv.overwrite });

  await withModel(argv, async (model) => {
    if (argv.prefix !== undefined) {
      prefixFillOf(model); // a package without a fill: one line, before anything is read or written
      checkPrefixFlag('prefix', [argv.prefix], model);
    }
    const input = isArrayFile(argv.tokens) ? await arrayInput(argv, model) : await recordsInput(argv, model);
    for (const s of input.skipped)
      notice(argv, `skipped ${s.where} (${s.source}): it records a failed input: ${s.error}`);
    if (!input.count)
      throw inputError(`${argv.tokens === STDIO ? 'stdin' : argv.tokens} holds no token records to decode`);
    if (output === STDIO && input.count > 1)
      throw usageError(
        `-o - writes one image to stdout, but there are ${input.count} records; name a file (NAME.png makes ` +
          `NAME-0.png, ...)`,
      );

    const names = outputNames(output, input.count);
    for (const name of names) await checkOutputPath(name, [argv.tokens], 'output', { overwrite: argv.overwrite });
    // What a decode killed outright into the same images left behind (issue 15.17).
    const removedTemps = await removeStaleTempsOf(names.filter((n) => n !== STDIO));
    if (removedTemps.length) notice(argv, removedTempsNotice(removedTemps));
    // Staged: nothing at an output path changes unless every image is decoded and written (issue 15.11).
    const written = new OutputSet({ overwrite: argv.overwrite });
    const outputs: { source: string; output: string }[] = [];
    const bar = progressBar(argv, input.count, 'decode');
    // Ctrl-C / SIGTERM: stop at the next image and remove this run's temporaries; one that comes while the
    // images are being moved into place waits for that to finish (a second signal quits at once, bin/).
    let stoppedBy: NodeJS.Signals | undefined;
    const stopHandling = stopGracefully((signal) => {
      stoppedBy = signal;
    });
    const stopIfAsked = () => {
      if (!stoppedBy) return;
      const message = `${stoppedBy}: stopped; no image was written (outputs appear only when all are decoded)`;
      throw stoppedBy === 'SIGTERM' ? terminatedError(message) : interruptedError(message);
    };
    try {
      const size = await batchSizeFor(
        model,
        argv.latents ? ['decoder'] : ['dequantize', 'decoder'],
        argv['batch-size'],
      );
      for await (const batch of input.batches(size)) {
        for (const { source, image } of batch) {
          stopIfAsked();
          let { rgb, width, height } = image;
          if (argv.size) {
            rgb = await resizeRgb(rgb, width, height, argv.size[0], argv.size[1]);
            [width, height] = argv.size;
          }
          const name = names[outputs.length];
          const data = await encodeImageBytes(rgb, width, height, format, {}, name);
          if (name === STDIO) await writeOutput(name, data);
          else await written.write(name, data);
          outputs.push({ source, output: name });
        }
        bar.update(outputs.length, input.count);
      }
      stopIfAsked();
      await written.commit();
    } catch (err) {
      await written.rollback();
      throw err;
    } finally {
      stopHandling();
      bar.stop();
    }
    for (const { source, output } of outputs) say(argv, `${output}  <-  ${source}`);
    announce(argv, model.execution);
    if (argv.json) printJson({ outputs, skipped: input.skipped, removedTemps, execution: model.execution });
  });
}
