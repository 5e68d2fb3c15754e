import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { dequantizeTokens, tokenRecords } from '../api/quantize';
import { usageError } from '../errors';
import { readTokens } from '../tokens/arrays';
import { encodeNpy } from '../tokens/npy';
import { formatTokenFile } from '../tokens/token-file';
import { checkOutputPath } from '../io/output-path';
import { STDIO } from '../io/stdio';
import { OVERWRITE_OPTION, type OverwriteArgs, writeOutput } from '../cli/output-options';
import { announce, type GlobalArgs, printJson, say, withModel } from '../cli/globals';

export interface DequantizeArgs extends GlobalArgs, OverwriteArgs {
  key?: string;
  tokens: string;
  output?: string;
  force: boolean;
}

export const command = 'dequantize <tokens>';
export const describe = 'Token ids -> their codebook latents (float32 [N,36,D])';

export function builder(y: Argv<GlobalArgs>): Argv<DequantizeArgs> {
  return y
    .positional('tokens', {
      type: 'string',
      describe:
        'tokens.json / .jsonl records; .npy/.npz integer ids [N,36] or [36] (any integer dtype numpy writes); ' +
        'nested JSON arrays; - for stdin',
      demandOption: true,
    })
    .options({
      output: {
        alias: 'o',
        type: 'string',
        requiresArg: true,
        describe: '.npy (float32 [N,36,D]) or .json/.jsonl records with latents; default: records on stdout',
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
    .example('$0 dequantize tokens.jsonl -o latents.npy', 'codebook rows as a float32 [N,36,D] array')
    .example(
      '$0 dequantize tokens.json',
      'print the record with its latents filled in',
    ) as unknown as Argv<DequantizeArgs>;
}

export async function handler(argv: ArgumentsCamelCase<DequantizeArgs>): Promise<void> {
  const output = argv.output === STDIO ? undefined : argv.output;
  const ext = output ? extname(output).toLowerCase() : '';
  if (output) {
    if (!['.json', '.jsonl', '.npy'].includes(ext)) throw usageError(`-o ${output}: write .npy, .json or .jsonl`);
    await checkOutputPath(output, [argv.tokens], 'output', { overwrite: argv.overwrite });
  }
  await withModel(argv, async (model) => {
    const input = await readTokens(argv.tokens, model, { force: argv.force, key: argv.key });
    const rows = input.batch.dims[0];
    if (ext === '.json' && rows > 1)
      throw usageError(`-o ${output}: ${rows} rows make JSONL records; name the file .jsonl`);
    const latents = await dequantizeTokens(model, input.batch);
    announce(argv, model.execution);
    if (ext === '.npy') {
      await writeOutput(output!, encodeNpy(latents.data, latents.dims));
    } else {
      const text = formatTokenFile(tokenRecords(model, input.batch, input, latents), output);
      await writeOutput(output ?? STDIO, text);
      if (!output) return;
    }
    if (argv.json) printJson({ output, shape: latents.dims, execution: model.execution });
    else say(argv, `wrote latents of shape [${latents.dims.join(',')}] to ${output}`);
  });
}
