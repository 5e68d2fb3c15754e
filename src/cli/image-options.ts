/** Options shared by the commands that read or write images. */
import type { Options } from 'yargs';
import { type AlphaMode, imageFormatFor } from '../image';
import { integerArg } from './globals';
import { invalidParameter } from '../util/checks';
import { cliMessage } from './flags';
import { usageError } from '../errors';
import { DEFAULTS } from '../defaults';

export interface ImageReadArgs {
  background?: [number, number, number];
  'max-pixels'?: number;
  'max-decoded-bytes'?: number;
}

/** "255,255,255", "#ffffff" or "white"/"black" -> [r, g, b]. */
export function parseColour(text: unknown): [number, number, number] {
  const s = String(text).trim().toLowerCase();
  const named: Record<string, [number, number, number]> = { white: [255, 255, 255], black: [0, 0, 0] };
  if (named[s]) return named[s];
  const hex = /^#?([0-9a-f]{6})$/.exec(s);
  if (hex) return [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16)) as [number, number, number];
  const parts = s.split(',').map((p) => Number(p.trim()));
  if (parts.length === 3 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255))
    return parts as [number, number, number];
  throw usageError(cliMessage(invalidParameter('background', 'R,G,B (0-255 each), #rrggbb, white or black', text)));
}

export const IMAGE_READ_OPTIONS: { [K in keyof ImageReadArgs]-?: Options } = {
  background: {
    type: 'string',
    describe: 'Composite transparent images on this colour (R,G,B or #rrggbb) instead of dropping alpha like PIL',
    requiresArg: true,
    coerce: parseColour,
  },
  'max-pixels': {
    type: 'string',
    describe: 'Refuse input images with more pixels than this (decompression bombs)',
    defaultDescription: `${DEFAULTS.maxPixels} (${Math.sqrt(DEFAULTS.maxPixels)} x ${Math.sqrt(DEFAULTS.maxPixels)})`,
    requiresArg: true,
    coerce: (v: unknown) => integerArg('maxPixels', v),
  },
  'max-decoded-bytes': {
    type: 'string',
    describe:
      'Refuse input images whose first frame decodes to more bytes than this (width x height x bands x bytes per ' +
      'sample; small files that decode to gigabytes)',
    defaultDescription: `${DEFAULTS.maxDecodedBytes} (512 MiB: Pillow's own limit of 178,956,970 pixels in 8-bit RGB)`,
    requiresArg: true,
    coerce: (v: unknown) => integerArg('maxDecodedBytes', v),
  },
};

export function imageOptions(argv: ImageReadArgs): {
  alpha?: AlphaMode;
  maxPixels?: number;
  maxDecodedBytes?: number;
} {
  return {
    alpha: argv.background ? { background: argv.background } : undefined,
    maxPixels: argv['max-pixels'],
    maxDecodedBytes: argv['max-decoded-bytes'],
  };
}

/** A usage error unless the output name ends in .png, .jpg, .jpeg or .webp (checked before any work). */
export function checkImageExtension(path: string): void {
  imageFormatFor(path);
}

/** "WxH" -> [w, h]. */
export function parseSize(text: unknown): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(String(text).trim());
  const w = m ? Number(m[1]) : 0;
  const h = m ? Number(m[2]) : 0;
  if (!m || w < 1 || h < 1 || w > 16383 || h > 16383)
    throw usageError(cliMessage(invalidParameter('size', 'WIDTHxHEIGHT (1-16383 each, e.g. 512x512)', text)));
  return [w, h];
}
