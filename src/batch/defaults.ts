/** Defaults of `batch` (the rest are in src/defaults.ts). */
import { availableParallelism } from 'node:os';

export const BATCH_DEFAULTS = {
  /** Images per ONNX Runtime run: larger than encode's 8, since a batch job is about throughput. */
  batchSize: 32,
  /** Images preprocessed at once (worker threads): one per core. */
  concurrency: () => availableParallelism(),
  /** Longest time between fdatasync calls on the output. */
  syncEveryMs: 1000,
  /** Inputs started ahead of inference, in batches (on top of `concurrency`). */
  lookaheadBatches: 2,
} as const;
