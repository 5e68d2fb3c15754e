/**
 * model.json: types and structural validation (docs/model-package.md). Only the loader
 * reads the manifest; everything downstream takes the few numbers it needs.
 */
import { promises as fs } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { modelError } from '../errors';

export const MODEL_FORMAT = 'styled-vq-model';
export const MODEL_VERSION = 1;

/** The four graphs of a package, in the order the fingerprint lists them. */
export const GRAPH_ROLES = ['codebook', 'decoder', 'dequantize', 'encoder'] as const;
export type GraphRole = (typeof GRAPH_ROLES)[number];

export interface FileEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface GraphFileEntry extends FileEntry {
  /** External weights (`<graph>.onnx.data`), only when the graph exceeds 2 GB. */
  data: FileEntry | null;
}

export interface Preprocessing {
  image_size: number;
  resize: string;
  range: [number, number];
  channels: string;
  exif_orientation: boolean;
  alpha: string;
  [extra: string]: unknown;
}

export interface ModelConfig {
  image_size: number;
  num_tokens: number;
  latent_dim: number;
  [size: string]: unknown;
}

/**
 * Numeric precisions a package's graphs may come in. fp32 is the package itself; fp16 is
 * an optional variant (`variants.fp16`: encoder and decoder in float16, the codebook
 * graphs shared), written by training/fp16.py (docs/model-package.md, "fp16 variant").
 */
export const DTYPES = ['fp32', 'fp16'] as const;
export type Dtype = (typeof DTYPES)[number];

/** Graphs that replace the package's own for one dtype, and the fingerprint they make. */
export interface Variant {
  files: Partial<Record<GraphRole, GraphFileEntry>>;
  fingerprint: string;
  description?: string;
  /** ONNX op types kept in float32 inside the fp16 graphs. */
  keep_fp32?: string[];
}

/** The graphs a variant may replace. */
export const VARIANT_ROLES = ['encoder', 'decoder'] as const satisfies readonly GraphRole[];

export interface PrefixFill {
  kind: 'zero' | 'mean_latent' | 'learned';
  /** float32 values, num_tokens rows of latent_dim. */
  values: number[][];
}

export interface SameTokensEntry {
  name: string;
  fingerprint: string;
}

/** At most this many same_tokens_as entries (a lineage of decoder retrains, not a registry). */
export const MAX_SAME_TOKENS = 256;

export interface Manifest {
  format: typeof MODEL_FORMAT;
  version: typeof MODEL_VERSION;
  name: string;
  description?: string;
  config: ModelConfig;
  preprocessing: Preprocessing;
  /** per_position: one table per token position (ids mean a different vector at each). */
  codebook: { size: number; dim: number; metric: 'l2' | 'cosine'; per_position?: boolean };
  files: Record<GraphRole, GraphFileEntry>;
  parameters?: Record<string, number>;
  fingerprint: string;
  /** What positions after a token prefix decode from (docs/model-package.md, "Prefix fill"). */
  prefix_fill?: PrefixFill;
  /** Optional graph variants by dtype (only fp16 so far); absent in most packages. */
  variants?: Partial<Record<Exclude<Dtype, 'fp32'>, Variant>>;
  /**
   * Earlier packages whose token ids this one reads exactly as they wrote them (same encoder,
   * codebooks and prefix fill; a retrained decoder): their token files decode here without
   * --force. The exporter lists a package only after checking it (docs/model-package.md).
   */
  same_tokens_as?: SameTokensEntry[];
  training?: unknown;
  quality?: unknown;
}

/**
 * Sane upper bounds on the sizes in model.json, far above any real package (the shipped one
 * is 64 px, 36 tokens, 16 dims, 1024 codes) and low enough that one image's tensors stay
 * small: checked before any buffer is sized from the manifest.
 */
export const MANIFEST_LIMITS = {
  image_size: 4096,
  num_tokens: 65536,
  latent_dim: 65536,
  codebook_size: 1 << 24,
} as const;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX16 = /^[0-9a-f]{16}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** Read and validate `<dir>/model.json`; errors name the file and the field. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, 'model.json');
  let text: string;
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory())
      throw modelError(
        `Model ${dir} is not a directory (a model package is a directory holding model.json and its .onnx files)`,
      );
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as { kind?: string }).kind) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw modelError(
        (await fs.stat(dir).catch(() => null))
          ? `Model package ${dir} has no model.json`
          : `Model directory ${dir} does not exist`,
        err,
      );
    }
    throw modelError(`Cannot read ${file}: ${(err as Error).message}`, err);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw modelError(`${file} is not valid JSON: ${(err as Error).message}`, err);
  }
  return validateManifest(raw, file);
}

/** Check the structure of a parsed manifest. `where` names the file in messages. */
export function validateManifest(raw: unknown, where = 'model.json'): Manifest {
  const fail = (what: string) => modelError(`${where}: ${what}`);
  if (!isObject(raw)) throw fail('expected a JSON object');
  if (raw.format !== MODEL_FORMAT)
    throw fail(
      `format is ${JSON.stringify(raw.format)}, expected "${MODEL_FORMAT}" (is this a styled-vq model package?)`,
    );
  if (raw.version !== MODEL_VERSION) {
    throw fail(
      typeof raw.version === 'number' && raw.version > MODEL_VERSION
        ? `version ${raw.version} is newer than this styled-vq supports (${MODEL_VERSION}); upgrade styled-vq`
        : `unsupported version ${JSON.stringify(raw.version)} (expected ${MODEL_VERSION})`,
    );
  }
  if (typeof raw.name !== 'string' || !raw.name) throw fail('name must be a non-empty string');

  const config = raw.config;
  if (!isObject(config)) throw fail('config must be an object');
  for (const key of ['image_size', 'num_tokens', 'latent_dim'] as const) {
    if (!isPositiveInt(config[key])) throw fail(`config.${key} must be a positive integer`);
    // Bounded before anything is allocated from it: an edited size must fail here with a
    // clear message, not as a multi-GB typed array (issue 10.13, 15.4).
    if ((config[key] as number) > MANIFEST_LIMITS[key])
      throw fail(`config.${key} ${config[key]} is beyond the supported maximum ${MANIFEST_LIMITS[key]}`);
  }

  const pre = raw.preprocessing;
  if (!isObject(pre)) throw fail('preprocessing must be an object');
  if (!isPositiveInt(pre.image_size)) throw fail('preprocessing.image_size must be a positive integer');
  if (pre.image_size !== config.image_size) {
    throw fail(`preprocessing.image_size (${pre.image_size}) differs from config.image_size (${config.image_size})`);
  }
  if (pre.resize !== undefined && pre.resize !== 'adm-center-crop')
    throw fail(`preprocessing.resize "${String(pre.resize)}" is not supported (expected "adm-center-crop")`);
  if (pre.alpha !== undefined && pre.alpha !== 'drop')
    throw fail(`preprocessing.alpha "${String(pre.alpha)}" is not supported (expected "drop")`);
  if (pre.channels !== undefined && pre.channels !== 'RGB')
    throw fail(`preprocessing.channels "${String(pre.channels)}" is not supported (expected "RGB")`);
  // Token records copy the preprocessing block: it may only claim what the library does.
  if (
    pre.range !== undefined &&
    !(Array.isArray(pre.range) && pre.range.length === 2 && pre.range[0] === -1 && pre.range[1] === 1)
  )
    throw fail(`preprocessing.range ${JSON.stringify(pre.range)} is not supported (expected [-1, 1])`);
  if (pre.exif_orientation !== undefined && pre.exif_orientation !== true)
    throw fail(
      `preprocessing.exif_orientation ${JSON.stringify(pre.exif_orientation)} is not supported (expected true)`,
    );

  const cb = raw.codebook;
  if (!isObject(cb)) throw fail('codebook must be an object');
  if (!isPositiveInt(cb.size)) throw fail('codebook.size must be a positive integer');
  if (cb.size > MANIFEST_LIMITS.codebook_size)
    throw fail(`codebook.size ${cb.size} is beyond the supported maximum ${MANIFEST_LIMITS.codebook_size}`);
  if (!isPositiveInt(cb.dim)) throw fail('codebook.dim must be a positive integer');
  if (cb.dim !== config.latent_dim)
    throw fail(`codebook.dim (${cb.dim}) differs from config.latent_dim (${config.latent_dim})`);
  if (cb.per_position !== undefined && typeof cb.per_position !== 'boolean')
    throw fail('codebook.per_position must be true or false');
  if (cb.metric !== 'l2' && cb.metric !== 'cosine')
    throw fail(`codebook.metric must be "l2" or "cosine", got ${JSON.stringify(cb.metric)}`);

  const files = raw.files;
  if (!isObject(files)) throw fail('files must be an object');
  for (const role of GRAPH_ROLES) {
    const entry = files[role];
    if (!isObject(entry)) throw fail(`files.${role} is missing`);
    checkGraphEntry(entry, `files.${role}`, fail);
  }

  if (typeof raw.fingerprint !== 'string' || !HEX16.test(raw.fingerprint))
    throw fail('fingerprint must be 16 lowercase hex characters');
  if (raw.prefix_fill !== undefined)
    checkPrefixFill(raw.prefix_fill, config.num_tokens as number, config.latent_dim as number, fail);
  if (raw.variants !== undefined) checkVariants(raw.variants, fail);
  if (raw.same_tokens_as !== undefined) checkSameTokens(raw.same_tokens_as, raw.fingerprint, fail);
  return raw as unknown as Manifest;
}

function checkVariants(variants: unknown, fail: (what: string) => Error): void {
  if (!isObject(variants)) throw fail('variants must be an object');
  for (const [name, v] of Object.entries(variants)) {
    const where = `variants.${name}`;
    if (!(DTYPES as readonly string[]).includes(name) || name === 'fp32')
      throw fail(`${where}: unknown variant (expected ${DTYPES.filter((d) => d !== 'fp32').join(', ')})`);
    if (!isObject(v) || !isObject(v.files)) throw fail(`${where}.files must be an object`);
    const roles = Object.keys(v.files);
    if (roles.length === 0) throw fail(`${where}.files lists no graph`);
    for (const role of roles) {
      // The codebook graphs are never replaced: an id means the same row in every variant,
      // so tokens of one dtype decode with another.
      if (!(VARIANT_ROLES as readonly string[]).includes(role))
        throw fail(`${where}.files.${role}: a variant replaces only ${VARIANT_ROLES.join(' and ')}`);
      const entry = v.files[role];
      if (!isObject(entry)) throw fail(`${where}.files.${role} must be an object`);
      checkGraphEntry(entry, `${where}.files.${role}`, fail);
    }
    if (typeof v.fingerprint !== 'string' || !HEX16.test(v.fingerprint))
      throw fail(`${where}.fingerprint must be 16 lowercase hex characters`);
  }
}

function checkSameTokens(list: unknown, own: string, fail: (what: string) => Error): void {
  if (!Array.isArray(list)) throw fail('same_tokens_as must be an array');
  if (list.length > MAX_SAME_TOKENS)
    throw fail(`same_tokens_as lists ${list.length} packages (at most ${MAX_SAME_TOKENS})`);
  list.forEach((e, i) => {
    const where = `same_tokens_as[${i}]`;
    if (!isObject(e) || typeof e.name !== 'string' || !e.name) throw fail(`${where}.name must be a non-empty string`);
    if (typeof e.fingerprint !== 'string' || !HEX16.test(e.fingerprint))
      throw fail(`${where}.fingerprint must be 16 lowercase hex characters`);
    if (e.fingerprint === own) throw fail(`${where} is the package itself`);
  });
}

function checkGraphEntry(entry: Json, where: string, fail: (what: string) => Error): void {
  checkFileEntry(entry, where, fail);
  if (entry.data !== undefined && entry.data !== null) {
    if (!isObject(entry.data)) throw fail(`${where}.data must be an object or null`);
    checkFileEntry(entry.data, `${where}.data`, fail);
  }
}

function checkPrefixFill(fill: unknown, tokens: number, dim: number, fail: (what: string) => Error): void {
  if (!isObject(fill)) throw fail('prefix_fill must be an object');
  if (fill.kind !== 'zero' && fill.kind !== 'mean_latent' && fill.kind !== 'learned') {
    throw fail(`prefix_fill.kind must be "zero", "mean_latent" or "learned", got ${JSON.stringify(fill.kind)}`);
  }
  const v = fill.values;
  const ok =
    Array.isArray(v) &&
    v.length === tokens &&
    v.every(
      (row) =>
        Array.isArray(row) && row.length === dim && row.every((x) => typeof x === 'number' && Number.isFinite(x)),
    );
  if (!ok) throw fail(`prefix_fill.values must be ${tokens} rows of ${dim} finite numbers`);
}

function checkFileEntry(entry: Json, where: string, fail: (what: string) => Error): void {
  const p = entry.path;
  if (typeof p !== 'string' || !p) throw fail(`${where}.path must be a file name`);
  const norm = normalize(p);
  if (isAbsolute(p) || norm.startsWith(`..${sep}`) || norm === '..')
    throw fail(`${where}.path "${p}" must stay inside the package directory`);
  if (typeof entry.sha256 !== 'string' || !HEX64.test(entry.sha256))
    throw fail(`${where}.sha256 must be 64 lowercase hex characters`);
  if (typeof entry.bytes !== 'number' || !Number.isInteger(entry.bytes) || entry.bytes < 0)
    throw fail(`${where}.bytes must be a non-negative integer`);
}
