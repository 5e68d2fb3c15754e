/**
 * Decoding any supported file into packed 8-bit RGB exactly as preprocess.py's `load_rgb`
 * sees it (Pillow 9.4): first frame, EXIF orientation applied, ICC profile ignored, then
 * alpha dropped (PIL's default convert('RGB')) or composited on a background.
 *
 * sharp is used only as a decoder: no resize happens in this pipeline (a resize would let
 * libvips shrink JPEGs on load and premultiply alpha), and colour-space work that Pillow
 * does not do (ICC transforms, CMYK profiles, 16 -> 8 bit scaling) is switched off and done
 * here in JS the way Pillow does it (see pil-modes.ts).
 */
import { promises as fs, type Stats } from 'node:fs';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { inputError, msg, opt } from '../errors';
import { fsPath } from '../io/byte-names';
import { readGifFirstFrameInfo } from './gif-first-frame';
import { cmykToRgb, compositeOnBackground, dropAlpha, type RgbaPixelsData, sixteenBitToRgb } from './pil-modes';

/** 'drop': keep the colour under transparent pixels (PIL convert('RGB')); else blend onto `background`. */
export type AlphaMode = 'drop' | { background: readonly [number, number, number] };

export interface DecodeOptions {
  alpha: AlphaMode;
  /** Refuse images with more pixels than this (width x height of the first frame). */
  maxPixels: number;
  /** Refuse images whose first frame decodes to more bytes than this (see {@link decodedBytes}). */
  maxDecodedBytes: number;
  /**
   * Called with the size (after EXIF orientation) read from the header, before any pixel
   * is decoded; throws to refuse the image (preprocessing's aspect-ratio check).
   */
  checkSize?: (width: number, height: number) => void;
}

/** Bytes per sample of each libvips band format. */
const SAMPLE_BYTES: Record<string, number> = {
  uchar: 1,
  char: 1,
  ushort: 2,
  short: 2,
  uint: 4,
  int: 4,
  float: 4,
  complex: 8,
  double: 8,
  dpcomplex: 16,
};

/**
 * What the first frame takes once decoded, from the header alone: width x height x bands x
 * bytes per sample, with at least 3 bands (grey is widened to RGB) and the alpha band
 * counted. libvips holds this much (and we a copy) whatever the file's size: a 38-byte
 * lossless WebP of 16383 x 16383 is 768 MiB of RGB.
 */
export function decodedBytes(meta: Metadata, width: number, height: number): number {
  const bands = Math.max(meta.channels ?? 3, meta.hasAlpha ? 4 : 3);
  return width * height * bands * (SAMPLE_BYTES[meta.depth ?? 'uchar'] ?? 8);
}

const mib = (n: number) => `${Math.round((n / (1 << 20)) * 10) / 10} MiB`;

export interface DecodedRgb {
  /** width * height * 3 bytes, row-major RGB. */
  rgb: Uint8Array;
  /** Size after EXIF orientation. */
  width: number;
  height: number;
}

/** How to name the input in messages. */
export const describeInput = (input: string | Uint8Array): string =>
  typeof input === 'string' ? input : `<buffer of ${input.length} bytes>`;

/** Reads a path with errors a user can act on; buffers pass through. */
async function readInputBytes(input: string | Uint8Array): Promise<Buffer> {
  if (typeof input !== 'string') {
    if (input.length === 0) throw inputError(`${describeInput(input)}: image data is empty`);
    return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  }
  let stat: Stats;
  try {
    stat = await fs.stat(fsPath(input));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw inputError(`${input}: file not found`, err);
    throw inputError(`${input}: cannot read file (${code ?? String(err)})`, err);
  }
  if (stat.isDirectory()) throw inputError(`${input}: is a directory, expected an image file`);
  if (!stat.isFile()) throw inputError(`${input}: not a regular file`);
  if (stat.size === 0) throw inputError(`${input}: file is empty (0 bytes)`);
  try {
    return await fs.readFile(fsPath(input));
  } catch (err) {
    throw inputError(`${input}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
}

/** First line of a libvips/sharp message, without sharp's "Input buffer has" preamble. */
function shortReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const line =
    msg
      .split('\n')
      .map((s) => s.trim())
      .find((s) => s.length > 0) ?? 'unknown error';
  return line.replace(/^Input (buffer|file) (has |contains )?/i, '');
}

function decodeFailed(label: string, err: unknown): Error {
  const reason = shortReason(err);
  if (/unsupported image format/i.test(reason)) {
    return inputError(`${label}: not an image (unsupported or unrecognised format)`, err);
  }
  if (
    /truncated|premature end|unexpected end|end of (file|stream|data)|read error|corrupt|unable to parse/i.test(reason)
  ) {
    return inputError(`${label}: image file is truncated or corrupt (${reason})`, err);
  }
  return inputError(`${label}: cannot decode image (${reason})`, err);
}

const SHARP_INPUT = {
  // Pillow ignores embedded ICC profiles; so must we (the fixture's Adobe RGB JPEG would
  // otherwise move by 3.7 levels on average, 29 at most).
  ignoreIcc: true,
  // Pillow's side applies ImageOps.exif_transpose; this is the same lossless flip/rotate.
  autoOrient: true,
  // Only the first frame/page, like Image.open() + seek(0).
  page: 0,
  pages: 1,
  // Pillow refuses truncated files ("image file is truncated") but tolerates libjpeg's
  // other warnings (e.g. stray bytes before a marker); 'truncated' is the matching strictness.
  failOn: 'truncated' as const,
};

export async function decodeRgb(input: string | Uint8Array, opts: DecodeOptions): Promise<DecodedRgb> {
  const label = describeInput(input);
  const bytes = await readInputBytes(input);

  let meta: Metadata;
  try {
    meta = await sharp(bytes, { ...SHARP_INPUT, limitInputPixels: false }).metadata();
  } catch (err) {
    throw decodeFailed(label, err);
  }
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  // Checked from the header before any pixel is allocated (decompression bombs).
  if (width * height > opts.maxPixels) {
    throw inputError(
      msg`${label}: image is ${width}x${height} = ${width * height} pixels, over the limit of ${opts.maxPixels} (raise ${opt('maxPixels')} if this is intended)`,
    );
  }
  const decoded = decodedBytes(meta, width, height);
  if (decoded > opts.maxDecodedBytes) {
    throw inputError(
      msg`${label}: image is ${width}x${height} and would decode to ${mib(decoded)}, over the limit of ${mib(opts.maxDecodedBytes)} (raise ${opt('maxDecodedBytes')} if this is intended)`,
    );
  }
  // EXIF orientations 5-8 swap the sides; autoOrient applies it, and the size check sees the result.
  const swapped = (meta.orientation ?? 1) >= 5;
  opts.checkSize?.(swapped ? height : width, swapped ? width : height);

  const is16 = meta.depth === 'ushort' || meta.space === 'rgb16' || meta.space === 'grey16';
  let pipeline = sharp(bytes, { ...SHARP_INPUT, limitInputPixels: opts.maxPixels });
  if (meta.space === 'cmyk') {
    // Raw CMYK out (Adobe-inverted JPEGs are already un-inverted by libjpeg/libvips, as by
    // PIL's "CMYK;I" rawmode); pipelineColourspace stops sharp's CMYK -> sRGB ICC transform.
    pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk').raw();
  } else if (is16) {
    // Keep all 16 bits and the native band layout; the >> 8 happens in sixteenBitToRgb.
    pipeline = pipeline.toColourspace(meta.space === 'grey16' ? 'grey16' : 'rgb16').raw({ depth: 'ushort' });
  } else {
    // 8-bit sRGB or greyscale: libvips widens grey to RGB by replication (PIL's L -> RGB).
    // (Rarer spaces such as Lab or float TIFFs are converted by libvips: sensible, but with
    // no claim to match Pillow, which has no common ground with them either.)
    pipeline = pipeline.toColourspace('srgb').raw();
  }

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await pipeline.toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw decodeFailed(label, err);
  }
  const pixels = info.width * info.height;
  const channels: number = info.channels;

  let px: RgbaPixelsData;
  if (meta.space === 'cmyk') {
    if (channels !== 4 && channels !== 5) throw decodeFailed(label, `unexpected ${channels}-band CMYK`);
    px = cmykToRgb(data, pixels, channels);
  } else if (is16) {
    // Native-endian samples; copy only in the unlikely case the buffer is not 2-byte aligned.
    const aligned = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
    const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
    if (channels < 1 || channels > 4) throw decodeFailed(label, `unexpected ${channels}-band 16-bit image`);
    px = sixteenBitToRgb(u16, pixels, channels as 1 | 2 | 3 | 4);
  } else {
    if (channels !== 3 && channels !== 4) throw decodeFailed(label, `unexpected ${channels}-band image`);
    px = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), channels };
  }

  if (meta.format === 'gif' && px.channels === 4) restoreGifTransparentColour(bytes, px.data, pixels);

  let rgb: Uint8Array;
  if (px.channels === 3) rgb = px.data;
  else if (opts.alpha === 'drop') rgb = dropAlpha(px.data, pixels);
  else rgb = compositeOnBackground(px.data, pixels, opts.alpha.background);
  return { rgb, width: info.width, height: info.height };
}

/** See gif-first-frame.ts: give alpha-0 pixels the colour (and opacity) Pillow would. */
function restoreGifTransparentColour(bytes: Uint8Array, rgba: Uint8Array, pixels: number): void {
  const gif = readGifFirstFrameInfo(bytes);
  if (!gif) return;
  const [r, g, b] = gif.fill;
  for (let i = 0, p = 0; i < pixels; i++, p += 4) {
    if (rgba[p + 3] === 0) {
      rgba[p] = r;
      rgba[p + 1] = g;
      rgba[p + 2] = b;
    }
    // Without a transparent index Pillow's first frame is opaque everywhere.
    if (!gif.transparent) rgba[p + 3] = 255;
  }
}
