/**
 * One ONNX Runtime measurement in a process of its own (so that its peak RSS is its own):
 * `node dist/bench/bench/ort-worker.js '<json job>'` prints one JSON object.
 *
 * Sessions open through the library's own runtime module (src/runtime/onnx.ts), so the
 * figures are what the CLI gets. A job may name `sessionOptions` to try other ONNX
 * Runtime settings (arena, memory pattern, optimization level, profiling): those sessions
 * are opened with onnxruntime-node directly, with the library's settings as the base.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { openSession, type GraphSession, ortSessionOptions, type TensorData } from '../src/runtime/onnx';
import { matmulModelBytes } from './gemm-model';

export interface RunJob {
  mode: 'run';
  model: string; // package dir
  graph: 'encoder' | 'decoder';
  /** Graph file to use instead of the package's (a variant: int8, fp16...). */
  file?: string;
  batch: number;
  threads: number;
  minTime: number;
  minIters: number;
  maxIters: number;
  warmup: number;
  sessionOptions?: ort.InferenceSession.SessionOptions;
}
export interface GemmJob {
  mode: 'gemm';
  size: number;
  threads: number;
  minTime: number;
}
export interface CheckJob {
  mode: 'check';
  model: string;
  /** bench_torch.py check's output. */
  file: string;
  threads: number;
}
export interface QualityJob {
  mode: 'quality';
  model: string;
  /** Variant graph files (float32 ones from the package when absent). */
  encoder?: string;
  decoder?: string;
  /** uint8 [N, S, S, 3] RGB (training/data's crops<S>/val.npy), or null: synthetic smooth images. */
  images: string | null;
  limit: number;
  threads: number;
}
export type Job = RunJob | GemmJob | CheckJob | QualityJob;

const now = () => Number(process.hrtime.bigint()) / 1e9;
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;

/** Deterministic values in [-1, 1) (content does not change the cost of these graphs). */
function pseudoRandom(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeIt(fn: () => Promise<unknown>, minTime: number, minIters: number, maxIters: number, warmup: number) {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const start = now();
  while (times.length < minIters || (now() - start < minTime && times.length < maxIters)) {
    const t = now();
    await fn();
    times.push(now() - t);
  }
  return times;
}

/** The CLI's own session settings (src/runtime/onnx.ts), overridable per job. */
const baseOptions = (threads: number): ort.InferenceSession.SessionOptions => ortSessionOptions('cpu', threads);

type Runner = { run: (feeds: Record<string, TensorData>) => Promise<unknown>; release: () => Promise<void> };

async function open(path: string, threads: number, extra?: ort.InferenceSession.SessionOptions): Promise<Runner> {
  if (!extra) {
    const { session } = await openSession(path, { device: 'cpu', threads, label: path });
    return session as GraphSession;
  }
  const s = await ort.InferenceSession.create(path, { ...baseOptions(threads), ...extra });
  return {
    run: async (feeds) => {
      const f: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', t.data as Float32Array, [...t.dims]);
      return s.run(f);
    },
    release: async () => {
      if (extra.enableProfiling) s.endProfiling();
      await s.release();
    },
  };
}

function manifestOf(dir: string) {
  return JSON.parse(readFileSync(`${dir}/model.json`, 'utf8'));
}

async function run(job: RunJob) {
  const m = manifestOf(job.model);
  const c = m.config;
  const file = job.file ?? `${job.model}/${m.files[job.graph].path}`;
  const t0 = now();
  const session = await open(file, job.threads, job.sessionOptions);
  const loadS = now() - t0;
  const feeds: Record<string, TensorData> =
    job.graph === 'encoder'
      ? {
          image: {
            data: pseudoRandom(job.batch * 3 * c.image_size * c.image_size, 1),
            dims: [job.batch, 3, c.image_size, c.image_size],
          },
        }
      : {
          latents: {
            data: pseudoRandom(job.batch * c.num_tokens * c.latent_dim, 2),
            dims: [job.batch, c.num_tokens, c.latent_dim],
          },
        };
  const times = await timeIt(() => session.run(feeds), job.minTime, job.minIters, job.maxIters, job.warmup);
  await session.release();
  const med = median(times);
  return {
    what: 'run',
    framework: 'onnxruntime',
    graph: job.graph,
    batch: job.batch,
    threads: job.threads,
    file,
    iters: times.length,
    median_s: med,
    min_s: Math.min(...times),
    images_per_s: job.batch / med,
    load_s: loadS,
    max_rss_mb: maxRssMb(),
  };
}

async function gemm(job: GemmJob) {
  // A [n, n] x W [n, n] with W a prepacked initializer, like a model's weights.
  const n = job.size;
  const s = await ort.InferenceSession.create(matmulModelBytes(n, n, pseudoRandom(n * n, 4)), baseOptions(job.threads));
  const a = new ort.Tensor('float32', pseudoRandom(n * n, 3), [n, n]);
  const times = await timeIt(() => s.run({ A: a }), job.minTime, 3, 1000, 2);
  await s.release();
  const med = median(times);
  return {
    what: 'gemm',
    framework: 'onnxruntime',
    size: n,
    threads: job.threads,
    median_s: med,
    best_s: Math.min(...times),
    gflops: (2 * n ** 3) / med / 1e9,
    gflops_best: (2 * n ** 3) / Math.min(...times) / 1e9,
    max_rss_mb: maxRssMb(),
  };
}

interface Arr {
  shape: number[];
  data: number[];
}

async function check(job: CheckJob) {
  const m = manifestOf(job.model);
  const ref: Record<string, Arr> = JSON.parse(readFileSync(job.file, 'utf8'));
  const diff = (got: Float32Array, want: number[]) => {
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
    return d;
  };
  const out: Record<string, number> = {};
  for (const [graph, input, inName, output, outName] of [
    ['encoder', 'image', 'image', 'latents', 'latents'],
    ['decoder', 'latents', 'latents', 'decoded', 'image'],
  ] as const) {
    if (!ref[output]) continue; // the reference left this graph out
    const s = await open(`${job.model}/${m.files[graph].path}`, job.threads);
    const r = (await s.run({
      [inName]: { data: Float32Array.from(ref[input].data), dims: ref[input].shape },
    })) as Record<string, TensorData>;
    out[`${graph}_max_abs_diff`] = diff(r[outName].data as Float32Array, ref[output].data);
    await s.release();
  }
  return { what: 'check', ...out };
}

/** Smooth random fields (bilinear upsampling of a 4x4 grid) as 8-bit HWC images. */
function smoothImages(n: number, size: number): Uint8Array {
  const out = new Uint8Array(n * size * size * 3);
  const g = pseudoRandom(n * 3 * 16, 7);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++) {
          const fy = Math.min(3, Math.max(0, ((y + 0.5) / size) * 4 - 0.5));
          const fx = Math.min(3, Math.max(0, ((x + 0.5) / size) * 4 - 0.5));
          const y0 = Math.floor(fy),
            x0 = Math.floor(fx),
            y1 = Math.min(3, y0 + 1),
            x1 = Math.min(3, x0 + 1);
          const at = (yy: number, xx: number) => g[((i * 3 + c) * 4 + yy) * 4 + xx];
          const wx = fx - x0,
            wy = fy - y0;
          const top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx;
          const bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx;
          const v = top * (1 - wy) + bottom * wy;
          out[((i * size + y) * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
        }
  return out;
}

/** Token agreement and reconstruction PSNR of variant graphs against the float32 package. */
async function quality(job: QualityJob) {
  const { decodeNpy } = await import('../src/tokens/npy');
  const { psnr } = await import('../src/metrics/quality');
  const m = manifestOf(job.model);
  const s = m.config.image_size as number;
  const T = m.config.num_tokens as number;
  const D = m.config.latent_dim as number;
  let pixels: Uint8Array;
  let n: number;
  let source: string;
  if (job.images) {
    const arr = decodeNpy(readFileSync(job.images), job.images);
    if (
      arr.dtype !== 'uint8' ||
      arr.shape.length !== 4 ||
      arr.shape[1] !== s ||
      arr.shape[2] !== s ||
      arr.shape[3] !== 3
    )
      throw new Error(`${job.images}: expected uint8 [N,${s},${s},3], got ${arr.dtype} [${arr.shape}]`);
    n = Math.min(arr.shape[0], job.limit);
    pixels = (arr.data as Uint8Array).subarray(0, n * s * s * 3);
    source = `${job.images} (first ${n})`;
  } else {
    n = Math.min(job.limit, 64); // random-weight models: a check that the variant runs, not a quality figure
    pixels = smoothImages(n, s);
    source = `${n} synthetic smooth images (no validation set found)`;
  }
  const file = (g: string) => `${job.model}/${m.files[g].path}`;
  const enc32 = await open(file('encoder'), job.threads, {});
  const encV = job.encoder ? await open(job.encoder, job.threads, {}) : enc32;
  const dec32 = await open(file('decoder'), job.threads, {});
  const decV = job.decoder ? await open(job.decoder, job.threads, {}) : dec32;
  const cb = await ort.InferenceSession.create(file('codebook'), baseOptions(job.threads));
  const dq = await ort.InferenceSession.create(file('dequantize'), baseOptions(job.threads));
  const run1 = async (r: Runner, name: string, t: Float32Array, dims: number[], out: string) =>
    ((await r.run({ [name]: { data: t, dims } })) as Record<string, ort.Tensor>)[out].data as Float32Array;
  const toU8 = (x: Float32Array) => Uint8Array.from(x, (v) => Math.round((Math.max(-1, Math.min(1, v)) + 1) * 127.5));
  let same = 0;
  let imagesAllSame = 0;
  let latErr = 0;
  const sums = { fp32: 0, encoder_variant: 0, decoder_variant: 0, both: 0, decoder_variant_vs_fp32: 0 };
  const B = 32;
  for (let i0 = 0; i0 < n; i0 += B) {
    const b = Math.min(B, n - i0);
    const x = new Float32Array(b * 3 * s * s);
    const ref = new Uint8Array(b * 3 * s * s);
    for (let i = 0; i < b; i++)
      for (let y = 0; y < s; y++)
        for (let xx = 0; xx < s; xx++)
          for (let c = 0; c < 3; c++) {
            const v = pixels[(((i0 + i) * s + y) * s + xx) * 3 + c];
            const o = ((i * 3 + c) * s + y) * s + xx;
            x[o] = v / 127.5 - 1;
            ref[o] = v;
          }
    const dims = [b, 3, s, s];
    const l32 = await run1(enc32, 'image', x, dims, 'latents');
    const lV = await run1(encV, 'image', x, dims, 'latents');
    for (let k = 0; k < l32.length; k++) latErr = Math.max(latErr, Math.abs(l32[k] - lV[k]));
    const tok = async (l: Float32Array) =>
      (await cb.run({ latents: new ort.Tensor('float32', l, [b, T, D]) })).tokens.data as BigInt64Array;
    const t32 = await tok(l32);
    const tV = await tok(lV);
    for (let i = 0; i < b; i++) {
      let all = true;
      for (let k = 0; k < T; k++) {
        if (t32[i * T + k] === tV[i * T + k]) same++;
        else all = false;
      }
      if (all) imagesAllSame++;
    }
    const deq = async (t: BigInt64Array) =>
      (await dq.run({ tokens: new ort.Tensor('int64', t, [b, T]) })).latents.data as Float32Array;
    const q32 = await deq(t32);
    const qV = await deq(tV);
    const r32 = toU8(await run1(dec32, 'latents', q32, [b, T, D], 'image'));
    const rE = toU8(await run1(dec32, 'latents', qV, [b, T, D], 'image'));
    const rD = toU8(await run1(decV, 'latents', q32, [b, T, D], 'image'));
    const rB = toU8(await run1(decV, 'latents', qV, [b, T, D], 'image'));
    const per = 3 * s * s;
    for (let i = 0; i < b; i++) {
      const sl = (a: Uint8Array) => a.subarray(i * per, (i + 1) * per);
      const clip = (v: number) => Math.min(v, 100);
      sums.fp32 += clip(psnr(sl(ref), sl(r32)));
      sums.encoder_variant += clip(psnr(sl(ref), sl(rE)));
      sums.decoder_variant += clip(psnr(sl(ref), sl(rD)));
      sums.both += clip(psnr(sl(ref), sl(rB)));
      sums.decoder_variant_vs_fp32 += clip(psnr(sl(r32), sl(rD)));
    }
  }
  const mean = (v: number) => Math.round((v / n) * 100) / 100;
  return {
    what: 'quality',
    images: source,
    n,
    encoder: job.encoder ?? null,
    decoder: job.decoder ?? null,
    token_agreement: same / (n * T),
    images_with_all_tokens_equal: imagesAllSame / n,
    latents_max_abs_diff: latErr,
    psnr_db: {
      fp32: mean(sums.fp32),
      encoder_variant: mean(sums.encoder_variant),
      decoder_variant: mean(sums.decoder_variant),
      both_variants: mean(sums.both),
      decoder_variant_vs_fp32_decoder: mean(sums.decoder_variant_vs_fp32),
    },
    note: 'PSNR of the reconstruction (encode -> tokens -> decode) against the input, mean over images, capped at 100 dB',
    max_rss_mb: maxRssMb(),
  };
}

async function main() {
  const job = JSON.parse(process.argv[2]) as Job;
  const result: Record<string, unknown> =
    job.mode === 'run'
      ? await run(job)
      : job.mode === 'gemm'
        ? await gemm(job)
        : job.mode === 'check'
          ? await check(job)
          : await quality(job);
  const cpu = process.cpuUsage();
  result.cpu_s = (cpu.user + cpu.system) / 1e6; // the harness compares it with the machine's busy time
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`ort-worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
