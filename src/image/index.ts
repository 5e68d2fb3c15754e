/**
 * Image handling for styled-vq. The only place that imports sharp (decode.ts, write.ts).
 * - preprocessImage: file/bytes -> size x size RGB, bit-identical to
 *   training/styled_vq/preprocess.py (Pillow 9.4); loadRgb: the same decode, no resize.
 * - toModelInput / fromModelOutput: uint8 HWC RGB <-> float32 [B, 3, H, W] in [-1, 1].
 * - writeImage / resizeRgb / sideBySide: the output side.
 */
export { preprocessImage, loadRgb, PREPROCESS_DEFAULTS, alphaText } from './preprocess';
export type { PreprocessOptions, PreprocessedImage } from './preprocess';
export type { AlphaMode } from './decode';
export { toModelInput, fromModelOutput } from './model-tensor';
export { writeImage, resizeRgb, sideBySide, imageFormatFor } from './write';
export type { ImageFormat, WriteImageOptions, SideBySideOptions } from './write';
export type { RgbImage } from './types';
export { pilResize } from './pil-resample';
export type { PilFilter } from './pil-resample';
