/** Packed 8-bit RGB pixels, row-major (HWC): rgb.length === width * height * 3. */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}
