/**
 * Every default of the library and CLI, in one place. Options resolve in a fixed order:
 * explicit option, then the model's own config (model.json), then these defaults.
 */
import { availableParallelism } from 'node:os';

export const DEFAULTS = {
  /** Execution device: 'auto' tries CUDA and falls back to CPU, announcing the fallback. */
  device: 'auto' as const,
  /** Prefix lengths that `explain` and `evaluate` decode by default (then all num_tokens). */
  prefixLengths: [1, 2, 4, 8, 16] as readonly number[],
  /** Prefix lengths `evaluate` measures by default: those of the model card (training/styled_vq/evaluation.py PREFIX_KS). */
  evaluatePrefixLengths: [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 36] as readonly number[],
  /** Images per ONNX Runtime `run()` call in encode/decode. */
  batchSize: 8,
  /**
   * Largest input image (width x height) that is decoded; larger ones are refused before
   * decoding (decompression bombs). sharp's own default: 0x3FFF * 0x3FFF.
   */
  maxPixels: 0x3fff * 0x3fff,
  /** Environment variable naming a model package directory (after --model). */
  modelEnv: 'STYLED_VQ_MODEL',
  /** Directory (relative to the package root) holding the shipped model packages. */
  modelsDir: 'models',
  /** File inside modelsDir naming the default package directory. */
  defaultModelFile: 'DEFAULT',
} as const;

/** ONNX Runtime intra-op threads when none are asked for: all cores. */
export function defaultThreads(): number {
  return availableParallelism();
}
