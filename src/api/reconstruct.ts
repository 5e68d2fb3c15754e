/**
 * Image -> tokens -> image, with PSNR and SSIM against the preprocessed input (what the
 * model saw), so the numbers measure the model and not the crop.
 */
import { preprocessImage } from '../image';
import { DEFAULTS } from '../defaults';
import type { Model } from '../model/model';
import { psnr, ssim } from '../metrics/quality';
import type { ExecutionInfo } from '../runtime/onnx';
import { decodeLatents, type RgbImage } from './decode';
import { type ImageInput, type ImageOptions, packImages, sourceOf } from './encode';

export interface ReconstructOptions extends ImageOptions {
  /** Decode the continuous latents instead of the quantized tokens (default false). */
  continuous?: boolean;
}

export interface ReconstructResult {
  source: string;
  originalSize: [number, number];
  /** The preprocessed input: exactly what the encoder saw. */
  input: RgbImage;
  /** The decoder's output. */
  output: RgbImage;
  tokens: number[];
  /** dB; Infinity when identical. */
  psnr: number;
  ssim: number;
  /** Whether the output was decoded from tokens (default) or from continuous latents. */
  via: 'tokens' | 'latents';
  execution: ExecutionInfo;
}

export async function reconstruct(
  model: Model,
  input: ImageInput,
  options: ReconstructOptions = {},
): Promise<ReconstructResult> {
  const source = sourceOf(input);
  const data = typeof input === 'string' || input instanceof Uint8Array ? input : input.data;
  const pre = await preprocessImage(data, {
    size: model.imageSize,
    alpha: options.alpha,
    maxPixels: options.maxPixels ?? DEFAULTS.maxPixels,
    maxDecodedBytes: options.maxDecodedBytes ?? DEFAULTS.maxDecodedBytes,
  });
  const latents = await model.encode(packImages([pre.rgb], model.imageSize));
  const tokens = await model.quantize(latents);
  const decodeFrom = options.continuous ? latents : await model.dequantize(tokens);
  const [output] = await decodeLatents(model, decodeFrom);
  const size = model.imageSize;
  return {
    source,
    originalSize: [pre.originalWidth, pre.originalHeight],
    input: { rgb: pre.rgb, width: size, height: size },
    output,
    tokens: Array.from(tokens.data),
    psnr: psnr(pre.rgb, output.rgb),
    ssim: ssim(pre.rgb, output.rgb, size, size),
    via: options.continuous ? 'latents' : 'tokens',
    execution: model.execution!,
  };
}
