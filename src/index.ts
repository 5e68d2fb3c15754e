/**
 * styled-vq as a library: every CLI command is a thin wrapper over these functions.
 *
 *   const model = await Model.open({ model: 'models/my-model', device: 'auto' });
 *   try {
 *     const { records, execution } = await encodeImages(model, ['cat.jpg']);
 *     const [image] = await decodeTokens(model, [records[0].tokens]);
 *   } finally {
 *     await model.dispose();
 *   }
 */
export { StyledVqError, exitCodeFor } from './errors';
export type { ErrorKind } from './errors';
export { DEFAULTS, BATCH_DEFAULTS, LOCK_DEFAULTS, EXTERNAL_DEFAULTS } from './defaults';

// Model packages
export { Model } from './model/model';
export type { FloatBatch, TokenBatch, ModelOptions, OpenOptions } from './model/model';
export { readManifest, validateManifest, GRAPH_ROLES, DTYPES, MODEL_FORMAT, MODEL_VERSION } from './model/manifest';
export { parseDtype } from './model/variant';
export type {
  Manifest,
  Dtype,
  Variant,
  PrefixFill,
  GraphRole,
  Preprocessing,
  ModelConfig,
  FileEntry,
  GraphFileEntry,
} from './model/manifest';
export { verifyPackage, computeFingerprint, sha256File } from './model/verify';
export { resolveModelDir, defaultModelDir, modelsDir } from './model/resolve';
export type { ResolvedModel, ModelSource } from './model/resolve';

// Execution providers
export { DEVICES, DEVICE_NAMES, parseDevice, probeProvider, ortVersion } from './runtime/onnx';
export type { Device, Provider, ExecutionInfo, TensorData, ProbeResult } from './runtime/onnx';

// Operations
export { encodeImages, encodeImage, packImages, latentRows } from './api/encode';
export type { ImageInput, ImageOptions, EncodeOptions, EncodeResult } from './api/encode';
export { decodeTokens, decodeLatents, decodeRecords, toImages, toTokenBatch } from './api/decode';
export type {
  RgbImage,
  BatchOptions,
  TokensInput,
  DecodeRecordsOptions,
  DecodeRecordsResult,
  DecodedRecord,
} from './api/decode';
export { reconstruct } from './api/reconstruct';
export type { ReconstructOptions, ReconstructResult } from './api/reconstruct';
export {
  decodePrefix,
  decodePrefixLatents,
  fillAfterPrefix,
  prefixFillOf,
  hasPrefixFill,
  checkPrefixLength,
} from './api/prefix';
export { explain, decodePrefixSweep, defaultPrefixLengths, checkPrefixLengths } from './api/explain';
export type { ExplainOptions, ExplainResult, PrefixStep } from './api/explain';
export { mix, mixSweep, mixTokens, keepMask, rangeMask, parsePositions } from './api/mix';
export type { TokenMask } from './api/mix';
export { evaluatePrefixCurve, evaluatePrefixLengths } from './api/evaluate';
export type { EvaluateOptions, EvaluateResult, PrefixCurvePoint } from './api/evaluate';
export { preprocess } from './api/preprocess';
export type { PreprocessResult } from './api/preprocess';
export { quantizeLatents, dequantizeTokens } from './api/quantize';
export { modelInfo } from './api/info';
export type { ModelInfo } from './api/info';
export { doctor } from './api/doctor';
export { setupCuda, defaultCudaCacheDir, CUDA_PROVIDER_PACKAGE } from './runtime/cuda-setup';
export type { SetupCudaOptions, SetupCudaResult } from './runtime/cuda-setup';
export { findCudaLibraries } from './runtime/cuda-libraries';
export type { LibraryLookup } from './runtime/cuda-libraries';
export type { DoctorReport, DoctorOptions } from './api/doctor';
export { psnr, ssim } from './metrics/quality';

// Token files and arrays
export {
  TOKENS_FORMAT,
  TOKENS_VERSION,
  makeRecord,
  makeErrorRecord,
  parseRecord,
  checkRecordForModel,
  isErrorRecord,
} from './tokens/record';
export type { TokenRecord, ErrorRecord, AnyRecord, ModelRef, ModelShape, CheckOptions } from './tokens/record';
export {
  readTokenFile,
  parseTokenText,
  writeTokenFile,
  formatTokenFile,
  formatRecordJson,
  formatRecordsJsonl,
  float32Text,
} from './tokens/token-file';
export type { LocatedRecord } from './tokens/token-file';
export { readNpy, writeNpy, encodeNpy, decodeNpy } from './tokens/npy';
export type { NpyArray, NpyData, NpyDtype } from './tokens/npy';
export { readLatents, readTokens } from './tokens/arrays';
export type { ArraysFrom } from './tokens/arrays';
export { writeFileAtomic } from './io/atomic-write';
// File names that are not valid UTF-8, as records write them (surrogateescape): to bytes and back.
export { decodeName, encodeName, fsPath } from './io/byte-names';
export { checkOutputPath } from './io/output-path';
export { OutputSet } from './io/output-set';

// Images (src/image owns sharp)
export { preprocessImage, writeImage, resizeRgb, sideBySide } from './image';
export { labelledGrid } from './image/labelled-grid';
export type { LabelledTile, LabelledGridOptions } from './image/labelled-grid';
export type { AlphaMode } from './image';

// Batch tokenizing (folders, globs, lists; resumable), and concat/split with external VQ codes
export { runBatch } from './batch/run-batch';
export type { RunBatchOptions, BatchProgress, BatchSummary } from './batch/run-batch';
export { InputList, countInputs, IMAGE_EXTENSIONS } from './batch/input-list';
export type { ListedInput, ListOptions } from './batch/input-list';
export { BATCH_FORMATS } from './batch/output-paths';
export type { BatchFormat } from './batch/output-paths';
export { readSourcesSidecar, SOURCES_FORMAT, FAILED_TOKEN } from './tokens/sources-sidecar';
export type { SourcesSidecar } from './tokens/sources-sidecar';
export { mergeShards, arrayRanges, IncompleteShardsError } from './batch/merge';
export type { MergeOptions, MergeSummary } from './batch/merge';
export {
  parseShard,
  validateShard,
  shardFromEnvironment,
  shardOutputPath,
  shardRange,
  engineIds,
  SHARD_INDEX_VARIABLES,
} from './batch/shard';
export type { ShardSpec } from './batch/shard';
export { readDoneMarker, checkMarkerFiles, donePathFor, DONE_FORMAT } from './batch/done-marker';
export type { DoneMarker, MarkerFile, SourceDigest } from './batch/done-marker';
export { OutputLock, lockPathFor } from './io/output-lock';
export type { LockOwner, LockOptions } from './io/output-lock';
export { checkTarArchive } from './batch/tar-input';
export { EXIT_CODES } from './errors';
export { concatCodes, defaultLayoutPath } from './concat/run-concat';
export type { ConcatOptions, ConcatSummary } from './concat/run-concat';
export { splitSequences } from './concat/run-split';
export type { SplitOptions, SplitSummary, ExternalOut } from './concat/run-split';
export {
  buildLayout,
  assemble,
  disassemble,
  readLayout,
  parseLayout,
  LAYOUT_FORMAT,
  LAYOUT_KINDS,
} from './concat/layout';
export type { Layout, LayoutKind, SequenceSpec } from './concat/layout';
export { readExternalCodes } from './concat/external-codes';
export type { ExternalCodes, ExternalEntry } from './concat/external-codes';
export { npyHeader } from './tokens/npy';
