/** What the model sees: an input after orientation, colour conversion, crop and resize. */
import { DEFAULTS } from '../defaults';
import { preprocessImage } from '../image';
import type { RgbImage } from './decode';
import { type ImageInput, type ImageOptions, sourceOf } from './encode';

export interface PreprocessResult extends RgbImage {
  source: string;
  originalSize: [number, number];
}

export async function preprocess(
  input: ImageInput,
  size: number,
  options: ImageOptions = {},
): Promise<PreprocessResult> {
  const data = typeof input === 'string' || input instanceof Uint8Array ? input : input.data;
  const pre = await preprocessImage(data, {
    size,
    alpha: options.alpha,
    maxPixels: options.maxPixels ?? DEFAULTS.maxPixels,
    maxDecodedBytes: options.maxDecodedBytes ?? DEFAULTS.maxDecodedBytes,
  });
  return {
    source: sourceOf(input),
    originalSize: [pre.originalWidth, pre.originalHeight],
    rgb: pre.rgb,
    width: size,
    height: size,
  };
}
