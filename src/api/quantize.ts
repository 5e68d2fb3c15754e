/**
 * The quantization step on its own, for users who work with continuous latents:
 * latents [N,T,D] -> token ids [N,T] (nearest codebook row) and back (row lookup).
 */
import { batchSizeFor } from './batch-size';
import type { FloatBatch, Model, TokenBatch } from '../model/model';
import type { ArraysFrom } from '../tokens/arrays';
import { makeRecord, type TokenRecord } from '../tokens/record';
import { latentRows } from './encode';
import { mapChunks } from '../util/batches';
import type { BatchOptions } from './decode';

export async function quantizeLatents(
  model: Model,
  latents: FloatBatch,
  options: BatchOptions = {},
): Promise<TokenBatch> {
  const size = await batchSizeFor(model, ['codebook'], options.batchSize);
  return mapChunks(
    latents,
    size,
    (c) => model.quantize(c),
    (n) => new Int32Array(n),
  );
}

export async function dequantizeTokens(
  model: Model,
  tokens: TokenBatch,
  options: BatchOptions = {},
): Promise<FloatBatch> {
  const size = await batchSizeFor(model, ['dequantize'], options.batchSize);
  return mapChunks(
    tokens,
    size,
    (c) => model.dequantize(c),
    (n) => new Float32Array(n),
  );
}

/**
 * Token records for the rows of `tokens` (with `latents`, each carries its latents too),
 * named after the rows they came from: a record input keeps its source, original size and
 * preprocessing; a plain array's rows are "<file>[i]".
 */
export function tokenRecords(
  model: Model,
  tokens: TokenBatch,
  from: Omit<ArraysFrom<unknown>, 'batch'>,
  latents?: FloatBatch,
): TokenRecord[] {
  const t = model.numTokens;
  return Array.from({ length: tokens.dims[0] }, (_, i) => {
    const rec = from.records?.[i];
    return makeRecord(
      { name: model.name, fingerprint: model.fingerprint, preprocessing: rec?.preprocessing },
      {
        source: from.sources[i],
        originalSize: rec?.original_size,
        tokens: tokens.data.subarray(i * t, (i + 1) * t),
        latents: latents ? latentRows(latents, i) : undefined,
      },
    );
  });
}
