/**
 * The quantization step on its own, for users who work with continuous latents:
 * latents [N,T,D] -> token ids [N,T] (nearest codebook row) and back (row lookup).
 */
import { DEFAULTS } from '../defaults';
import type { FloatBatch, Model, TokenBatch } from '../model/model';
import { mapChunks } from '../util/batches';
import { positiveInteger } from '../util/checks';
import type { BatchOptions } from './decode';

export async function quantizeLatents(model: Model, latents: FloatBatch, options: BatchOptions = {}): Promise<TokenBatch> {
  const size = positiveInteger('batchSize', options.batchSize ?? DEFAULTS.batchSize);
  return mapChunks(latents, size, (c) => model.quantize(c), (n) => new Int32Array(n));
}

export async function dequantizeTokens(model: Model, tokens: TokenBatch, options: BatchOptions = {}): Promise<FloatBatch> {
  const size = positiveInteger('batchSize', options.batchSize ?? DEFAULTS.batchSize);
  return mapChunks(tokens, size, (c) => model.dequantize(c), (n) => new Float32Array(n));
}
