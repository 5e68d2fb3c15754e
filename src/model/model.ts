/**
 * A model package loaded for inference: a thin wrapper over four named ONNX sessions
 * (after transformers.js' model classes and TiTok's encode / decode / decode_tokens).
 * Each method takes and returns one batch as a plain typed array with its dims; sessions
 * open on first use, so `info` never pays for them and `encode` never opens the decoder.
 */
import { join } from 'node:path';
import { deviceError, firstLine, inputError, modelError, msg, opt, StyledVqError } from '../errors';
import {
  type Device,
  type ExecutionInfo,
  type GraphSession,
  openSession,
  parseDevice,
  type TensorData,
} from '../runtime/onnx';
import { type Dtype, type GraphRole, type Manifest, type Preprocessing, readManifest } from './manifest';
import { resolveModelDir, type ModelSource } from './resolve';
import { IO } from './graph-check';
import { dtypeWithFingerprint, type GraphSet, graphSet, packageFingerprints, parseDtype } from './variant';
import { inspectGraph, readVerifiedFile, verifyFile, verifyPackage, verifyVariant } from './verify';
import { DEFAULTS } from '../defaults';

export type FloatBatch = TensorData<Float32Array>;
export type TokenBatch = TensorData<Int32Array>;

export interface ModelOptions {
  /** 'auto' (default): CUDA if it loads, else CPU, reported in {@link Model.execution}. */
  device?: Device;
  /** ONNX Runtime intra-op threads; default all cores. */
  threads?: number;
  /**
   * 'fp32' (default): the package's graphs. 'fp16': its float16 encoder and decoder
   * (`variants.fp16`, made by training/fp16.py), for GPUs; tokens carry that variant's
   * fingerprint. The codebook search stays float32 either way.
   */
  dtype?: Dtype;
}

export interface OpenOptions extends ModelOptions {
  /** Package directory; default: $STYLED_VQ_MODEL, then the shipped default. */
  model?: string;
}

/**
 * External data up to this size is read into memory once, hashed, and handed to ONNX Runtime
 * as bytes, like the graph (ONNX Runtime copies it while the session opens, so the peak is
 * twice the file). Larger files (the seed-size model's 9.5 GB, beyond one read's 2 GB) are
 * hashed again right before ONNX Runtime opens the package's files by path.
 */
export const IN_MEMORY_EXTERNAL_DATA_BYTES = 2 ** 30;

export class Model {
  private readonly sessions = new Map<GraphRole, Promise<GraphSession>>();
  private opening: Promise<unknown> = Promise.resolve();
  private executionInfo: ExecutionInfo | undefined;
  private readonly device: Device;
  private readonly threads: number | undefined;

  private constructor(
    /** The package directory. */
    readonly dir: string,
    readonly manifest: Manifest,
    options: ModelOptions,
    /** How the directory was chosen. */
    readonly source: ModelSource,
    /** The graphs of the chosen dtype. */
    private readonly graphs: GraphSet,
  ) {
    this.device = parseDevice(options.device ?? DEFAULTS.device);
    this.threads = options.threads;
  }

  /** Load and verify a package (format, version, sizes, sha256 of every file, fingerprint). */
  static async load(dir: string, options: ModelOptions = {}, source: ModelSource = 'option'): Promise<Model> {
    parseDevice(options.device ?? DEFAULTS.device);
    const dtype = parseDtype(options.dtype ?? DEFAULTS.dtype);
    const manifest = await readManifest(dir);
    const graphs = graphSet(dir, manifest, dtype);
    await verifyPackage(dir, manifest);
    await verifyVariant(dir, manifest, graphs);
    return new Model(dir, manifest, options, source, graphs);
  }

  /** Resolve the package (--model, $STYLED_VQ_MODEL, shipped default), then {@link load} it. */
  static async open(options: OpenOptions = {}): Promise<Model> {
    const { dir, source } = resolveModelDir(options.model);
    return Model.load(dir, options, source);
  }

  get name(): string {
    return this.manifest.name;
  }
  /** The fingerprint of the graphs that run: the package's, or its fp16 variant's. */
  get fingerprint(): string {
    return this.graphs.fingerprint;
  }
  /** Every fingerprint of the package (fp32, variants, same_tokens_as): tokens of each decode with any. */
  get fingerprints(): string[] {
    return packageFingerprints(this.manifest);
  }
  get dtype(): Dtype {
    return this.graphs.dtype;
  }
  /** Which dtype of this package made tokens of `fingerprint` (undefined: another package). */
  dtypeOf(fingerprint: string): Dtype | undefined {
    return dtypeWithFingerprint(this.manifest, fingerprint);
  }
  get imageSize(): number {
    return this.manifest.config.image_size;
  }
  get numTokens(): number {
    return this.manifest.config.num_tokens;
  }
  get latentDim(): number {
    return this.manifest.config.latent_dim;
  }
  get codebookSize(): number {
    return this.manifest.codebook.size;
  }
  get preprocessing(): Preprocessing {
    return this.manifest.preprocessing;
  }

  /** The provider that runs this model (and any fallback), once a session has opened. */
  get execution(): ExecutionInfo | undefined {
    return this.executionInfo && { ...this.executionInfo };
  }

  /** Open the sessions for the given graphs now (otherwise they open on first use). */
  async prepare(roles: readonly GraphRole[]): Promise<ExecutionInfo> {
    for (const role of roles) await this.session(role);
    return this.execution!;
  }

  /** images float32 [B,3,S,S] in [-1,1] -> latents float32 [B,T,D]. */
  async encode(images: FloatBatch): Promise<FloatBatch> {
    const s = this.imageSize;
    const b = checkBatch('images', images, [3, s, s]);
    return this.runGraph('encoder', images, [b, this.numTokens, this.latentDim]) as Promise<FloatBatch>;
  }

  /** latents float32 [B,T,D] -> token ids [B,T] (nearest codebook row, in float32 inside the graph). */
  async quantize(latents: FloatBatch): Promise<TokenBatch> {
    const b = checkBatch('latents', latents, [this.numTokens, this.latentDim]);
    checkFinite(latents.data as Float32Array, this.numTokens, this.latentDim);
    const out = await this.runGraph('codebook', latents, [b, this.numTokens]);
    return { data: toInt32(out.data as BigInt64Array | Int32Array), dims: out.dims };
  }

  /** token ids [B,T] -> latents float32 [B,T,D] (codebook row lookup). */
  async dequantize(tokens: TokenBatch): Promise<FloatBatch> {
    const b = checkBatch('tokens', tokens, [this.numTokens]);
    const k = this.codebookSize;
    for (let i = 0; i < tokens.data.length; i++) {
      const t = tokens.data[i];
      if (t < 0 || t >= k) {
        throw inputError(
          `Token id ${t} (image ${Math.floor(i / this.numTokens)}, position ${i % this.numTokens}) is outside the ` +
            `codebook [0, ${k})`,
        );
      }
    }
    const ids = { data: BigInt64Array.from(tokens.data, (v) => BigInt(v)), dims: tokens.dims };
    return this.runGraph('dequantize', ids, [b, this.numTokens, this.latentDim]) as Promise<FloatBatch>;
  }

  /** latents float32 [B,T,D] -> image float32 [B,3,S,S], unbounded (clamp when making pixels). */
  async decode(latents: FloatBatch): Promise<FloatBatch> {
    const b = checkBatch('latents', latents, [this.numTokens, this.latentDim]);
    const s = this.imageSize;
    return this.runGraph('decoder', latents, [b, 3, s, s]) as Promise<FloatBatch>;
  }

  /** Release every open session. Safe to call more than once, and after failures. */
  async dispose(): Promise<void> {
    const pending = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      pending.map(async (p) => {
        const s = await p.catch(() => undefined);
        await s?.release();
      }),
    );
  }

  private async runGraph(role: GraphRole, input: TensorData, expected: number[]): Promise<TensorData> {
    const session = await this.session(role);
    const { input: inName, output: outName } = IO[role];
    const out = (await session.run({ [inName]: input }))[outName];
    if (!out || out.dims.length !== expected.length || out.dims.some((d, i) => d !== expected[i])) {
      throw modelError(
        `${this.fileOf(role)} returned "${outName}" of shape [${out?.dims.join(',')}], expected ` +
          `[${expected.join(',')}] (model.json config disagrees with the graph)`,
      );
    }
    return out;
  }

  private fileOf(role: GraphRole): string {
    return this.graphs.files[role].path;
  }

  /**
   * A graph of a reduced-precision variant that does not load (a provider without float16
   * kernels for one of its ops) is the dtype's fault, not the package's: say so, and how
   * to run anyway. Errors about the provider itself (CUDA missing) pass unchanged.
   */
  private dtypeFailure(err: unknown, device: Device): unknown {
    if (this.dtype === 'fp32' || !(err instanceof StyledVqError) || err.kind !== 'model') return err;
    return deviceError(
      msg`${this.dtype} graphs do not run on ${device === 'auto' ? 'this machine' : device}: ${firstLine(err)}; use ${opt('dtype', 'fp32')}`,
      err,
    );
  }

  private session(role: GraphRole): Promise<GraphSession> {
    let s = this.sessions.get(role);
    if (!s) {
      // Sessions open one at a time: the first decides the provider the others use.
      s = this.opening.then(() => this.openGraph(role));
      this.opening = s.catch(() => undefined);
      this.sessions.set(role, s);
      s.catch(() => this.sessions.delete(role));
    }
    return s;
  }

  private async openGraph(role: GraphRole): Promise<GraphSession> {
    const device = this.executionInfo ? this.executionInfo.provider : this.device;
    // Graphs open on first use, possibly long after load() verified them (reconstruct opens
    // the decoder after encoding). The session is made from bytes read and hashed now, and
    // the graph is checked against the manifest again on those bytes: what runs is what was
    // verified, even if a file is replaced in between (issue 15.2). Its external data, the
    // one file the manifest lists for it, comes from memory too (issue 15.1).
    const entry = this.graphs.files[role];
    const graph = await readVerifiedFile(this.dir, entry, role);
    const locations = inspectGraph(this.dir, role, this.graphs.manifest, graph);
    let source: string | Uint8Array = graph;
    let externalData: { path: string; data: Uint8Array }[] | undefined;
    if (entry.data && locations.length > 0) {
      const what = `${role} external data`;
      if (entry.data.bytes <= IN_MEMORY_EXTERNAL_DATA_BYTES) {
        const data = await readVerifiedFile(this.dir, entry.data, what);
        externalData = locations.map((path) => ({ path, data }));
      } else {
        await verifyFile(this.dir, entry.data, what);
        source = join(this.dir, entry.path);
      }
    }
    const { session, execution } = await openSession(source, {
      device,
      threads: this.threads,
      label: this.fileOf(role),
      externalData,
    }).catch((err) => {
      throw this.dtypeFailure(err, device);
    });
    if (!this.executionInfo) this.executionInfo = { ...execution, device: this.device };
    return session;
  }
}

/** Check [B, ...rest] against the data length; returns B. */
function checkBatch(name: string, t: TensorData, rest: number[]): number {
  const dims = t.dims;
  const ok = dims.length === rest.length + 1 && rest.every((d, i) => dims[i + 1] === d) && dims[0] >= 1;
  if (!ok) throw inputError(`Expected ${name} of shape [B,${rest.join(',')}] but received [${dims.join(',')}]`);
  const size = dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== size)
    throw inputError(`${name}: ${t.data.length} values do not fill shape [${dims.join(',')}]`);
  return dims[0];
}

/**
 * NaN and +-Inf have no nearest codebook row (the graph's argmin returns 0 for them), so
 * they are refused with their position instead of becoming token 0 (issue 15.5).
 */
function checkFinite(data: Float32Array, tokens: number, dim: number): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const image = Math.floor(i / (tokens * dim));
      const position = Math.floor(i / dim) % tokens;
      throw inputError(
        `Latent value ${data[i]} (image ${image}, position ${position}, dimension ${i % dim}) is not finite; NaN ` +
          `and infinity have no nearest codebook row`,
      );
    }
  }
}

function toInt32(data: BigInt64Array | Int32Array): Int32Array {
  if (data instanceof Int32Array) return data;
  return Int32Array.from(data, (v) => Number(v));
}
