/**
 * Reads just enough of a GIF to know what Pillow shows under the first frame's transparent
 * pixels. Why: libvips (libnsgif) decodes transparent GIF pixels as (0,0,0,0), while
 * Pillow opens the first frame in mode "P" and `convert('RGB')` shows the palette colour of
 * the transparent index. Pixels outside the first frame's rectangle are filled by Pillow
 * with the transparent index, or with index 0 when there is none (GifImagePlugin
 * `load_prepare` / `ImageFile.load`); libnsgif leaves them transparent too.
 */
export interface GifFirstFrameInfo {
  /** Colour Pillow gives a pixel that libnsgif returned with alpha 0. */
  fill: [number, number, number];
  /** Whether the first frame declares a transparent index (Pillow: "transparency" in info). */
  transparent: boolean;
}

/** Returns null when the bytes are not a GIF we can walk (the caller then leaves pixels as decoded). */
export function readGifFirstFrameInfo(buf: Uint8Array): GifFirstFrameInfo | null {
  if (buf.length < 13 || String.fromCharCode(...buf.subarray(0, 3)) !== 'GIF') return null;
  let pos = 13;
  const flags = buf[10];
  let globalTable: Uint8Array | null = null;
  if (flags & 0x80) {
    const n = 3 << ((flags & 7) + 1);
    globalTable = buf.subarray(pos, pos + n);
    pos += n;
  }
  let transIndex: number | null = null;
  while (pos < buf.length) {
    const block = buf[pos++];
    if (block === 0x21) {
      const label = buf[pos++];
      if (label === 0xf9 && buf[pos] >= 4) {
        const packed = buf[pos + 1];
        if (packed & 1) transIndex = buf[pos + 4];
      }
      // Skip the extension's sub-blocks.
      while (pos < buf.length && buf[pos] !== 0) pos += buf[pos] + 1;
      pos++;
    } else if (block === 0x2c) {
      const packed = buf[pos + 8];
      let table = globalTable;
      if (packed & 0x80) {
        const n = 3 << ((packed & 7) + 1);
        table = buf.subarray(pos + 9, pos + 9 + n);
      }
      const index = transIndex ?? 0;
      // Pillow's palette starts as a grey ramp (i,i,i); entries beyond a short table keep it.
      const fill: [number, number, number] =
        table && index * 3 + 2 < table.length
          ? [table[index * 3], table[index * 3 + 1], table[index * 3 + 2]]
          : [index, index, index];
      return { fill, transparent: transIndex !== null };
    } else {
      return null; // trailer or garbage before the first image
    }
  }
  return null;
}
