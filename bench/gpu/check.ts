/**
 * The prepared GPU check (issue 12.4; bench/gpu/README.md says how to carry it to a lent
 * GPU). On the shipped model and a small random package it measures, in one run:
 *
 * - parity against ONNX Runtime CPU float32: max abs difference of latents and of decoded
 *   images, and token agreement, for CUDA and WebGPU (fp32 and fp16) and CPU fp16, on the
 *   example photos and a few hundred 64 px crops (training/data/photos, with flips and
 *   rotations);
 * - throughput (images/s) of encoder and decoder at each batch size, through the library
 *   (host copies included), for onnxruntime-node CPU / CUDA / WebGPU in fp32 and fp16, and
 *   for PyTorch on the same weights (training/bench_torch.py rebuilds the model from the
 *   package) in fp32 and bf16.
 *
 * What this machine lacks (a provider, PyTorch CUDA, the onnx package for the fp16
 * graphs) is skipped and listed with the reason, so `--dry` runs the whole path on a CPU:
 *
 *   node dist/bench/bench/gpu/check.js --dry                  # CPU only, small batches
 *   node dist/bench/bench/gpu/check.js --out $OUT             # on a GPU: everything
 *   node dist/bench/bench/gpu/check.js --model DIR --devices cuda --batches 32
 *
 * Writes `gpu-check.json` and `gpu-check.md` (tables meant for BENCHMARKS.md) into --out.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import yargs from 'yargs';
import { preprocessImage, toModelInput } from '../../src/image';
import type { Dtype } from '../../src/model/manifest';
import { Model } from '../../src/model/model';
import { defaultModelDir } from '../../src/model/resolve';
import { ortVersion, probeProvider, type Provider } from '../../src/runtime/onnx';
import { readNpy } from '../../src/tokens/npy';
import { packageRoot } from '../../src/util/package-root';
import { runJson } from '../child';

const ROOT = packageRoot();
const PHOTOS = ['photos64.npy', 'holdout64.npy'].map((f) => join(ROOT, 'training', 'data', 'photos', f));
const EXAMPLES = join(ROOT, 'examples');

interface Options {
  dry: boolean;
  models: string[];
  devices: Provider[];
  batches: number[];
  minTime: number;
  parityImages: number;
  python: string;
  torch: boolean;
  /** Throughput rows for the CPU too (always in --dry; on a GPU machine they only cost device time). */
  cpuSpeed: boolean;
  out: string;
}

type Row = Record<string, string | number | boolean | null>;

const log = (m: string) => process.stderr.write(`[gpu-check ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const now = () => Number(process.hrtime.bigint()) / 1e9;

/** Everything left out, with why: printed and written, never silent. */
const skipped: string[] = [];
function skip(what: string, why: string): void {
  if (skipped.includes(`${what}: ${why}`)) return;
  skipped.push(`${what}: ${why}`);
  log(`skip ${what}: ${why}`);
}

// ---------------------------------------------------------------- inputs

/** uint8 HWC 64x64 crops under the 8 flips/rotations of the square, as model input. */
async function parityImages(size: number, limit: number): Promise<{ data: Float32Array; count: number; from: string }> {
  const crops: Uint8Array[] = [];
  const from: string[] = [];
  for (const file of existsSync(EXAMPLES) ? readdirSync(EXAMPLES).filter((f) => /\.jpe?g$/i.test(f)) : []) {
    crops.push((await preprocessImage(join(EXAMPLES, file), { size })).rgb);
  }
  if (crops.length) from.push(`${crops.length} example photos`);
  for (const path of PHOTOS) {
    if (!existsSync(path)) continue;
    const npy = await readNpy(path);
    const [n, h, w, c] = npy.shape;
    if (h !== size || w !== size || c !== 3) {
      skip(basename(path), `crops are ${h}x${w}x${c}, the model takes ${size}x${size}x3`);
      continue;
    }
    const px = npy.data as Uint8Array;
    const plane = h * w * 3;
    for (let i = 0; i < n; i++)
      for (let t = 0; t < 8; t++) crops.push(dihedral(px.subarray(i * plane, (i + 1) * plane), size, t));
    from.push(`${n} crops of ${basename(path)} x 8 flips/rotations`);
  }
  const chosen = crops.slice(0, limit);
  const what = `${chosen.length < crops.length ? `the first ${chosen.length} of ` : ''}${from.join(', ')}`;
  return { data: toModelInput(chosen, size), count: chosen.length, from: what };
}

/** One of the 8 symmetries of a square RGB image: t&1 flip x, t&2 flip y, t&4 transpose. */
function dihedral(rgb: Uint8Array, s: number, t: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      let sx = t & 1 ? s - 1 - x : x;
      let sy = t & 2 ? s - 1 - y : y;
      if (t & 4) [sx, sy] = [sy, sx];
      out.set(rgb.subarray((sy * s + sx) * 3, (sy * s + sx) * 3 + 3), (y * s + x) * 3);
    }
  }
  return out;
}

// ---------------------------------------------------------------- fp16 graphs

/**
 * A package with the fp16 variant: the given one if it has it, else a temporary copy to
 * which training/fp16.py adds it (needs Python with the onnx package).
 */
function withFp16(dir: string, opts: Options, scratch: string): string | undefined {
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  if (manifest.variants?.fp16) return dir;
  const copy = join(scratch, `${basename(dir)}-fp16`);
  cpSync(dir, copy, { recursive: true });
  const r = spawnSync(opts.python, [join(ROOT, 'training', 'fp16.py'), copy], { encoding: 'utf8' });
  if (r.status !== 0) {
    skip(
      `fp16 graphs of ${basename(dir)}`,
      `training/fp16.py failed: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`,
    );
    return undefined;
  }
  log(`made the fp16 variant of ${basename(dir)} in ${copy}`);
  return copy;
}

// ---------------------------------------------------------------- parity

interface Outputs {
  latents: Float32Array;
  tokens: Int32Array;
  decoded: Float32Array;
}

/** Encode, quantize, and decode `decodeFrom` (the reference latents, so decoders see one input). */
async function runAll(model: Model, images: Float32Array, count: number, decodeFrom?: Float32Array): Promise<Outputs> {
  const s = model.imageSize;
  const per = 3 * s * s;
  const lat = model.numTokens * model.latentDim;
  const latents = new Float32Array(count * lat);
  const tokens = new Int32Array(count * model.numTokens);
  const decoded = new Float32Array(count * per);
  const step = 64;
  for (let i = 0; i < count; i += step) {
    const b = Math.min(step, count - i);
    const enc = await model.encode({ data: images.subarray(i * per, (i + b) * per), dims: [b, 3, s, s] });
    latents.set(enc.data, i * lat);
    const q = await model.quantize(enc);
    tokens.set(q.data, i * model.numTokens);
    const src = decodeFrom ? decodeFrom.subarray(i * lat, (i + b) * lat) : enc.data;
    const dec = await model.decode({ data: src, dims: [b, model.numTokens, model.latentDim] });
    decoded.set(dec.data, i * per);
  }
  return { latents, tokens, decoded };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function agreement(a: Int32Array, b: Int32Array, perImage: number): { positions: number; images: number } {
  let same = 0;
  let imagesSame = 0;
  for (let i = 0; i < a.length; i += perImage) {
    let all = true;
    for (let j = i; j < i + perImage; j++) {
      if (a[j] === b[j]) same++;
      else all = false;
    }
    if (all) imagesSame++;
  }
  return { positions: same / a.length, images: imagesSame / (a.length / perImage) };
}

// ---------------------------------------------------------------- throughput

async function throughput(model: Model, graph: 'encoder' | 'decoder', batch: number, minTime: number): Promise<number> {
  const s = model.imageSize;
  const dims = graph === 'encoder' ? [batch, 3, s, s] : [batch, model.numTokens, model.latentDim];
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.8;
  const input = { data, dims };
  const fn = () => (graph === 'encoder' ? model.encode(input) : model.decode(input));
  await fn(); // warm-up: session creation, CUDA kernels, allocator growth
  await fn();
  const times: number[] = [];
  const start = now();
  while (times.length < 3 || (now() - start < minTime && times.length < 10000)) {
    const t = now();
    await fn();
    times.push(now() - t);
  }
  times.sort((a, b) => a - b);
  return batch / times[Math.floor(times.length / 2)];
}

// ---------------------------------------------------------------- PyTorch

function torchDevices(opts: Options): { device: string; dtypes: string[] }[] {
  if (!opts.torch) return [];
  const r = spawnSync(opts.python, ['-c', 'import torch; print(torch.__version__, torch.cuda.is_available())'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    skip('PyTorch rows', `${opts.python} cannot import torch`);
    return [];
  }
  const cuda = r.stdout.trim().endsWith('True');
  if (!cuda) skip('PyTorch CUDA rows', `torch ${r.stdout.trim().split(' ')[0]} sees no CUDA device`);
  if (cuda) return [{ device: 'cuda', dtypes: ['fp32', 'bf16'] }];
  return opts.dry ? [{ device: 'cpu', dtypes: ['fp32'] }] : [];
}

// ---------------------------------------------------------------- main

async function checkModel(dir: string, opts: Options, scratch: string, providers: Provider[]) {
  const name = basename(dir);
  log(`model ${name}`);
  const fp16Dir = withFp16(dir, opts, scratch);
  const ref = await Model.load(dir, { device: 'cpu' });
  const images = await parityImages(ref.imageSize, opts.parityImages);
  log(`  ${images.count} parity images (${images.from})`);
  const base = await runAll(ref, images.data, images.count);
  const parity: Row[] = [];
  const speed: Row[] = [];
  const targets: { provider: Provider; dtype: Dtype }[] = [];
  for (const provider of ['cpu', ...providers] as Provider[]) {
    for (const dtype of ['fp32', 'fp16'] as Dtype[]) {
      if (dtype === 'fp16' && !fp16Dir) continue;
      targets.push({ provider, dtype });
    }
  }
  for (const { provider, dtype } of targets) {
    const label = `${provider} ${dtype}`;
    let model: Model | undefined;
    try {
      model = await Model.load(dtype === 'fp16' ? fp16Dir! : dir, { device: provider, dtype });
      if (!(provider === 'cpu' && dtype === 'fp32')) {
        const t0 = now();
        const out = await runAll(model, images.data, images.count, base.latents);
        const agree = agreement(out.tokens, base.tokens, ref.numTokens);
        parity.push({
          model: name,
          device: provider,
          dtype,
          images: images.count,
          latents_max_abs: maxAbsDiff(out.latents, base.latents),
          decoded_max_abs: maxAbsDiff(out.decoded, base.decoded),
          token_agreement: agree.positions,
          images_all_tokens_equal: agree.images,
          seconds: now() - t0,
        });
        log(`  parity ${label}: tokens ${(agree.positions * 100).toFixed(2)}% equal`);
      }
      for (const graph of provider === 'cpu' && !opts.cpuSpeed ? [] : (['encoder', 'decoder'] as const)) {
        for (const batch of opts.batches) {
          const ips = await throughput(model, graph, batch, opts.minTime);
          speed.push({
            model: name,
            framework: 'onnxruntime-node',
            device: provider,
            dtype,
            graph,
            batch,
            images_per_s: ips,
          });
          log(`  ${label} ${graph} batch ${batch}: ${ips.toFixed(1)} images/s`);
        }
      }
    } catch (err) {
      skip(`${name} on ${label}`, (err as Error).message.split('\n')[0]);
    } finally {
      await model?.dispose();
    }
  }
  await ref.dispose();
  for (const { device, dtypes } of torchDevices(opts)) {
    for (const dtype of dtypes) {
      for (const graph of ['encoder', 'decoder']) {
        for (const batch of opts.batches) {
          const args = [
            'run',
            '--model',
            dir,
            '--graph',
            graph,
            '--batch',
            String(batch),
            '--threads',
            String(availableParallelism()),
          ];
          args.push('--device', device, '--dtype', dtype, '--min-time', String(opts.minTime), '--warmup', '2');
          const r = await runJson(opts.python, [join(ROOT, 'training', 'bench_torch.py'), ...args], 900);
          if (r.error) {
            skip(`PyTorch ${device} ${dtype} ${graph} batch ${batch} (${name})`, String(r.error));
            continue;
          }
          speed.push({ model: name, framework: 'pytorch', device, dtype, graph, batch, images_per_s: r.images_per_s });
          log(`  pytorch ${device} ${dtype} ${graph} batch ${batch}: ${r.images_per_s.toFixed(1)} images/s`);
        }
      }
    }
  }
  return { model: name, dir, parityImages: images.from, parity, speed };
}

function fmt(v: unknown, digits = 1): string {
  if (typeof v !== 'number') return '-';
  if (v !== 0 && Math.abs(v) < 0.01) return v.toExponential(1);
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function markdown(results: Awaited<ReturnType<typeof checkModel>>[], env: Row, opts: Options): string {
  const lines = [
    `Generated by \`bench/gpu/check.ts\`${opts.dry ? ' in --dry mode (CPU only: not a GPU figure)' : ''}; machine: ${env.gpu}; onnxruntime-node ${env.ort}.`,
    '',
    '### Parity against onnxruntime-node CPU fp32',
    '',
    '| model | device | dtype | images | latents max abs diff | decoded max abs diff | tokens equal | images with all tokens equal |',
    '|---|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    for (const p of r.parity) {
      lines.push(
        `| ${p.model} | ${p.device} | ${p.dtype} | ${p.images} | ${fmt(p.latents_max_abs, 4)} | ${fmt(p.decoded_max_abs, 4)} | ` +
          `${fmt((p.token_agreement as number) * 100, 2)}% | ${fmt((p.images_all_tokens_equal as number) * 100, 1)}% |`,
      );
    }
  }
  const columns: [string, string, string][] = [
    ['onnxruntime-node', 'cpu', 'fp32'],
    ['onnxruntime-node', 'cuda', 'fp32'],
    ['onnxruntime-node', 'cuda', 'fp16'],
    ['onnxruntime-node', 'webgpu', 'fp32'],
    ['onnxruntime-node', 'webgpu', 'fp16'],
    ['pytorch', 'cuda', 'fp32'],
    ['pytorch', 'cuda', 'bf16'],
  ];
  if (opts.dry) columns.push(['onnxruntime-node', 'cpu', 'fp16'], ['pytorch', 'cpu', 'fp32']);
  const head = columns.map(([f, d, t]) => `${f === 'pytorch' ? 'PyTorch' : 'ORT'} ${d.toUpperCase()} ${t}`);
  lines.push(
    '',
    '### Throughput (images/s, median call, host copies included)',
    '',
    `| model | graph | batch | ${head.join(' | ')} | ORT CUDA fp16 / PyTorch CUDA bf16 |`,
    `|---|---|--:|${columns.map(() => '--:').join('|')}|--:|`,
  );
  for (const r of results) {
    for (const graph of ['encoder', 'decoder']) {
      for (const batch of opts.batches) {
        const get = (f: string, d: string, t: string) =>
          r.speed.find(
            (s) => s.framework === f && s.device === d && s.dtype === t && s.graph === graph && s.batch === batch,
          )?.images_per_s as number | undefined;
        const ratio = (get('onnxruntime-node', 'cuda', 'fp16') ?? NaN) / (get('pytorch', 'cuda', 'bf16') ?? NaN);
        lines.push(
          `| ${r.model} | ${graph} | ${batch} | ${columns.map(([f, d, t]) => fmt(get(f, d, t))).join(' | ')} | ` +
            `${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-'} |`,
        );
      }
    }
  }
  lines.push('', `Parity images: ${results.map((r) => `${r.model}: ${r.parityImages}`).join('; ')}.`);
  if (skipped.length) lines.push('', 'Not measured in this run:', '', ...skipped.map((s) => `- ${s}`));
  return `${lines.join('\n')}\n`;
}

async function main() {
  const argv = await yargs(process.argv.slice(2))
    .usage('node dist/bench/bench/gpu/check.js [options]  (bench/gpu/README.md)')
    .option('dry', {
      type: 'boolean',
      default: false,
      describe: 'CPU only, batches 1 and 8, 48 parity images, 0.2 s per figure',
    })
    .option('model', {
      type: 'array',
      string: true,
      describe: 'package directories (default: the shipped model and test/fixtures/model-tiny)',
    })
    .option('devices', {
      type: 'string',
      default: 'cuda,webgpu',
      describe: 'GPU providers to try (CPU fp32 is the reference, always run)',
    })
    .option('batches', { type: 'string', default: '1,32,256' })
    .option('min-time', { type: 'number', default: 2, describe: 'seconds per throughput figure' })
    .option('parity-images', {
      type: 'number',
      describe: 'at most this many parity images (default 512; 48 with --dry)',
    })
    .option('python', {
      type: 'string',
      default: process.env.PYTHON ?? 'python3',
      describe: 'Python with torch (and onnx for the fp16 graphs)',
    })
    .option('torch', { type: 'boolean', default: true, describe: 'PyTorch rows (--no-torch skips them)' })
    .option('cpu-speed', {
      type: 'boolean',
      default: false,
      describe: 'throughput of the CPU rows too (always with --dry)',
    })
    .option('out', { type: 'string', default: join(ROOT, 'bench', 'out', 'gpu') })
    .strict()
    .parse();
  const opts: Options = {
    dry: argv.dry,
    models: argv.model?.length ? argv.model : [defaultModelDir(), join(ROOT, 'test', 'fixtures', 'model-tiny')],
    devices: (argv.dry ? [] : argv.devices.split(',').filter(Boolean)) as Provider[],
    batches: argv.dry ? [1, 8] : argv.batches.split(',').map(Number),
    minTime: argv.dry ? 0.2 : argv['min-time'],
    parityImages: argv['parity-images'] ?? (argv.dry ? 48 : 512),
    python: argv.python,
    torch: argv.torch,
    cpuSpeed: argv.dry || argv['cpu-speed'],
    out: argv.out,
  };
  if (argv.dry) skip('CUDA and WebGPU', '--dry runs on the CPU only');
  const providers: Provider[] = [];
  for (const p of opts.devices) {
    const probe = await probeProvider(p);
    if (probe.ok) providers.push(p);
    else skip(`${p} (all rows)`, probe.message);
  }
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], {
    encoding: 'utf8',
  });
  const env: Row = {
    ort: ortVersion(),
    gpu: smi.status === 0 ? smi.stdout.trim().split('\n')[0] : 'no NVIDIA GPU (nvidia-smi not found or failed)',
    node: process.version,
    dry: opts.dry,
    providers: providers.join(',') || 'none',
  };
  const scratch = mkdtempSync(join(tmpdir(), 'styled-vq-gpu-'));
  try {
    const results = [];
    for (const dir of opts.models) results.push(await checkModel(dir, opts, scratch, providers));
    mkdirSync(opts.out, { recursive: true });
    const md = markdown(results, env, opts);
    writeFileSync(
      join(opts.out, 'gpu-check.json'),
      `${JSON.stringify({ env, options: opts, results, skipped }, null, 1)}\n`,
    );
    writeFileSync(join(opts.out, 'gpu-check.md'), md);
    process.stdout.write(md);
    log(`wrote ${join(opts.out, 'gpu-check.json')} and gpu-check.md`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`gpu-check: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
