/**
 * Pictures meant for people: small decodes enlarged with nearest-neighbour (each model pixel
 * stays a sharp square instead of a blur) in a grid, each with a few lines of text under it.
 * The text is an SVG overlay that sharp composites (librsvg): no font or canvas dependency
 * of our own. Used by `explain`, `mix` and `reconstruct --compare`.
 */
import sharp from 'sharp';
import { usageError } from '../errors';
import type { RgbImage } from './types';

export interface LabelledTile {
  image: RgbImage;
  /** Lines of text under the tile (may be empty). */
  label: readonly string[];
}

export interface LabelledGridOptions {
  /** Integer enlargement of every tile (nearest-neighbour; default 4). */
  scale?: number;
  /** Tiles per row (default: all in one row). */
  columns?: number;
  /** A line of text above the grid. */
  title?: string;
}

const GAP = 8;
const FONT_PX = 13;
const LINE_PX = 17;
const TITLE_PX = 26;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const BACKGROUND = 255;

/** Nearest-neighbour enlargement by an integer factor, copied into `dst` at (x0, y0). */
function blitScaled(src: RgbImage, scale: number, dst: Uint8Array, dstWidth: number, x0: number, y0: number): void {
  for (let y = 0; y < src.height * scale; y++) {
    const sy = Math.floor(y / scale);
    const rowStart = ((y0 + y) * dstWidth + x0) * 3;
    for (let x = 0; x < src.width * scale; x++) {
      const s = (sy * src.width + Math.floor(x / scale)) * 3;
      const d = rowStart + x * 3;
      dst[d] = src.rgb[s];
      dst[d + 1] = src.rgb[s + 1];
      dst[d + 2] = src.rgb[s + 2];
    }
  }
}

const escapeXml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Tiles (all the same size) in a grid with their labels; returns the picture as RGB pixels. */
export async function labelledGrid(
  tiles: readonly LabelledTile[],
  options: LabelledGridOptions = {},
): Promise<RgbImage> {
  if (!tiles.length) throw usageError('Expected at least one tile for labelledGrid but received none');
  const scale = options.scale ?? 4;
  if (!Number.isInteger(scale) || scale < 1 || scale > 64)
    throw usageError(`Expected integer between 1 and 64 for scale but received ${scale}`);
  const { width: tw, height: th } = tiles[0].image;
  for (const [i, t] of tiles.entries()) {
    if (t.image.width !== tw || t.image.height !== th || t.image.rgb.length !== tw * th * 3) {
      throw usageError(`Expected every tile to be ${tw}x${th} RGB but tile ${i} is ${t.image.width}x${t.image.height}`);
    }
  }
  const columns = Math.min(tiles.length, options.columns ?? tiles.length);
  const rows = Math.ceil(tiles.length / columns);
  const lines = Math.max(0, ...tiles.map((t) => t.label.length));
  const cellW = tw * scale;
  const cellH = th * scale + (lines ? 4 + lines * LINE_PX : 0);
  const top = options.title ? TITLE_PX : GAP;
  const width = GAP + columns * (cellW + GAP);
  const height = top + rows * (cellH + GAP);

  const rgb = new Uint8Array(width * height * 3).fill(BACKGROUND);
  const text: string[] = [];
  if (options.title) {
    text.push(
      `<text x="${GAP}" y="${TITLE_PX - 8}" font-size="${FONT_PX + 1}" ` +
        `font-weight="bold">${escapeXml(options.title)}</text>`,
    );
  }
  tiles.forEach((tile, i) => {
    const x0 = GAP + (i % columns) * (cellW + GAP);
    const y0 = top + Math.floor(i / columns) * (cellH + GAP);
    blitScaled(tile.image, scale, rgb, width, x0, y0);
    tile.label.forEach((line, l) => {
      // The first line (what the tile is) in bold, the numbers under it in the regular face.
      const weight = l === 0 ? ' font-weight="bold"' : '';
      text.push(
        `<text x="${x0 + cellW / 2}" y="${y0 + th * scale + 2 + (l + 1) * LINE_PX - 4}" ` +
          `text-anchor="middle"${weight}>${escapeXml(line)}</text>`,
      );
    });
  });
  if (!text.length) return { rgb, width, height };
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<g font-family="${FONT}" font-size="${FONT_PX}" fill="#222">${text.join('')}</g></svg>`;
  const out = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer();
  return { rgb: new Uint8Array(out.buffer, out.byteOffset, out.length), width, height };
}
