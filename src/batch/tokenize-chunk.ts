/**
 * One chunk of preprocessed inputs -> one record each, in order: the images that decoded
 * go through the encoder and the codebook in a single run() each; the others become
 * error records in their place.
 */
import { tokenizeImages } from '../api/encode';
import type { AlphaMode } from '../image';
import type { Model } from '../model/model';
import { type AnyRecord, makeErrorRecord } from '../tokens/record';
import type { PreprocessOutcome } from './preprocess-job';

export interface ChunkItem {
  source: string;
  outcome: PreprocessOutcome;
}

export async function tokenizeChunk(
  model: Model,
  items: readonly ChunkItem[],
  options: { latents: boolean; alpha?: AlphaMode },
): Promise<AnyRecord[]> {
  const good = items.flatMap((item) =>
    item.outcome.ok ? [{ source: item.source, rgb: item.outcome.rgb, originalSize: item.outcome.originalSize }] : [],
  );
  const tokenized = await tokenizeImages(model, good, options);
  let k = 0;
  return items.map((item) =>
    item.outcome.ok ? tokenized[k++] : makeErrorRecord(model, item.source, item.outcome.error),
  );
}
