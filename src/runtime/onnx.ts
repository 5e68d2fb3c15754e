/**
 * The only module that imports onnxruntime-node (after transformers.js' backends/onnx.js).
 * Everything else asks it for sessions and hands it plain typed arrays.
 *
 * Devices map to execution providers in one table. ONNX Runtime does not fall back between
 * providers by itself (a session asked for ['cuda', 'cpu'] throws when the CUDA libraries
 * are missing), so the 'auto' fallback lives here, and is reported whenever CUDA was
 * installed but did not load.
 */
import * as ort from 'onnxruntime-node';
import { deviceError, firstLine, modelError, usageError } from '../errors';
import { debug, isDebug } from '../debug';
import { defaultThreads, DEFAULTS } from '../defaults';
import { probeModelBytes } from './probe-model';
import { CUDA_PROVIDER_FILES, cudaProviderInstalled, missingCudaLibraries } from './cuda-libraries';

/** Concrete providers a session can run on. */
export type Provider = 'cpu' | 'cuda' | 'webgpu';
export type Device = 'auto' | Provider;

/**
 * Device name -> execution providers, in the order ONNX Runtime should try them for the
 * nodes of one session ('cpu' after a GPU provider takes the nodes it cannot run).
 * 'auto' is a list of devices tried in turn: the first that opens wins.
 */
export const DEVICES: Readonly<Record<Device, readonly string[]>> = {
  auto: ['cuda', 'cpu'],
  cpu: ['cpu'],
  cuda: ['cuda', 'cpu'],
  webgpu: ['webgpu', 'cpu'],
};

export const DEVICE_NAMES = Object.keys(DEVICES) as Device[];

export function parseDevice(name: unknown): Device {
  if (typeof name === 'string' && (DEVICE_NAMES as string[]).includes(name)) return name as Device;
  throw usageError(`Unsupported device "${String(name)}". Should be one of: ${DEVICE_NAMES.join(', ')}.`);
}

/** Which provider actually ran, and why, when it is not the one asked for. */
export interface ExecutionInfo {
  /** What was asked for. */
  device: Device;
  /** What runs. */
  provider: Provider;
  /** Set when 'auto' fell back: why the preferred provider did not open. */
  fallback?: string;
}

export type TensorType = 'float32' | 'int64' | 'int32';
export type TensorArray = Float32Array | BigInt64Array | Int32Array;

/** A plain tensor: what goes in and comes out of {@link GraphSession.run}. */
export interface TensorData<T extends TensorArray = TensorArray> {
  data: T;
  dims: readonly number[];
}

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; 0 or undefined: all cores. */
  threads?: number;
  /** Name used in error messages (e.g. "encoder.onnx"). */
  label?: string;
  /**
   * The graph's external-data files as bytes, under the location the graph names (a graph
   * given as bytes has no folder to find them in; given these, ONNX Runtime opens no file).
   */
  externalData?: readonly { path: string; data: Uint8Array }[];
}

const TYPE_OF = (data: TensorArray): TensorType =>
  data instanceof Float32Array ? 'float32' : data instanceof BigInt64Array ? 'int64' : 'int32';

let logLevelSet = false;
function configureLogging(): void {
  if (logLevelSet) return;
  logLevelSet = true;
  // ORT reads this once, when its environment is first created. Its own error lines
  // (e.g. a provider library that does not load) are noise next to our message.
  ort.env.logLevel = isDebug() ? 'warning' : 'fatal';
}

/** One loaded ONNX graph. Release it when done (Model.dispose does). */
export class GraphSession {
  private session: ort.InferenceSession | undefined;

  constructor(
    session: ort.InferenceSession,
    readonly label: string,
    readonly provider: Provider,
  ) {
    this.session = session;
  }

  get inputNames(): readonly string[] {
    return this.live().inputNames;
  }

  get outputNames(): readonly string[] {
    return this.live().outputNames;
  }

  async run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
    const session = this.live();
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds))
      ortFeeds[name] = new ort.Tensor(TYPE_OF(t.data), t.data, [...t.dims]);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(ortFeeds);
    } catch (err) {
      throw modelError(`${this.label} failed to run: ${firstLine(err)}`, err);
    }
    const out: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { data: t.data as TensorArray, dims: t.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.release();
  }

  private live(): ort.InferenceSession {
    if (!this.session) throw new Error(`${this.label}: session already released`);
    return this.session;
  }
}

export { CUDA_PROVIDER_LIBRARY, ortBinaryDir } from './cuda-libraries';

/** Whether onnxruntime-node's CUDA provider libraries are in its folder (not whether they load). */
export function cudaLibrariesInstalled(): boolean {
  return cudaProviderInstalled();
}

export const CUDA_HELP = 'run `styled-vq setup cuda` (CUDA 13 + cuDNN 9; README "GPUs"), or use --device cpu';

/**
 * Rephrase a provider failure as something a user can act on: for CUDA, name what is
 * missing (the provider libraries, or each CUDA library by soname). `brief`: for the notice
 * of an 'auto' fallback, which should not read like an error.
 */
function providerFailure(provider: Provider, err: unknown, brief = false): string {
  const msg = firstLine(err);
  if (provider === 'cuda') {
    if (!cudaProviderInstalled()) {
      return brief
        ? 'CUDA is not available (onnxruntime-node\'s CUDA provider libraries are not installed; see README "GPUs")'
        : `CUDA is not available: onnxruntime-node's CUDA provider libraries (${CUDA_PROVIDER_FILES.join(', ')}) are not installed; ${CUDA_HELP}`;
    }
    const missing = missingCudaLibraries();
    const cpu = brief ? '' : '; or use --device cpu';
    if (missing)
      return `CUDA is not available: ${missing} not found (install them or point LD_LIBRARY_PATH at them; \`styled-vq doctor\` lists each)${cpu}`;
    return `CUDA is not available: ${msg} (the CUDA provider needs CUDA 13, cuDNN 9 and an NVIDIA driver)${cpu}`;
  }
  if (provider === 'webgpu') {
    if (/adapter/i.test(msg)) {
      return 'WebGPU is not available: no GPU adapter found (it needs a GPU driver with Vulkan support and the Vulkan loader, e.g. `apt-get install libvulkan1`); or use --device cpu';
    }
    return `WebGPU is not available: ${msg}; or use --device cpu`;
  }
  return msg;
}

/** Failures that say the provider, not the graph, is at fault. */
function looksLikeProviderFailure(provider: Provider, err: unknown): boolean {
  if (provider === 'cpu') return false;
  const msg = firstLine(err);
  return provider === 'cuda'
    ? /cuda|cudnn|cublas|shared library|providers_/i.test(msg)
    : /webgpu|adapter|dawn|vulkan|backend not found/i.test(msg);
}

/** The session settings every graph opens with (the benchmarks use them too). */
export function ortSessionOptions(provider: Provider, threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [...DEVICES[provider]],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: isDebug() ? 2 : 4,
  };
}

async function createOn(
  source: string | Uint8Array,
  provider: Provider,
  threads: number,
  label: string,
  externalData?: SessionOptions['externalData'],
): Promise<GraphSession> {
  const options = ortSessionOptions(provider, threads);
  if (externalData?.length) options.externalData = externalData;
  const session =
    typeof source === 'string'
      ? await ort.InferenceSession.create(source, options)
      : await ort.InferenceSession.create(source, options);
  debug(`opened ${label} on ${provider} (${threads} threads)`);
  return new GraphSession(session, label, provider);
}

/**
 * Open one graph on the requested device. 'auto' tries CUDA, then CPU, and says so in
 * the returned {@link ExecutionInfo}; an explicit GPU device that cannot open is an error
 * that says how to get it.
 */
export async function openSession(
  source: string | Uint8Array,
  options: SessionOptions = {},
): Promise<{ session: GraphSession; execution: ExecutionInfo }> {
  configureLogging();
  const device = parseDevice(options.device ?? DEFAULTS.device);
  const threads = options.threads && options.threads > 0 ? options.threads : defaultThreads();
  const label = options.label ?? (typeof source === 'string' ? source : 'in-memory graph');

  if (device === 'auto') {
    const reasons: string[] = [];
    // Where the CUDA provider libraries were never installed, 'auto' means CPU, quietly:
    // a notice on every command of a CPU-only machine reads like an error. Where they are
    // installed but do not load, the fallback is announced with the reason.
    const candidates = (DEVICES.auto as readonly Provider[]).filter((p) => p !== 'cuda' || cudaProviderInstalled());
    for (let i = 0; i < candidates.length; i++) {
      const provider = candidates[i];
      const last = i === candidates.length - 1;
      try {
        const session = await createOn(source, provider, threads, label, options.externalData);
        const execution: ExecutionInfo = { device, provider };
        if (reasons.length) execution.fallback = reasons.join('; ');
        return { session, execution };
      } catch (err) {
        debug(`${provider} did not open ${label}: ${firstLine(err)}`);
        if (last || !looksLikeProviderFailure(provider, err)) throw loadFailure(label, err);
        reasons.push(providerFailure(provider, err, true));
      }
    }
  }
  const provider = device as Provider;
  try {
    return {
      session: await createOn(source, provider, threads, label, options.externalData),
      execution: { device, provider },
    };
  } catch (err) {
    if (looksLikeProviderFailure(provider, err)) throw deviceError(providerFailure(provider, err), err);
    throw loadFailure(label, err);
  }
}

function loadFailure(label: string, err: unknown) {
  return modelError(`Cannot load ${label}: ${firstLine(err)}`, err);
}

/** ONNX Runtime's version, as the native binding reports it. */
export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** Providers compiled into this onnxruntime-node build (not whether they load). */
export function bundledProviders(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

export interface ProbeResult {
  device: Provider;
  ok: boolean;
  /** On failure, the user-facing reason; on success, a short note. */
  message: string;
}

/** Actually try a provider: open a tiny in-memory graph on it and run it once. */
export async function probeProvider(provider: Provider): Promise<ProbeResult> {
  configureLogging();
  let session: GraphSession | undefined;
  try {
    session = await createOn(probeModelBytes(), provider, 1, 'probe graph');
    const out = await session.run({ x: { data: Float32Array.from([1, 2]), dims: [2] } });
    const y = Array.from(out.y.data as Float32Array);
    if (y[0] !== 2 || y[1] !== 4) return { device: provider, ok: false, message: `probe graph gave wrong output ${y}` };
    return { device: provider, ok: true, message: 'loads and runs' };
  } catch (err) {
    return { device: provider, ok: false, message: providerFailure(provider, err) };
  } finally {
    await session?.release();
  }
}
