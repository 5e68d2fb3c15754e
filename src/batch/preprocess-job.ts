/**
 * One preprocessing job (file -> model-sized RGB) as plain, cloneable data, so it can run
 * on the main thread or in a worker thread with the same code and the same messages.
 */
import { type AlphaMode, preprocessImage } from '../image';
import { firstLine } from '../errors';

export interface PreprocessSettings {
  /** The model's input side. */
  size: number;
  alpha?: AlphaMode;
  maxPixels?: number;
  maxDecodedBytes?: number;
}

export type PreprocessOutcome =
  | { ok: true; rgb: Uint8Array; originalSize: [number, number] }
  | { ok: false; error: string };

/** First line of an error's message: what goes into the input's error record. */
export const reasonOf = (err: unknown): string => firstLine(err);

/** Never throws: a bad input becomes { ok: false, error }. `input`: a path, or the image's bytes (a tar member). */
export async function preprocessFile(
  input: string | Uint8Array,
  settings: PreprocessSettings,
): Promise<PreprocessOutcome> {
  try {
    const pre = await preprocessImage(input, settings);
    return { ok: true, rgb: pre.rgb, originalSize: [pre.originalWidth, pre.originalHeight] };
  } catch (err) {
    return { ok: false, error: reasonOf(err) };
  }
}
