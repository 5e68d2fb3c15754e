import type { Argv, ArgumentsCamelCase } from 'yargs';
import { extname } from 'node:path';
import { quantizeLatents } from '../api/quantize';
import { usageError } from '../errors';
import { readLatents } from '../tokens/arrays';
import { writeNpy } from '../tokens/npy';
import { makeRecord, TokenRecord } from '../tokens/record';
import { formatTokenFile } from '../tokens/token-file';
import { checkOutputPath, writeFileAtomic } from '../util/atomic';
import { announce, GlobalArgs, io, printJson, say, withModel } from '../cli/globals';

export interface QuantizeArgs extends GlobalArgs {
  latents: string;
  output?: string;
  force: boolean;
}

export const command = 'quantize <latents>';
export const describe = 'Continuous latents (float32 [N,36,D] .npy, or JSON) -> token ids';

export function builder(y: Argv<GlobalArgs>): Argv<QuantizeArgs> {
  return y
    .positional('latents', { type: 'string', describe: '.npy float32 [N,36,D] or [36,D]; or .json/.jsonl records with latents, or nested JSON arrays', demandOption: true })
    .options({
      output: { alias: 'o', type: 'string', requiresArg: true, describe: 'tokens.json / .jsonl records, or .npy (int32 [N,36]); default: records on stdout' },
      force: { type: 'boolean', default: false, describe: 'Accept records made by another model' },
    })
    .example('$0 quantize latents.npy -o tokens.jsonl', 'nearest codebook entry for each of the 36 latents')
    .example('$0 quantize latents.npy -o ids.npy', 'token ids as an int32 [N,36] array') as unknown as Argv<QuantizeArgs>;
}

export async function handler(argv: ArgumentsCamelCase<QuantizeArgs>): Promise<void> {
  const output = argv.output;
  const ext = output ? extname(output).toLowerCase() : '';
  if (output) {
    if (!['.json', '.jsonl', '.npy'].includes(ext)) throw usageError(`-o ${output}: write .json, .jsonl or .npy`);
    await checkOutputPath(output, [argv.latents]);
  }
  await withModel(argv, async (model) => {
    const input = await readLatents(argv.latents, model, { force: argv.force });
    const rows = input.batch.dims[0];
    if (ext === '.json' && rows > 1) throw usageError(`-o ${output}: ${rows} rows make JSONL records; name the file .jsonl`);
    const tokens = await quantizeLatents(model, input.batch);
    announce(argv, model.execution);
    const n = tokens.dims[0];
    const t = model.numTokens;
    if (ext === '.npy') {
      await writeNpy(output!, tokens.data, tokens.dims);
    } else {
      const records: TokenRecord[] = [];
      for (let i = 0; i < n; i++) {
        const from = input.records?.[i];
        const rec = makeRecord(
          { name: model.name, fingerprint: model.fingerprint, preprocessing: from?.preprocessing },
          { source: input.sources[i], originalSize: from?.original_size, tokens: tokens.data.subarray(i * t, (i + 1) * t) },
        );
        records.push(rec);
      }
      const text = formatTokenFile(records, output);
      if (!output) {
        io.stdout(text);
        return;
      }
      await writeFileAtomic(output, text);
    }
    if (argv.json) printJson({ output, rows: n, execution: model.execution });
    else say(argv, `wrote ${n} row${n === 1 ? '' : 's'} of ${t} token ids to ${output}`);
  });
}
