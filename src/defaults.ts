/**
 * Every default of the library, in one place; the CLI reads them from here (its help texts
 * are built from these values). Options resolve in a fixed order: explicit option, then
 * the model's own config (model.json), then these defaults.
 */
import { availableParallelism } from 'node:os';

export const DEFAULTS = {
  /** Execution device: 'auto' tries CUDA and falls back to CPU, announcing the fallback. */
  device: 'auto' as const,
  /** Graph precision: the package's float32 graphs; 'fp16' runs its optional float16 variant. */
  dtype: 'fp32' as const,
  /** ONNX Runtime intra-op threads when none are asked for: all cores. */
  threads: (): number => availableParallelism(),
  /** Prefix lengths that `explain` and `evaluate` decode by default (then all num_tokens). */
  prefixLengths: [1, 2, 4, 8, 16] as readonly number[],
  /** Prefix lengths `evaluate` measures by default: those of the model card (training/styled_vq/evaluation.py PREFIX_KS). */
  evaluatePrefixLengths: [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 36] as readonly number[],
  /**
   * Images per ONNX Runtime `run()` call in encode/decode/quantize/dequantize/evaluate on
   * CPU; on a GPU see `batchSizes`.
   */
  batchSize: 8,
  /**
   * Default images per `run()` by the provider that runs the model: for interactive
   * commands and for `batch`. A CPU is busy at 8 (larger batches only add latency:
   * bench/results.json); a GPU needs hundreds of 64 px images per call before launch
   * overhead stops dominating, so CUDA takes 64 / 256 (bench/gpu/ measures 1, 32 and 256)
   * and WebGPU, which copies every output back to the host, 32 / 128. An explicit
   * batchSize always wins.
   */
  batchSizes: {
    cpu: { interactive: 8, batch: 32 },
    cuda: { interactive: 64, batch: 256 },
    webgpu: { interactive: 32, batch: 128 },
  },
  /**
   * Largest input image (width x height) that is decoded; larger ones are refused from
   * the header, before decoding (decompression bombs). sharp's own default: 16383 x 16383.
   */
  maxPixels: 0x3fff * 0x3fff,
  /**
   * Largest decoded first frame, in bytes (width x height x bands x bytes per sample, from
   * the header, before decoding): the pixel limit alone lets a 38-byte lossless WebP of
   * 16383 x 16383 decode to gigabytes (issue 15.14). 512 MiB is exactly Pillow's own
   * decompression-bomb limit (178,956,970 pixels) in 8-bit RGB, so nothing the Python
   * reference accepts in 8-bit RGB is refused; alpha and 16-bit samples count in full.
   */
  maxDecodedBytes: 512 * 1024 * 1024,
  /**
   * Longest token record (one JSON value, or one line of a JSONL file, a batch journal or a
   * `split` input) any reader accepts: far above a real record (a record with latents is
   * about 100 KB), far below what makes a reader slow or a string fail. A longer one is an
   * error naming the file and line, raised as soon as the limit is passed.
   */
  maxRecordBytes: 64 * 1024 * 1024,
  /** Transparency: dropped like PIL's convert('RGB') (colour under transparent pixels kept). */
  alpha: 'drop' as const,
  /** Written images (image/write.ts): JPEG/WebP quality, and sideBySide's gap and background. */
  image: {
    quality: 90,
    gap: 4,
    background: [255, 255, 255] as readonly [number, number, number],
  },
  /** Environment variable naming a model package directory (after the `model` option). */
  modelEnv: 'STYLED_VQ_MODEL',
  /** Directory (relative to the package root) holding the shipped model packages. */
  modelsDir: 'models',
  /** File inside modelsDir naming the default package directory. */
  defaultModelFile: 'DEFAULT',

  /** `batch` (runBatch). */
  batch: {
    /** Images per ONNX Runtime run on CPU: larger than encode's 8, since a batch job is about throughput (GPUs: `batchSizes`). */
    batchSize: 32,
    /** Images preprocessed at once (worker threads): one per core. */
    concurrency: (): number => availableParallelism(),
    /** Longest time between fdatasync calls on the output. */
    syncEveryMs: 1000,
    /** Inputs started ahead of inference, in batches (on top of `concurrency`). */
    lookaheadBatches: 2,
  },
  /** The output lock of `batch` and `merge` (io/output-lock.ts). */
  lock: {
    /** Heartbeat period: the lock file's mtime is touched this often. */
    heartbeatMs: 5000,
    /** A heartbeat older than this is a dead owner. */
    staleMs: 60000,
  },
  /** `concat` and `split`. */
  concat: {
    /** The external tokenizer: LlamaGen's VQ-16 (docs/architecture.md). */
    externalName: 'llamagen-vq16',
    externalVocab: 16384,
    layout: 'shared' as const,
    /** Pair by file stem where the external codes have names, else by order. */
    match: 'auto' as const,
    /** split: one .npy per image, as the codes came in. */
    externalOut: 'per-image' as const,
  },
} as const;

/** The same values under the names earlier releases exported. */
export const BATCH_DEFAULTS = DEFAULTS.batch;
export const LOCK_DEFAULTS = DEFAULTS.lock;
export const EXTERNAL_DEFAULTS = {
  name: DEFAULTS.concat.externalName,
  vocabSize: DEFAULTS.concat.externalVocab,
} as const;

/** ONNX Runtime intra-op threads when none are asked for: all cores. */
export function defaultThreads(): number {
  return DEFAULTS.threads();
}

/** The default batch size for the provider a model runs on (`batchSizes`); CPU when unknown. */
export function defaultBatchSize(
  provider: keyof typeof DEFAULTS.batchSizes | undefined,
  use: 'interactive' | 'batch' = 'interactive',
): number {
  return DEFAULTS.batchSizes[provider ?? 'cpu'][use];
}
