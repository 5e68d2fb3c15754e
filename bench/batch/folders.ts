/**
 * Folders of benchmark images, generated with a fixed seed into a temporary directory
 * (never committed):
 *   - photos: random crops of real photos, rescaled to mixed sizes (long side 160..2400 px)
 *     and saved as JPEGs of varied quality: what a dataset folder looks like;
 *   - small: N small JPEGs (copies of 100 distinct ones), for peak-RSS runs at scale.
 */
import { copyFileSync, mkdirSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { prng } from '../../src/util/prng';

export { prng };

/** JPEGs (over 20 kB, so not icons) anywhere under `root`, sorted. */
export async function findPhotos(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.jpe?g$/i.test(e.name) && (await fs.stat(p)).size > 20_000) out.push(p);
    }
  };
  await walk(root);
  return out.sort();
}

export interface PhotoFolder {
  dir: string;
  count: number;
  sources: number;
  bytes: number;
  /** Smallest and largest long side generated. */
  longSide: [number, number];
}

export async function makePhotoFolder(
  sourceRoot: string,
  dir: string,
  count: number,
  seed: number,
): Promise<PhotoFolder> {
  const sources = await findPhotos(sourceRoot);
  if (sources.length < 10)
    throw new Error(`need real photos: found ${sources.length} JPEGs over 20 kB under ${sourceRoot} (pass photosFrom)`);
  mkdirSync(dir, { recursive: true });
  const rand = prng(seed);
  let bytes = 0;
  let min = Infinity;
  let max = 0;
  for (let i = 0; i < count; i++) {
    const src = sources[Math.floor(rand() * sources.length)];
    const meta = await sharp(src).metadata();
    const w = meta.width!;
    const h = meta.height!;
    const cw = Math.max(16, Math.round(w * (0.4 + 0.6 * rand())));
    const ch = Math.max(16, Math.round(h * (0.4 + 0.6 * rand())));
    const left = Math.floor(rand() * (w - cw + 1));
    const top = Math.floor(rand() * (h - ch + 1));
    const long = Math.round(160 + rand() * (2400 - 160));
    const scale = long / Math.max(cw, ch);
    const out = join(dir, `photo-${String(i).padStart(4, '0')}.jpg`);
    const info = await sharp(src)
      .extract({ left, top, width: cw, height: ch })
      .resize(Math.max(1, Math.round(cw * scale)), Math.max(1, Math.round(ch * scale)))
      .jpeg({ quality: 70 + Math.floor(rand() * 26) })
      .toFile(out);
    bytes += info.size;
    min = Math.min(min, Math.max(info.width, info.height));
    max = Math.max(max, Math.max(info.width, info.height));
  }
  return { dir, count, sources: sources.length, bytes, longSide: [min, max] };
}

/** `count` small JPEGs (64..192 px): 100 distinct images, copied under new names. */
export async function makeSmallFolder(dir: string, count: number, seed: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const rand = prng(seed);
  const distinct: string[] = [];
  for (let i = 0; i < Math.min(100, count); i++) {
    const w = 64 + Math.floor(rand() * 128);
    const h = 64 + Math.floor(rand() * 128);
    const px = Buffer.alloc(w * h * 3);
    for (let k = 0; k < px.length; k++) px[k] = Math.floor(rand() * 256);
    const p = join(dir, `small-${String(i).padStart(5, '0')}.jpg`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 85 })
      .toFile(p);
    distinct.push(p);
  }
  for (let i = distinct.length; i < count; i++)
    copyFileSync(distinct[i % distinct.length], join(dir, `small-${String(i).padStart(5, '0')}.jpg`));
  return dir;
}
