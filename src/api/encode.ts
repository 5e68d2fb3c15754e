/**
 * Images -> token records. Preprocessing (src/image) feeds batches to the encoder and the
 * codebook: one `run()` per graph per batch. While a batch runs, the next one is decoded.
 */
import { batchSizeFor } from './batch-size';
import { inputError, StyledVqError, firstLine } from '../errors';
import { DEFAULTS } from '../defaults';
import { type AlphaMode, alphaText, preprocessImage, toModelInput } from '../image';
import type { FloatBatch, Model } from '../model/model';
import type { ExecutionInfo } from '../runtime/onnx';
import { type AnyRecord, makeErrorRecord, makeRecord, type TokenRecord } from '../tokens/record';
import { float32Text } from '../tokens/token-file';
import { ranges } from '../util/batches';

/** A path, raw bytes, or bytes with a name to record as `source`. */
export type ImageInput = string | Uint8Array | { source: string; data: Uint8Array };

export interface ImageOptions {
  /** 'drop' (default, like PIL's convert('RGB')) or { background: [r, g, b] } to composite on. */
  alpha?: AlphaMode;
  /** Refuse images with more pixels than this (default 0x3FFF * 0x3FFF). */
  maxPixels?: number;
  /** Refuse images whose decoded first frame is larger than this many bytes (default 512 MiB). */
  maxDecodedBytes?: number;
}

export interface EncodeOptions extends ImageOptions {
  /** Images per run (default by device: 8 on CPU, 64 on CUDA, 32 on WebGPU). Results do not depend on it. */
  batchSize?: number;
  /** Also return the continuous latents [num_tokens][latent_dim] in each record. */
  latents?: boolean;
  /**
   * false (default): the first bad input throws. true: it becomes an error record
   * ({ source, error }) in its place and the others go on.
   */
  continueOnError?: boolean;
  /** Called after each batch with the number of inputs done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface EncodeResult<R extends AnyRecord = AnyRecord> {
  /** One per input, in input order (error records only with continueOnError). */
  records: R[];
  /** Which provider ran (and why, if 'auto' fell back). */
  execution: ExecutionInfo;
}

export function sourceOf(input: ImageInput): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return '<buffer>';
  return input.source;
}

function dataOf(input: ImageInput): string | Uint8Array {
  return typeof input === 'string' || input instanceof Uint8Array ? input : input.data;
}

/** Every failure as a StyledVqError naming the input. */
function asInputError(source: string, err: unknown): StyledVqError {
  if (err instanceof StyledVqError) return err;
  return inputError(`${source}: ${firstLine(err)}`, err);
}

interface Prepared extends PreparedImage {
  index: number;
}

/** Preprocess one model-sized batch of inputs; failures are returned, not thrown. */
export async function preprocessBatch(
  model: Model,
  inputs: readonly ImageInput[],
  start: number,
  options: ImageOptions,
): Promise<(Prepared | { index: number; source: string; error: StyledVqError })[]> {
  return Promise.all(
    inputs.map(async (input, i) => {
      const source = sourceOf(input);
      try {
        const pre = await preprocessImage(dataOf(input), {
          size: model.imageSize,
          alpha: options.alpha,
          maxPixels: options.maxPixels ?? DEFAULTS.maxPixels,
          maxDecodedBytes: options.maxDecodedBytes ?? DEFAULTS.maxDecodedBytes,
        });
        return {
          index: start + i,
          source,
          originalSize: [pre.originalWidth, pre.originalHeight] as [number, number],
          rgb: pre.rgb,
        };
      } catch (err) {
        return { index: start + i, source, error: asInputError(source, err) };
      }
    }),
  );
}

/** Pack preprocessed RGB images into one float32 [B,3,S,S] batch in [-1, 1]. */
export function packImages(images: readonly Uint8Array[], size: number): FloatBatch {
  return { data: toModelInput(images, size), dims: [images.length, 3, size, size] };
}

/** Latents of image `i` of a [B,T,D] batch as T rows of D numbers (float32-exact decimals). */
export function latentRows(latents: FloatBatch, i: number): number[][] {
  const [, t, d] = latents.dims;
  const rows: number[][] = [];
  for (let r = 0; r < t; r++) {
    const off = (i * t + r) * d;
    rows.push(Array.from(latents.data.subarray(off, off + d), float32Text));
  }
  return rows;
}

/** A decoded image on its way to the encoder. */
export interface PreparedImage {
  source: string;
  rgb: Uint8Array;
  originalSize: [number, number];
}

/**
 * Decoded images -> one token record each, in order: the encoder and the codebook in a
 * single run() each (the step encodeImages and batch share).
 */
export async function tokenizeImages(
  model: Model,
  images: readonly PreparedImage[],
  options: { latents?: boolean; alpha?: AlphaMode } = {},
): Promise<TokenRecord[]> {
  if (!images.length) return [];
  const alpha = alphaText(options.alpha);
  const latents = await model.encode(
    packImages(
      images.map((p) => p.rgb),
      model.imageSize,
    ),
  );
  const tokens = (await model.quantize(latents)).data;
  const t = model.numTokens;
  return images.map((p, i) =>
    makeRecord(model, {
      source: p.source,
      originalSize: p.originalSize,
      tokens: tokens.subarray(i * t, (i + 1) * t),
      latents: options.latents ? latentRows(latents, i) : undefined,
      alpha,
    }),
  );
}

/**
 * Tokenize images: each becomes a record with 36 token ids (and optionally its latents).
 * Without `continueOnError` every record is a TokenRecord (a bad input throws), and the
 * result is typed so.
 */
export async function encodeImages(
  model: Model,
  inputs: readonly ImageInput[],
  options?: EncodeOptions & { continueOnError?: false },
): Promise<EncodeResult<TokenRecord>>;
export async function encodeImages(
  model: Model,
  inputs: readonly ImageInput[],
  options: EncodeOptions,
): Promise<EncodeResult>;
export async function encodeImages(
  model: Model,
  inputs: readonly ImageInput[],
  options: EncodeOptions = {},
): Promise<EncodeResult> {
  // Nothing to encode opens no session (the device decides the default batch size).
  const batchSize =
    options.batchSize !== undefined || inputs.length
      ? await batchSizeFor(model, ['encoder', 'codebook'], options.batchSize)
      : 1;
  const records: AnyRecord[] = new Array(inputs.length);
  const chunks = ranges(inputs.length, batchSize);
  const prepare = (k: number) =>
    preprocessBatch(model, inputs.slice(chunks[k][0], chunks[k][1]), chunks[k][0], options);

  let next = chunks.length ? prepare(0) : undefined;
  let done = 0;
  for (let k = 0; k < chunks.length; k++) {
    const batch = await next!;
    next = k + 1 < chunks.length ? prepare(k + 1) : undefined;

    const ok: Prepared[] = [];
    for (const item of batch) {
      if ('error' in item) {
        if (!options.continueOnError) {
          await next; // never leave a rejected or running prefetch behind
          throw item.error;
        }
        records[item.index] = makeErrorRecord(model, item.source, item.error.message);
      } else ok.push(item);
    }
    let tokenized: TokenRecord[];
    try {
      tokenized = await tokenizeImages(model, ok, options);
    } catch (err) {
      await next?.catch(() => undefined);
      throw err;
    }
    ok.forEach((p, i) => {
      records[p.index] = tokenized[i];
    });
    done += batch.length;
    options.onProgress?.(done, inputs.length);
  }
  return { records, execution: model.execution ?? (await model.prepare(['encoder'])) };
}

/** One image -> one record (throws on bad input). */
export async function encodeImage(
  model: Model,
  input: ImageInput,
  options: Omit<EncodeOptions, 'continueOnError'> = {},
): Promise<TokenRecord> {
  const { records } = await encodeImages(model, [input], options);
  return records[0];
}
