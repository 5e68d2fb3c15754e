import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { quantizeLatents, tokenRecords } from '../api/quantize';
import { usageError } from '../errors';
import { readLatents } from '../tokens/arrays';
import { encodeNpy } from '../tokens/npy';
import { formatTokenFile } from '../tokens/token-file';
import { checkOutputPath } from '../io/output-path';
import { STDIO } from '../io/stdio';
import { OVERWRITE_OPTION, type OverwriteArgs, writeOutput } from '../cli/output-options';
import { announce, type GlobalArgs, printJson, say, withModel } from '../cli/globals';

export interface QuantizeArgs extends GlobalArgs, OverwriteArgs {
  key?: string;
  latents: string;
  output?: string;
  force: boolean;
}

export const command = 'quantize <latents>';
export const describe = 'Continuous latents (.npy/.npz [N,36,D], or JSON) -> token ids';

export function builder(y: Argv<GlobalArgs>): Argv<QuantizeArgs> {
  return y
    .positional('latents', {
      type: 'string',
      describe:
        '.npy/.npz floats [N,36,D] or [36,D] (float16/32/64, any order numpy writes); .json/.jsonl records with ' +
        'latents; nested JSON arrays; - for stdin',
      demandOption: true,
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: 'tokens.json / .jsonl records, or .npy (int32 [N,36]); default: records on stdout',
      },
      force: { type: 'boolean', default: false, describe: 'Accept records made by another model' },
      key: {
        type: 'string',
        requiresArg: true,
        describe: 'Which array of an .npz to read',
        defaultDescription: 'its only array',
      },
      ...OVERWRITE_OPTION,
    })
    .example('$0 quantize latents.npy -o tokens.jsonl', 'nearest codebook entry for each of the 36 latents')
    .example(
      '$0 quantize latents.npy -o ids.npy',
      'token ids as an int32 [N,36] array',
    ) as unknown as Argv<QuantizeArgs>;
}

export async function handler(argv: ArgumentsCamelCase<QuantizeArgs>): Promise<void> {
  const output = argv.output === STDIO ? undefined : argv.output;
  const ext = output ? extname(output).toLowerCase() : '';
  if (output) {
    if (!['.json', '.jsonl', '.npy'].includes(ext)) throw usageError(`-o ${output}: write .json, .jsonl or .npy`);
    await checkOutputPath(output, [argv.latents], 'output', { overwrite: argv.overwrite });
  }
  await withModel(argv, async (model) => {
    const input = await readLatents(argv.latents, model, { force: argv.force, key: argv.key });
    const rows = input.batch.dims[0];
    if (ext === '.json' && rows > 1)
      throw usageError(`-o ${output}: ${rows} rows make JSONL records; name the file .jsonl`);
    const tokens = await quantizeLatents(model, input.batch);
    announce(argv, model.execution);
    const n = tokens.dims[0];
    const t = model.numTokens;
    if (ext === '.npy') {
      await writeOutput(output!, encodeNpy(tokens.data, tokens.dims));
    } else {
      const text = formatTokenFile(tokenRecords(model, tokens, input), output);
      await writeOutput(output ?? STDIO, text);
      if (!output) return;
    }
    if (argv.json) printJson({ output, rows: n, execution: model.execution });
    else say(argv, `wrote ${n} row${n === 1 ? '' : 's'} of ${t} token ids to ${output}`);
  });
}
