/**
 * Prefix decoding (docs/model-package.md, "Prefix fill"): the 36 tokens are ordered from
 * high-level to low-level attributes, so the first k of them already make an image. The
 * positions k..T-1 are replaced by the package's `prefix_fill` (what training used for
 * dropped tokens) before the decoder runs; k = T is a plain decode, k = 0 the fill alone.
 */
import { batchSizeFor } from './batch-size';
import { modelError } from '../errors';
import type { FloatBatch, Model } from '../model/model';
import { isInteger, invalidParameter } from '../util/checks';
import { mapChunks } from '../util/batches';
import { type BatchOptions, decodeLatents, type RgbImage, type TokensInput, toTokenBatch } from './decode';

/** The fill as one float32 [T*D] array, or a one-line model error when the package has none. */
export function prefixFillOf(model: Model): Float32Array {
  const fill = model.manifest.prefix_fill;
  if (!fill) {
    throw modelError(
      `Model "${model.name}" (${model.dir}) has no prefix fill (model.json "prefix_fill"), so it cannot decode token prefixes; ` +
        're-export it with training/export.py --prefix-fill',
    );
  }
  return Float32Array.from(fill.values.flat());
}

/** Whether the package can decode prefixes (has a `prefix_fill`). */
export function hasPrefixFill(model: Model): boolean {
  return model.manifest.prefix_fill !== undefined;
}

/** Check a prefix length: an integer in [0, numTokens]; `name` is the option field in the message. */
export function checkPrefixLength(model: Model, k: unknown, name = 'k'): number {
  if (!isInteger(k) || k < 0 || k > model.numTokens)
    throw invalidParameter(name, `integer between 0 and ${model.numTokens}`, k);
  return k;
}

/**
 * latents [B,T,D] with positions k..T-1 of every image replaced by the fill (a copy);
 * `k` may be one length for all images or one per image.
 */
export function fillAfterPrefix(model: Model, latents: FloatBatch, k: number | readonly number[]): FloatBatch {
  const fill = prefixFillOf(model);
  const [b, t, d] = latents.dims;
  const ks = typeof k === 'number' ? new Array<number>(b).fill(k) : k;
  if (ks.length !== b) throw invalidParameter('k', `one prefix length per image (${b})`, ks);
  const data = Float32Array.from(latents.data);
  ks.forEach((kk, i) => {
    checkPrefixLength(model, kk, typeof k === 'number' ? 'k' : `k[${i}]`);
    data.set(fill.subarray(kk * d, t * d), (i * t + kk) * d);
  });
  return { data, dims: [b, t, d] };
}

/** Continuous latents [B,T,D] -> images decoded from their first k positions only. */
export async function decodePrefixLatents(
  model: Model,
  latents: FloatBatch,
  k: number | readonly number[],
  options: BatchOptions = {},
): Promise<RgbImage[]> {
  return decodeLatents(model, fillAfterPrefix(model, latents, k), options);
}

/**
 * Token ids -> images decoded from the first k tokens of each (the rest replaced by the
 * package's prefix fill). `k` is one length for all images or one per image.
 */
export async function decodePrefix(
  model: Model,
  tokens: TokensInput,
  k: number | readonly number[],
  options: BatchOptions = {},
): Promise<RgbImage[]> {
  prefixFillOf(model); // refuse a package without a fill before any work
  const size = await batchSizeFor(model, ['dequantize', 'decoder'], options.batchSize);
  const latents = await mapChunks(
    toTokenBatch(tokens, model.numTokens),
    size,
    (c) => model.dequantize(c),
    (n) => new Float32Array(n),
  );
  return decodePrefixLatents(model, latents, k, options);
}
