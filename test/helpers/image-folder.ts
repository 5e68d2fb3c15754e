/** Folders of generated test images (deterministic: a seeded generator, no randomness between runs). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { prng } from '../../src/util/prng';

export { prng };

/** A width x height RGB image: a random two-colour gradient plus noise, so every image tokenizes differently. */
export function randomRgb(width: number, height: number, rand: () => number): Buffer {
  const a = [rand(), rand(), rand()].map((v) => v * 255);
  const b = [rand(), rand(), rand()].map((v) => v * 255);
  const buf = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x + y) / (width + height);
      for (let c = 0; c < 3; c++)
        buf[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, a[c] * (1 - t) + b[c] * t + (rand() - 0.5) * 40));
    }
  }
  return buf;
}

export interface FolderOptions {
  count: number;
  width?: number;
  height?: number;
  seed?: number;
  format?: 'png' | 'jpeg';
  /** Upscale each generated image by this factor before saving (big files, cheaply). */
  scale?: number;
  /** File name of image i (default img-000.png ...). */
  name?: (i: number) => string;
}

/** Write `count` images into `dir` (created); returns their paths in sorted order. */
export async function writeImageFolder(dir: string, options: FolderOptions): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const rand = prng(options.seed ?? 1);
  const format = options.format ?? 'png';
  const ext = format === 'png' ? 'png' : 'jpg';
  const paths: string[] = [];
  for (let i = 0; i < options.count; i++) {
    // Sizes vary a little so the crop/resize path differs between images.
    const w = (options.width ?? 96) + Math.floor(rand() * 32);
    const h = (options.height ?? 80) + Math.floor(rand() * 32);
    let img = sharp(randomRgb(w, h, rand), { raw: { width: w, height: h, channels: 3 } });
    if (options.scale) img = img.resize(Math.round(w * options.scale), Math.round(h * options.scale));
    const data = format === 'png' ? await img.png().toBuffer() : await img.jpeg({ quality: 85 }).toBuffer();
    const path = join(dir, options.name ? options.name(i) : `img-${String(i).padStart(3, '0')}.${ext}`);
    writeFileSync(path, data);
    paths.push(path);
  }
  return paths.sort();
}

/** Files every batch must survive: each should become an error record, never stop the run. */
export async function writeBadFiles(dir: string): Promise<Record<'text' | 'empty' | 'truncated', string>> {
  mkdirSync(dir, { recursive: true });
  const files = {
    text: join(dir, 'bad-text.png'),
    empty: join(dir, 'bad-empty.jpg'),
    truncated: join(dir, 'bad-truncated.png'),
  };
  writeFileSync(files.text, 'this is not an image\n');
  writeFileSync(files.empty, Buffer.alloc(0));
  const whole = await sharp(randomRgb(120, 90, prng(7)), { raw: { width: 120, height: 90, channels: 3 } })
    .png()
    .toBuffer();
  writeFileSync(files.truncated, whole.subarray(0, Math.floor(whole.length / 2)));
  return files;
}
