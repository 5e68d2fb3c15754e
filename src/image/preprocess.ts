/**
 * The public preprocessing entries: file or bytes -> size x size RGB, identical to
 * `training/styled_vq/preprocess.py` `preprocess(path, size, alpha, background)`, and
 * `loadRgb`, its decoding half (`load_rgb`).
 */
import { DEFAULTS } from '../defaults';
import { inputError, StyledVqError } from '../errors';
import { invalidParameter, positiveInteger } from '../util/checks';
import { centerCropArr, checkResampleSize } from './center-crop';
import { type AlphaMode, decodeRgb, describeInput } from './decode';
import type { RgbImage } from './types';

/** The defaults of preprocessing: those of the library (src/defaults.ts). */
export const PREPROCESS_DEFAULTS = {
  alpha: DEFAULTS.alpha as AlphaMode,
  maxPixels: DEFAULTS.maxPixels,
  maxDecodedBytes: DEFAULTS.maxDecodedBytes,
};

export interface PreprocessOptions {
  /** Output side in pixels (the model's input resolution). */
  size: number;
  /** Default 'drop' (PIL convert('RGB'): colour under transparent pixels is kept). */
  alpha?: AlphaMode;
  /** Refuse inputs with more pixels than this. Default PREPROCESS_DEFAULTS.maxPixels. */
  maxPixels?: number;
  /** Refuse inputs that decode to more bytes than this. Default PREPROCESS_DEFAULTS.maxDecodedBytes (512 MiB). */
  maxDecodedBytes?: number;
}

export interface PreprocessedImage {
  /** size * size * 3 bytes, HWC, RGB. */
  rgb: Uint8Array;
  size: number;
  /** Size after EXIF orientation, before any resizing. */
  originalWidth: number;
  originalHeight: number;
}

/**
 * How transparent pixels were handled, as records and sidecars write it (`preprocessing.alpha`):
 * "drop", or "background:R,G,B" for a composite on that colour (`--background R,G,B`).
 * It changes the tokens of any image with alpha, so a resumed run must use the same.
 */
export function alphaText(alpha: AlphaMode | undefined): string {
  const mode = normaliseAlpha(alpha);
  return mode === 'drop' ? 'drop' : `background:${mode.background.join(',')}`;
}

function normaliseAlpha(alpha: unknown): AlphaMode {
  if (alpha === undefined) return PREPROCESS_DEFAULTS.alpha;
  if (alpha === 'drop') return alpha;
  const bg = (alpha as { background?: unknown } | null)?.background;
  if (Array.isArray(bg) && bg.length === 3 && bg.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    return { background: [bg[0], bg[1], bg[2]] };
  }
  throw invalidParameter('alpha', "'drop' or { background: [r, g, b] } (0..255)", alpha);
}

function checkCommon(opts: Omit<PreprocessOptions, 'size'> | undefined, input: unknown) {
  const limit = positiveInteger('maxPixels', opts?.maxPixels ?? PREPROCESS_DEFAULTS.maxPixels);
  const maxDecodedBytes = positiveInteger(
    'maxDecodedBytes',
    opts?.maxDecodedBytes ?? PREPROCESS_DEFAULTS.maxDecodedBytes,
  );
  const alpha = normaliseAlpha(opts?.alpha);
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw invalidParameter('input', 'a file path or a Buffer', input);
  }
  return { alpha, maxPixels: limit, maxDecodedBytes };
}

/**
 * The decoded image at its own size: `load_rgb` of preprocess.py (first frame, EXIF
 * orientation applied, ICC ignored, alpha dropped or composited), as packed RGB.
 */
export async function loadRgb(
  input: string | Uint8Array,
  opts: Omit<PreprocessOptions, 'size'> = {},
): Promise<RgbImage> {
  const decoded = await decodeRgb(input, checkCommon(opts, input));
  return { rgb: decoded.rgb, width: decoded.width, height: decoded.height };
}

export async function preprocessImage(input: string | Uint8Array, opts: PreprocessOptions): Promise<PreprocessedImage> {
  // Cheap argument checks before any I/O.
  positiveInteger('size', opts?.size);
  const decoded = await decodeRgb(input, {
    ...checkCommon(opts, input),
    // An aspect ratio the upscale cannot take is refused from the header, before decoding (issue 15.14).
    checkSize: (w, h) => cropNamed(input, () => checkResampleSize(w, h, opts.size)),
  });
  return {
    rgb: cropNamed(input, () => centerCropArr(decoded.rgb, decoded.width, decoded.height, opts.size)),
    size: opts.size,
    originalWidth: decoded.width,
    originalHeight: decoded.height,
  };
}

/** centerCropArr's refusals (an extreme aspect ratio) name the input, as decode's do. */
function cropNamed<T>(input: string | Uint8Array, crop: () => T): T {
  try {
    return crop();
  } catch (err) {
    if (err instanceof StyledVqError) throw inputError(`${describeInput(input)}: ${err.message}`, err);
    throw err;
  }
}
