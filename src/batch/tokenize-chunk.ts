/**
 * One chunk of preprocessed inputs -> one record each, in order: the images that decoded
 * go through the encoder and the codebook in a single run() each; the others become
 * error records in their place.
 */
import { latentRows, packImages } from '../api/encode';
import type { Model } from '../model/model';
import { AnyRecord, makeErrorRecord, makeRecord } from '../tokens/record';
import type { PreprocessOutcome } from './preprocess-job';

export interface ChunkItem {
  source: string;
  outcome: PreprocessOutcome;
}

export async function tokenizeChunk(model: Model, items: readonly ChunkItem[], options: { latents: boolean }): Promise<AnyRecord[]> {
  const good = items.flatMap((item, i) => (item.outcome.ok ? [{ i, rgb: item.outcome.rgb, size: item.outcome.originalSize }] : []));
  const records: AnyRecord[] = items.map((item) =>
    item.outcome.ok ? (undefined as unknown as AnyRecord) : makeErrorRecord(model, item.source, item.outcome.error),
  );
  if (good.length) {
    const latents = await model.encode(packImages(good.map((g) => g.rgb), model.imageSize));
    const tokens = (await model.quantize(latents)).data;
    const t = model.numTokens;
    good.forEach((g, k) => {
      records[g.i] = makeRecord(model, {
        source: items[g.i].source,
        originalSize: g.size,
        tokens: tokens.subarray(k * t, (k + 1) * t),
        latents: options.latents ? latentRows(latents, k) : undefined,
      });
    });
  }
  return records;
}
