/**
 * Child of bench/streaming.ts: the reader `decode` runs over its input, alone: every
 * record parsed (streamRecords) and checked against the model (checkRecordForModel).
 */
import { readManifest } from '../src/model/manifest';
import { checkRecordForModel, isErrorRecord } from '../src/tokens/record';
import { streamRecords, tokenSource } from '../src/tokens/token-file';

async function main(): Promise<void> {
  const [file, modelDir] = process.argv.slice(2);
  const m = await readManifest(modelDir);
  const shape = {
    name: m.name,
    fingerprint: m.fingerprint,
    numTokens: m.config.num_tokens,
    codebookSize: m.codebook.size,
    latentDim: m.config.latent_dim,
  };
  let n = 0;
  for await (const { record, where } of streamRecords(await tokenSource(file))) {
    if (!isErrorRecord(record)) checkRecordForModel(record, shape, where);
    n++;
  }
  process.stdout.write(`${n}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
