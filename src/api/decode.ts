/**
 * Tokens or latents -> RGB images: dequantize (token ids -> codebook rows), then the
 * decoder, one `run()` per batch; output pixels are clamped to [-1, 1] and scaled to 0..255.
 */
import { batchSizeFor } from './batch-size';
import { usageError } from '../errors';
import { fromModelOutput, type RgbImage } from '../image';
import type { FloatBatch, Model, TokenBatch } from '../model/model';
import type { ExecutionInfo } from '../runtime/onnx';
import { checkRecordForModel, isErrorRecord, type TokenRecord } from '../tokens/record';
import type { LocatedRecord } from '../tokens/token-file';
import { mapChunks } from '../util/batches';
import { decodePrefix, decodePrefixLatents } from './prefix';

export type { RgbImage };

export interface BatchOptions {
  /** Images per run (default by device: 8 on CPU, 64 on CUDA, 32 on WebGPU). */
  batchSize?: number;
}

/** Token ids as [B][T] numbers or a [B,T] batch. */
export type TokensInput = readonly (readonly number[])[] | TokenBatch;

export function toTokenBatch(tokens: TokensInput, numTokens: number): TokenBatch {
  if ('dims' in tokens) return tokens;
  const rows = tokens as readonly (readonly number[])[];
  const data = new Int32Array(rows.length * numTokens);
  rows.forEach((row, i) => {
    if (row.length !== numTokens)
      throw usageError(`Expected ${numTokens} tokens per image but image ${i} has ${row.length}`);
    data.set(row, i * numTokens);
  });
  return { data, dims: [rows.length, numTokens] };
}

/** Model output [B,3,S,S] -> B RGB images. */
export function toImages(images: FloatBatch): RgbImage[] {
  const [b, , h, w] = images.dims;
  const out: RgbImage[] = [];
  for (let i = 0; i < b; i++) out.push({ rgb: fromModelOutput(images.data, w, h, i), width: w, height: h });
  return out;
}

/** latents [B,T,D] -> decoded images. */
export async function decodeLatents(
  model: Model,
  latents: FloatBatch,
  options: BatchOptions = {},
): Promise<RgbImage[]> {
  const size = await batchSizeFor(model, ['decoder'], options.batchSize);
  const images = await mapChunks(
    latents,
    size,
    (c) => model.decode(c),
    (n) => new Float32Array(n),
  );
  return toImages(images);
}

/** token ids -> latents (codebook rows) -> decoded images. */
export async function decodeTokens(model: Model, tokens: TokensInput, options: BatchOptions = {}): Promise<RgbImage[]> {
  const size = await batchSizeFor(model, ['dequantize', 'decoder'], options.batchSize);
  const batch = toTokenBatch(tokens, model.numTokens);
  const latents = await mapChunks(
    batch,
    size,
    (c) => model.dequantize(c),
    (n) => new Float32Array(n),
  );
  return decodeLatents(model, latents, options);
}

export interface DecodeRecordsOptions extends BatchOptions {
  /** Decode records made by another model (fingerprint mismatch); count and range are still checked. */
  force?: boolean;
  /** Decode each record's continuous `latents` instead of its tokens. */
  useLatents?: boolean;
  /** Decode only the first `prefix` positions, the rest from the package's prefix fill (api/prefix.ts). */
  prefix?: number;
}

export interface DecodedRecord {
  source: string;
  where: string;
  image: RgbImage;
}

export interface DecodeRecordsResult {
  images: DecodedRecord[];
  /** Error records of a batch file (inputs that failed to encode): nothing to decode. */
  skipped: { source: string; where: string; error: string }[];
  execution: ExecutionInfo;
}

/**
 * Decode token records (as read by readTokenFile). Every record is checked against the
 * model first (fingerprint, count, range), so nothing is decoded when one is bad.
 */
export async function decodeRecords(
  model: Model,
  located: readonly LocatedRecord[],
  options: DecodeRecordsOptions = {},
): Promise<DecodeRecordsResult> {
  const good: { rec: TokenRecord; where: string }[] = [];
  const skipped: DecodeRecordsResult['skipped'] = [];
  for (const { record, where } of located) {
    if (isErrorRecord(record)) {
      skipped.push({ source: record.source, where, error: record.error });
      continue;
    }
    checkRecordForModel(record, model, where, {
      force: options.force,
      needLatents: options.useLatents,
      needTokens: !options.useLatents,
    });
    good.push({ rec: record, where });
  }
  let images: RgbImage[] = [];
  if (good.length) {
    if (options.useLatents) {
      const t = model.numTokens;
      const d = model.latentDim;
      const data = new Float32Array(good.length * t * d);
      for (const [i, { rec }] of good.entries())
        for (const [r, row] of rec.latents!.entries()) data.set(row, (i * t + r) * d);
      const latents = { data, dims: [good.length, t, d] };
      images =
        options.prefix === undefined
          ? await decodeLatents(model, latents, options)
          : await decodePrefixLatents(model, latents, options.prefix, options);
    } else {
      const tokens = good.map(({ rec }) => rec.tokens);
      images =
        options.prefix === undefined
          ? await decodeTokens(model, tokens, options)
          : await decodePrefix(model, tokens, options.prefix, options);
    }
  }
  return {
    images: good.map(({ rec, where }, i) => ({ source: rec.source, where, image: images[i] })),
    skipped,
    execution: model.execution ?? (await model.prepare(['dequantize'])),
  };
}
