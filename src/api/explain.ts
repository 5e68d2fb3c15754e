/**
 * What the ordered tokens carry, measured on one image: decode the first k tokens for each
 * k and compare each decode with the preprocessed input (what the encoder saw), so the
 * numbers measure the model and not the crop.
 */
import { DEFAULTS } from '../defaults';
import { preprocessImage } from '../image';
import type { FloatBatch, Model } from '../model/model';
import { psnr, ssim } from '../metrics/quality';
import type { ExecutionInfo } from '../runtime/onnx';
import { invalidParameter } from '../util/checks';
import type { BatchOptions, RgbImage } from './decode';
import { type ImageInput, type ImageOptions, packImages, sourceOf } from './encode';
import { checkPrefixLength, decodePrefixLatents, prefixFillOf } from './prefix';

/** The default prefix lengths: DEFAULTS.prefixLengths below the token count, then all tokens. */
export function defaultPrefixLengths(numTokens: number): number[] {
  return [...DEFAULTS.prefixLengths.filter((k) => k < numTokens), numTokens];
}

/** Check a list of prefix lengths (field `name`): integers in [0, T], at least one, no repeats. */
export function checkPrefixLengths(model: Model, ks: readonly unknown[], name = 'ks'): number[] {
  if (!Array.isArray(ks) || ks.length === 0) throw invalidParameter(name, 'a non-empty list of prefix lengths', ks);
  const out = ks.map((k, i) => checkPrefixLength(model, k, `${name}[${i}]`));
  if (new Set(out).size !== out.length) throw invalidParameter(name, 'prefix lengths without repeats', ks.join(','));
  return out;
}

export interface ExplainOptions extends ImageOptions, BatchOptions {
  /** Prefix lengths to decode, in the order given (default 1, 2, 4, 8, 16, T). */
  ks?: readonly number[];
}

export interface PrefixStep {
  k: number;
  image: RgbImage;
  /** dB against the preprocessed input; Infinity when identical. */
  psnr: number;
  ssim: number;
}

export interface ExplainResult {
  source: string;
  originalSize: [number, number];
  /** The preprocessed input: exactly what the encoder saw. */
  input: RgbImage;
  tokens: number[];
  steps: PrefixStep[];
  execution: ExecutionInfo;
}

/**
 * Decode `ks.length` copies of each image's token latents, copy j cut after ks[j]:
 * returns out[j][i] = image i decoded from its first ks[j] tokens (one batch per image).
 */
export async function decodePrefixSweep(
  model: Model,
  tokenLatents: FloatBatch,
  ks: readonly number[],
  options: BatchOptions = {},
): Promise<RgbImage[][]> {
  const [b, t, d] = tokenLatents.dims;
  const row = t * d;
  const data = new Float32Array(b * ks.length * row);
  const perImage: number[] = [];
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < ks.length; j++) {
      data.set(tokenLatents.data.subarray(i * row, (i + 1) * row), (i * ks.length + j) * row);
      perImage.push(ks[j]);
    }
  }
  const images = await decodePrefixLatents(model, { data, dims: [b * ks.length, t, d] }, perImage, options);
  return ks.map((_, j) => Array.from({ length: b }, (_, i) => images[i * ks.length + j]));
}

/** One image -> its decodes from the first k tokens for each k, with PSNR / SSIM of each. */
export async function explain(model: Model, input: ImageInput, options: ExplainOptions = {}): Promise<ExplainResult> {
  prefixFillOf(model); // a package without a fill is refused before the image is read
  const ks = checkPrefixLengths(model, options.ks ?? defaultPrefixLengths(model.numTokens));
  const data = typeof input === 'string' || input instanceof Uint8Array ? input : input.data;
  const size = model.imageSize;
  const pre = await preprocessImage(data, {
    size,
    alpha: options.alpha,
    maxPixels: options.maxPixels ?? DEFAULTS.maxPixels,
    maxDecodedBytes: options.maxDecodedBytes ?? DEFAULTS.maxDecodedBytes,
  });
  const tokens = await model.quantize(await model.encode(packImages([pre.rgb], size)));
  const sweep = await decodePrefixSweep(model, await model.dequantize(tokens), ks, options);
  return {
    source: sourceOf(input),
    originalSize: [pre.originalWidth, pre.originalHeight],
    input: { rgb: pre.rgb, width: size, height: size },
    tokens: Array.from(tokens.data),
    steps: ks.map((k, j) => {
      const image = sweep[j][0];
      return { k, image, psnr: psnr(pre.rgb, image.rgb), ssim: ssim(pre.rgb, image.rgb, size, size) };
    }),
    execution: model.execution!,
  };
}
