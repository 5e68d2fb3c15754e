/**
 * Output side: writing RGB images (PNG / JPEG / WebP by extension, atomically), resizing
 * for display, and a side-by-side comparison. Unlike preprocessing, nothing here has to
 * match Pillow, so sharp's own resampling (lanczos3) is fine.
 */
import path from 'node:path';
import sharp from 'sharp';
import { usageError } from '../errors';
import { writeFileAtomic } from '../io/atomic-write';
import type { RgbImage } from './types';
import { DEFAULTS } from '../defaults';
import { invalidParameter, isInteger } from '../util/checks';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

const FORMAT_BY_EXTENSION: Record<string, ImageFormat> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
};

export interface WriteImageOptions {
  /** JPEG/WebP quality 1..100 (default 90). PNG is always lossless. */
  quality?: number;
}

/** Which format a path asks for, or a usage error naming the supported extensions. */
export function imageFormatFor(file: string): ImageFormat {
  const ext = path.extname(file).toLowerCase();
  const format = FORMAT_BY_EXTENSION[ext];
  if (!format) {
    throw usageError(
      `Unsupported image extension "${ext || '(none)'}" for ${file}. Should be one of: ` +
        `${Object.keys(FORMAT_BY_EXTENSION).join(', ')}`,
    );
  }
  return format;
}

function checkRgb(rgb: Uint8Array, width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw usageError(`Expected positive integer width and height for ${what} but received ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw usageError(
      `Expected ${width * height * 3} bytes (${width}x${height} RGB) for ${what} but received ${rgb.length}`,
    );
  }
}

const rawInput = (rgb: Uint8Array, width: number, height: number) =>
  sharp(rgb, { raw: { width, height, channels: 3 } });

/** RGB pixels as PNG / JPEG / WebP bytes (for a file, or stdout with `-o -`). */
export async function encodeImageBytes(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: ImageFormat,
  opts: WriteImageOptions = {},
  what = 'image',
): Promise<Buffer> {
  checkRgb(rgb, width, height, what);
  const quality = opts.quality ?? DEFAULTS.image.quality;
  if (!isInteger(quality) || quality < 1 || quality > 100)
    throw invalidParameter('quality', 'integer between 1 and 100', quality);
  let img = rawInput(rgb, width, height);
  img = format === 'png' ? img.png() : format === 'jpeg' ? img.jpeg({ quality }) : img.webp({ quality });
  return img.toBuffer();
}

/**
 * Writes RGB pixels to `file`, format from its extension (or `opts.format`). The bytes go
 * to a temporary file in the same directory first and are renamed into place, so readers
 * never see a partial image and an existing file survives a failed write.
 */
export async function writeImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  file: string,
  opts: WriteImageOptions & { format?: ImageFormat } = {},
): Promise<void> {
  const format = opts.format ?? imageFormatFor(file);
  await writeFileAtomic(file, await encodeImageBytes(rgb, width, height, format, opts, file));
}

/** Resizes RGB pixels to exactly newWidth x newHeight (aspect ratio not kept; lanczos3). */
export async function resizeRgb(
  rgb: Uint8Array,
  width: number,
  height: number,
  newWidth: number,
  newHeight: number,
): Promise<Uint8Array> {
  checkRgb(rgb, width, height, 'resize input');
  if (!Number.isInteger(newWidth) || !Number.isInteger(newHeight) || newWidth < 1 || newHeight < 1) {
    throw usageError(`Expected positive integer output size for resize but received ${newWidth}x${newHeight}`);
  }
  if (newWidth === width && newHeight === height) return rgb.slice();
  const out = await rawInput(rgb, width, height).resize(newWidth, newHeight, { fit: 'fill' }).raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export interface SideBySideOptions {
  /** Pixels between images (default 4). */
  gap?: number;
  /** Colour of the gap and of the space below shorter images (default white). */
  background?: readonly [number, number, number];
}

/**
 * Places images left to right, top-aligned, e.g. original | reconstruction. Pure JS: the
 * pixels are copied, never resampled (resize first with resizeRgb if sizes should match).
 */
export function sideBySide(images: readonly RgbImage[], opts: SideBySideOptions = {}): RgbImage {
  if (images.length === 0) throw usageError('Expected at least one image for sideBySide but received none');
  const gap = opts.gap ?? DEFAULTS.image.gap;
  const [br, bg, bb] = opts.background ?? DEFAULTS.image.background;
  for (const [i, im] of images.entries()) checkRgb(im.rgb, im.width, im.height, `sideBySide image ${i}`);
  const width = images.reduce((w, im) => w + im.width, 0) + gap * (images.length - 1);
  const height = Math.max(...images.map((im) => im.height));
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < rgb.length; p += 3) {
    rgb[p] = br;
    rgb[p + 1] = bg;
    rgb[p + 2] = bb;
  }
  let x0 = 0;
  for (const im of images) {
    const rowBytes = im.width * 3;
    for (let y = 0; y < im.height; y++) {
      rgb.set(im.rgb.subarray(y * rowBytes, (y + 1) * rowBytes), (y * width + x0) * 3);
    }
    x0 += im.width + gap;
  }
  return { rgb, width, height };
}
