/**
 * The prefix curve of a package over a set of images: mean PSNR / SSIM of the decode of the
 * first k tokens, for each k, against the preprocessed input. The same measure as
 * training/evaluate.py's `prefix_curve.quantized` (per-image PSNR and SSIM, then the mean),
 * except that our decodes are 8-bit pixels (the Python side measures the float output), a
 * difference within rounding. Images stream through in batches: memory does not grow with
 * the folder.
 */
import { DEFAULTS } from '../defaults';
import { inputError } from '../errors';
import type { Model } from '../model/model';
import { psnr, ssim } from '../metrics/quality';
import type { ExecutionInfo } from '../runtime/onnx';
import { positiveInteger } from '../util/checks';
import type { ListedInput } from '../batch/input-list';
import type { ImageInput, ImageOptions } from './encode';
import { packImages, preprocessBatch } from './encode';
import { checkPrefixLengths, decodePrefixSweep } from './explain';
import { prefixFillOf } from './prefix';

export interface EvaluateOptions extends ImageOptions {
  /**
   * Prefix lengths (default DEFAULTS.evaluatePrefixLengths); 0 and num_tokens are always
   * added, as training/evaluate.py does, and the list is sorted.
   */
  ks?: readonly number[];
  /** Images per run (default 8). Results do not depend on it. */
  batchSize?: number;
  /** Called after each batch with the number of images measured so far. */
  onProgress?: (done: number) => void;
}

export interface PrefixCurvePoint {
  k: number;
  /** Mean over the images, dB (Infinity if any decode was identical to its input). */
  psnr: number;
  ssim: number;
  psnrStd: number;
  ssimStd: number;
}

export interface EvaluateResult {
  images: number;
  curve: PrefixCurvePoint[];
  execution: ExecutionInfo;
}

/** The prefix lengths evaluate measures: the given ones plus 0 and T, sorted. */
export function evaluatePrefixLengths(model: Model, ks?: readonly number[]): number[] {
  const given = checkPrefixLengths(model, ks ?? DEFAULTS.evaluatePrefixLengths.filter((k) => k <= model.numTokens));
  return [...new Set([0, ...given, model.numTokens])].sort((a, b) => a - b);
}

class Stats {
  n = 0;
  private sum = 0;
  private sumSq = 0;
  add(v: number): void {
    this.n++;
    this.sum += v;
    this.sumSq += v * v;
  }
  get mean(): number {
    return this.sum / this.n;
  }
  /** Population standard deviation (numpy's / torch's unbiased=False, as evaluate.py reports). */
  get std(): number {
    return Math.sqrt(Math.max(0, this.sumSq / this.n - this.mean ** 2));
  }
}

/** Images (paths, bytes, or a listing such as an InputList) -> the prefix curve. */
export async function evaluatePrefixCurve(
  model: Model,
  inputs: Iterable<ImageInput | ListedInput> | AsyncIterable<ImageInput | ListedInput>,
  options: EvaluateOptions = {},
): Promise<EvaluateResult> {
  prefixFillOf(model);
  const ks = evaluatePrefixLengths(model, options.ks);
  const batchSize = positiveInteger('batchSize', options.batchSize ?? DEFAULTS.batchSize);
  const stats = ks.map(() => ({ psnr: new Stats(), ssim: new Stats() }));
  const size = model.imageSize;
  let done = 0;

  const run = async (batch: ImageInput[]) => {
    const prepared = await preprocessBatch(model, batch, done, options);
    const rgbs = prepared.map((p) => {
      if ('error' in p) throw p.error;
      return p.rgb;
    });
    const tokens = await model.quantize(await model.encode(packImages(rgbs, size)));
    const sweep = await decodePrefixSweep(model, await model.dequantize(tokens), ks, {
      batchSize: batchSize * ks.length,
    });
    for (const [j, images] of sweep.entries()) {
      for (const [i, img] of images.entries()) {
        stats[j].psnr.add(psnr(rgbs[i], img.rgb));
        stats[j].ssim.add(ssim(rgbs[i], img.rgb, size, size));
      }
    }
    done += batch.length;
    options.onProgress?.(done);
  };

  let batch: ImageInput[] = [];
  for await (const item of inputs as AsyncIterable<ImageInput | ListedInput>) {
    batch.push(asImageInput(item));
    if (batch.length === batchSize) {
      await run(batch);
      batch = [];
    }
  }
  if (batch.length) await run(batch);
  if (!done) throw inputError('No images to evaluate');
  return {
    images: done,
    curve: ks.map((k, j) => ({
      k,
      psnr: stats[j].psnr.mean,
      ssim: stats[j].ssim.mean,
      psnrStd: stats[j].psnr.std,
      ssimStd: stats[j].ssim.std,
    })),
    execution: model.execution!,
  };
}

function asImageInput(item: ImageInput | ListedInput): ImageInput {
  if (typeof item === 'string' || item instanceof Uint8Array) return item;
  if ('error' in item && item.error) throw inputError(`${item.source}: ${item.error}`);
  if ('data' in item && item.data) return { source: item.source, data: item.data };
  return item.source;
}
