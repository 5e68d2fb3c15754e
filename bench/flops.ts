/**
 * Analytic FLOP counts (multiply-add = 2 FLOPs) of one image through the encoder and the
 * decoder, from the model config alone (docs/architecture.md). Only the matrix products and
 * convolutions are counted: LayerNorm, softmax, GELU and the soft-anchor head are a few
 * percent at most and are not what a GEMM peak measures.
 */
export interface FlopConfig {
  image_size: number;
  patch_size: number;
  num_tokens: number;
  latent_dim: number;
  enc_width: number;
  enc_dense_blocks: number;
  enc_expert_blocks: number;
  dec_width: number;
  dec_cond_blocks: number;
  dec_plain_blocks: number;
  mlp_ratio: number;
  conv_channels: number;
  conv_kernel: number;
  /** "pca": the v2/v3 designs, whose encoder and decoder also project on principal directions. */
  skip?: string;
  /** false: the PCA code alone (v3), no networks. */
  residual?: boolean;
  /** Principal directions per token (v3); absent: latent_dim each. */
  token_dims?: number[] | null;
  /** The convolutional refiner after the PCA decode (training/styled_vq/refiner.py); 0 or absent: none. */
  refiner_blocks?: number;
  refiner_channels?: number;
}

/** The PCA projection (x - mean) P^T, or its transpose, plus v3's 0/1 placement into the
 * [num_tokens, latent_dim] latent: one matrix product each way. */
function pcaFlops(c: FlopConfig): number {
  if (c.skip !== 'pca') return 0;
  const f = 3 * c.image_size * c.image_size;
  const slots = c.num_tokens * c.latent_dim;
  const n = c.token_dims ? c.token_dims.reduce((a, b) => a + b, 0) : slots;
  return 2 * n * f + (c.token_dims ? 2 * n * slots : 0);
}

/** The refiner: 3x3 convolutions at half resolution, 12 channels in and out (space-to-depth
 * 2x), `refiner_blocks` residual blocks of two convolutions of refiner_channels. */
function refinerFlops(c: FlopConfig): number {
  const blocks = c.refiner_blocks ?? 0;
  if (!blocks) return 0;
  const ch = c.refiner_channels ?? 64;
  const px = (c.image_size / 2) ** 2;
  return 2 * px * 9 * (12 * ch + blocks * 2 * ch * ch + ch * 12);
}

/** Pre-LN block over n tokens of width w: qkv + out projections, scores + mix, MLP. */
function blockFlops(n: number, w: number, mlpRatio: number): number {
  const proj = 2 * n * w * 3 * w + 2 * n * w * w;
  const attn = 2 * n * n * w * 2;
  const mlp = 2 * n * w * mlpRatio * w * 2;
  return proj + attn + mlp;
}

export function encoderFlops(c: FlopConfig): number {
  if (c.residual === false) return pcaFlops(c);
  const grid = c.image_size / c.patch_size;
  const patches = grid * grid;
  const n = patches + 1 + c.num_tokens;
  const w = c.enc_width;
  const patchEmbed = 2 * patches * 3 * c.patch_size * c.patch_size * w;
  // Expert blocks cost the same as dense ones: each token goes through exactly one MLP.
  const blocks = (c.enc_dense_blocks + c.enc_expert_blocks) * blockFlops(n, w, c.mlp_ratio);
  const project = 2 * c.num_tokens * w * c.latent_dim;
  return patchEmbed + blocks + project + pcaFlops(c);
}

export function decoderFlops(c: FlopConfig): number {
  if (c.residual === false) return pcaFlops(c) + refinerFlops(c);
  const grid = c.image_size / c.patch_size;
  const patches = grid * grid;
  const w = c.dec_width;
  const s = c.image_size;
  let f = 2 * c.num_tokens * c.latent_dim * w; // afer_progject
  for (let k = 0; k < c.dec_cond_blocks; k++) {
    const n = patches + 2 * (k + 1); // the sequence after this block's two placeholders
    f += 2 * (2 * w * 2 * w); // two AdaLN linears, once per image (on the condition vector)
    f += blockFlops(n, w, c.mlp_ratio);
  }
  f += c.dec_plain_blocks * blockFlops(patches + c.num_tokens, w, c.mlp_ratio);
  f += 2 * patches * w * 3 * c.patch_size * c.patch_size; // decoder.linear
  const ch = c.conv_channels;
  f += 2 * s * s * ch * 3 * c.conv_kernel * c.conv_kernel; // cov
  f += 2 * (2 * s * s * ch * ch * 9); // ResnetBlock's two 3x3 convs
  f += 2 * s * s * 3 * ch * 9; // conv_out
  return f + pcaFlops(c);
}
