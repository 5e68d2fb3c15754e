/**
 * `npm run bench`: onnxruntime-node against PyTorch eager on the same weights, the same
 * inputs' shapes and the same thread count, on this machine, in one run. Writes
 * BENCHMARKS.md and bench/results.json (see BENCHMARKS.md for what each figure means).
 *
 *   npm run bench                      # full run (~5-10 min on 2 cores)
 *   npm run bench -- --quick           # a quick subset, written under bench/out/
 *   npm run bench -- --help
 *
 * Every measurement runs in a child process of its own, so that the peak RSS it reports
 * is its own: ONNX Runtime rows in `ort-worker.js`, PyTorch rows in
 * `training/bench_torch.py` (which rebuilds the PyTorch model from the package's ONNX
 * initializers, so both sides hold the same weights on a clean clone; a check proves it).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import yargs from 'yargs';
import { packageRoot } from '../src/util/package-root';
import { defaultModelDir } from '../src/model/resolve';
import { ortVersion } from '../src/runtime/onnx';
import { guarded, runChild, runJson, ortJob } from './child';
import { decoderFlops, encoderFlops } from './flops';
import { machineInfo, sampleLoad, trainingRunning, type LoadSample } from './machine';
import { renderMarkdown } from './report';
import { runVariants } from './variants';

const ROOT = packageRoot();
const OUT = join(ROOT, 'bench', 'out');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'model-tiny');
const NARROW = { preset: 'seed-narrow', seed: 0, codebook: 1024 };

export interface Options {
  quick: boolean;
  models: string[];
  batches: number[];
  threads: number;
  minTime: number;
  python: string;
  model?: string;
  coldRuns: number;
  variants: boolean;
  batchSection: boolean;
  md: string;
  json: string;
  torch: boolean;
}

function log(msg: string) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const rel = (p: string) => relative(ROOT, p) || '.';

async function python(opts: Options, args: string[], timeoutS = 900) {
  return runJson(opts.python, [join(ROOT, 'training', 'bench_torch.py'), ...args], timeoutS);
}

/** The shipped default model (src/model/resolve.ts), else the test fixture. */
function defaultModel(opts: Options): { dir: string; note?: string } {
  if (opts.model) return { dir: opts.model, note: 'given with --model' };
  try {
    return { dir: defaultModelDir() };
  } catch (err) {
    return {
      dir: FIXTURE,
      note: `no default model installed (${(err as Error).message.split(';')[0]}): the test fixture stands in`,
    };
  }
}

/** seed-narrow with random weights: exported once by training/export.py into bench/out/models. */
async function narrowModel(opts: Options): Promise<{ dir: string; note?: string; export?: Record<string, unknown> }> {
  const dir = join(OUT, 'models', `${NARROW.preset}-seed${NARROW.seed}`);
  if (existsSync(join(dir, 'model.json'))) return { dir, note: 'random weights (seed 0), exported by an earlier run' };
  mkdirSync(dir, { recursive: true });
  const args = [
    join(ROOT, 'training', 'export.py'),
    '--random',
    '--preset',
    NARROW.preset,
    '--codebook-size',
    String(NARROW.codebook),
    '--seed',
    String(NARROW.seed),
    '--out',
    dir,
    '--name',
    `${NARROW.preset}-random`,
    '--description',
    'random weights, for benchmarks only',
  ];
  log(`exporting ${NARROW.preset} (random weights): ${opts.python} ${args.map((a) => rel(a)).join(' ')}`);
  const r = await runChild(opts.python, args, { timeoutS: 900 });
  if (r.code !== 0)
    throw new Error(`export of ${NARROW.preset} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  return {
    dir,
    note: 'random weights (seed 0), exported by this run',
    export: { ...JSON.parse(last), wall_s: r.wallS },
  };
}

function round(x: number, d = 3): number {
  if (!Number.isFinite(x)) return x;
  const p = 10 ** d;
  return Math.round(x * p) / p;
}

async function gemmSection(opts: Options) {
  const size = 2048;
  log(`GEMM peak (float32 ${size}^3, ${opts.threads} threads)`);
  const minTime = opts.quick ? 1 : 3;
  const ort = await guarded(() => ortJob({ mode: 'gemm', size, threads: opts.threads, minTime }), { log });
  const torch = opts.torch
    ? await guarded(
        () =>
          python(opts, [
            'gemm',
            '--threads',
            String(opts.threads),
            '--size',
            String(size),
            '--min-time',
            String(minTime),
          ]),
        { log },
      )
    : { error: 'skipped (--no-torch)' };
  const peaks = [ort.gflops, torch.gflops].filter((x) => typeof x === 'number');
  return {
    size,
    onnxruntime: ort,
    pytorch: torch,
    peak_gflops: peaks.length ? Math.max(...peaks) : null,
    note: 'median time of one C = A B, A and B float32 2048 x 2048 (17.2 GFLOP); peak = the faster of the two libraries',
  };
}

async function modelSection(
  opts: Options,
  key: string,
  spec: { dir: string; note?: string; export?: Record<string, unknown> },
  peak: number | null,
) {
  const manifest = JSON.parse(readFileSync(join(spec.dir, 'model.json'), 'utf8'));
  const cfg = manifest.config;
  const flops = {
    encoder_gflop_per_image: round(encoderFlops(cfg) / 1e9, 4),
    decoder_gflop_per_image: round(decoderFlops(cfg) / 1e9, 4),
  };
  log(`${key}: ${manifest.name} (${rel(spec.dir)})`);
  let check: Record<string, unknown> = { error: 'skipped (--no-torch)' };
  if (opts.torch) {
    const file = join(OUT, `check-${key}.json`);
    mkdirSync(OUT, { recursive: true });
    const py = await python(opts, ['check', '--model', spec.dir, '--out', file]);
    check = py.error ? py : await ortJob({ mode: 'check', model: spec.dir, file, threads: opts.threads });
    log(`  weights check (same input through both): ${JSON.stringify(check)}`);
  }
  const rows = [];
  for (const graph of ['encoder', 'decoder'] as const) {
    for (const batch of opts.batches) {
      const common = { batch, threads: opts.threads };
      const ort = await guarded(
        () =>
          ortJob(
            {
              mode: 'run',
              model: spec.dir,
              graph,
              ...common,
              minTime: opts.minTime,
              minIters: 3,
              maxIters: 10000,
              warmup: 1,
            },
            900,
          ),
        { log },
      );
      const torch = opts.torch
        ? await guarded(
            () =>
              python(opts, [
                'run',
                '--model',
                spec.dir,
                '--graph',
                graph,
                '--batch',
                String(batch),
                '--threads',
                String(opts.threads),
                '--min-time',
                String(opts.minTime),
              ]),
            { log },
          )
        : { error: 'skipped (--no-torch)' };
      const ratio = ort.images_per_s && torch.images_per_s ? round(ort.images_per_s / torch.images_per_s) : null;
      const row: Record<string, unknown> = {
        graph,
        batch,
        onnxruntime: ort,
        pytorch: torch,
        ort_vs_pytorch_ratio: ratio,
      };
      if (graph === 'encoder') {
        const gf = encoderFlops(cfg) / 1e9;
        row.ort_gflops = ort.images_per_s ? round(gf * ort.images_per_s, 1) : null;
        row.pytorch_gflops = torch.images_per_s ? round(gf * torch.images_per_s, 1) : null;
        row.ort_fraction_of_gemm_peak = ort.images_per_s && peak ? round((gf * ort.images_per_s) / peak) : null;
        row.pytorch_fraction_of_gemm_peak = torch.images_per_s && peak ? round((gf * torch.images_per_s) / peak) : null;
      } else {
        const gf = decoderFlops(cfg) / 1e9;
        row.ort_gflops = ort.images_per_s ? round(gf * ort.images_per_s, 1) : null;
        row.pytorch_gflops = torch.images_per_s ? round(gf * torch.images_per_s, 1) : null;
      }
      log(
        `  ${graph} batch ${batch}: ORT ${fmt(ort.images_per_s)} img/s, PyTorch ${fmt(torch.images_per_s)} img/s, ratio ${ratio ?? '-'}`,
      );
      rows.push(row);
    }
  }
  return {
    key,
    name: manifest.name,
    dir: rel(spec.dir),
    note: spec.note,
    export: spec.export,
    config: cfg,
    parameters: manifest.parameters,
    flops,
    weights_check: check,
    rows,
  };
}

const fmt = (x: unknown) => (typeof x === 'number' ? x.toFixed(1) : String(x ?? '-'));

async function coldStart(opts: Options, model: { dir: string; note?: string }) {
  const image = join(ROOT, 'examples', 'pier.jpg');
  const out = join(OUT, 'cold', 'pier.json');
  const rssFile = join(OUT, 'cold', 'rss.json');
  mkdirSync(join(OUT, 'cold'), { recursive: true });
  const bin = join(ROOT, 'bin', 'styled-vq.js');
  const modelArgs = model.dir === FIXTURE || model.note ? ['--model', rel(model.dir)] : [];
  const variants = [
    { label: 'default (--device auto)', extra: [] as string[] },
    { label: '--device cpu', extra: ['--device', 'cpu'] },
  ];
  const results = [];
  for (const v of variants) {
    const args = ['encode', rel(image), '-o', rel(out), '-q', ...modelArgs, ...v.extra];
    const runs = [];
    for (let i = 0; i < opts.coldRuns; i++) {
      rmSync(out, { force: true });
      rmSync(rssFile, { force: true });
      const r = await runChild(process.execPath, ['--require', join(ROOT, 'bench', 'rss-preload.js'), bin, ...args], {
        cwd: ROOT,
        env: { ...process.env, STYLED_VQ_BENCH_RSS: rssFile },
        timeoutS: 120,
      });
      if (r.code !== 0) {
        runs.push({ error: `exit ${r.code}: ${r.stderr.trim().split('\n').pop()}` });
        continue;
      }
      const rss = existsSync(rssFile) ? JSON.parse(readFileSync(rssFile, 'utf8')).max_rss_mb : null;
      runs.push({ wall_s: round(r.wallS), max_rss_mb: rss === null ? null : round(rss, 1) });
    }
    const walls = runs
      .map((r) => (r as { wall_s?: number }).wall_s)
      .filter((x): x is number => typeof x === 'number')
      .sort((a, b) => a - b);
    const entry = {
      label: v.label,
      command: `styled-vq ${args.join(' ')}`,
      runs,
      median_wall_s: walls.length ? walls[walls.length >> 1] : null,
    };
    log(`  cold start ${v.label}: ${JSON.stringify(runs)}`);
    results.push(entry);
  }
  return { image: rel(image), model: rel(model.dir), results };
}

/** bench/batch (another engineer's): exports runBatchBench(opts) returning JSON figures. */
async function batchSection(opts: Options, model: { dir: string }) {
  let mod: { runBatchBench?: (o: object) => Promise<unknown> | unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    mod = require(join(__dirname, 'batch'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && /[\\/]batch['"]?/.test(e.message.split('\n')[0]))
      return { skipped: 'bench/batch is not there yet' };
    return { error: e.message };
  }
  if (typeof mod.runBatchBench !== 'function') return { error: 'bench/batch does not export runBatchBench' };
  log('batch (bench/batch runBatchBench)');
  try {
    return await mod.runBatchBench({
      quick: opts.quick,
      threads: opts.threads,
      model: model.dir,
      outDir: join(OUT, 'batch'),
      log: (l: string) => log(`  batch: ${l}`),
    });
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

async function pythonVersions(opts: Options) {
  const v = await python(opts, ['versions'], 120);
  return v;
}

export async function main(argv: string[]): Promise<number> {
  const a = await yargs(argv)
    .scriptName('npm run bench --')
    .usage(
      '$0 [options]\n\nonnxruntime-node vs PyTorch eager on the same weights; writes BENCHMARKS.md and bench/results.json.',
    )
    .options({
      quick: {
        type: 'boolean',
        default: false,
        describe:
          'Quick subset: default model only, batches 1 and 8, short timings; writes under bench/out/ unless --md/--json say otherwise',
      },
      models: {
        type: 'string',
        describe: 'Comma-separated: default,seed-narrow',
        defaultDescription: 'both (quick: default)',
      },
      batches: { type: 'string', describe: 'Comma-separated batch sizes', defaultDescription: '1,8,32 (quick: 1,8)' },
      threads: { type: 'number', describe: 'Threads for both libraries', defaultDescription: 'all cores' },
      'min-time': {
        type: 'number',
        describe: 'Seconds each row keeps timing (at least 3 runs after 1 warm-up)',
        defaultDescription: '2 (quick: 0.5)',
      },
      python: {
        type: 'string',
        default: process.env.STYLED_VQ_PYTHON || '/usr/bin/python3',
        describe: 'Python with torch + onnx ($STYLED_VQ_PYTHON)',
      },
      model: { type: 'string', describe: 'Package to use as "default" instead of the shipped one' },
      'cold-runs': {
        type: 'number',
        describe: 'Fresh processes per cold-start variant',
        defaultDescription: '3 (quick: 1)',
      },
      variants: {
        type: 'boolean',
        describe: 'Also measure session-option and int8 variants',
        defaultDescription: 'on (quick: off)',
      },
      batch: { type: 'boolean', default: true, describe: 'Run the bench/batch section when it exists' },
      torch: { type: 'boolean', default: true, describe: 'Run the PyTorch side (--no-torch: ONNX Runtime only)' },
      md: {
        type: 'string',
        describe: 'Markdown output',
        defaultDescription: 'BENCHMARKS.md (quick: bench/out/BENCHMARKS.md)',
      },
      json: {
        type: 'string',
        describe: 'JSON output',
        defaultDescription: 'bench/results.json (quick: bench/out/results.json)',
      },
      'render-only': {
        type: 'boolean',
        default: false,
        describe: 'Only rewrite the markdown from the JSON (after editing bench/notes.md)',
      },
    })
    .example('$0', 'the full run that produced BENCHMARKS.md')
    .example('$0 --quick', 'a ~1 minute smoke run')
    .example('$0 --models seed-narrow --batches 1 --no-variants', 'one model, one batch size')
    .strict()
    .help()
    .parse();

  const quick = a.quick;
  const opts: Options = {
    quick,
    models: (a.models ?? (quick ? 'default' : 'default,seed-narrow'))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    batches: (a.batches ?? (quick ? '1,8' : '1,8,32')).split(',').map(Number),
    threads: a.threads ?? (await import('node:os')).availableParallelism(),
    minTime: a['min-time'] ?? (quick ? 0.5 : 2),
    python: a.python,
    model: a.model,
    coldRuns: a['cold-runs'] ?? (quick ? 1 : 3),
    variants: a.variants ?? !quick,
    batchSection: a.batch,
    torch: a.torch,
    md: a.md ?? (quick ? join(OUT, 'BENCHMARKS.md') : join(ROOT, 'BENCHMARKS.md')),
    json: a.json ?? (quick ? join(OUT, 'results.json') : join(ROOT, 'bench', 'results.json')),
  };
  if (a['render-only']) {
    writeFileSync(opts.md, renderMarkdown(JSON.parse(readFileSync(opts.json, 'utf8')), rel));
    log(`rewrote ${rel(opts.md)} from ${rel(opts.json)}`);
    return 0;
  }
  for (const m of opts.models)
    if (!['default', 'seed-narrow'].includes(m)) throw new Error(`--models: unknown "${m}" (default, seed-narrow)`);
  if (opts.batches.some((b) => !Number.isInteger(b) || b < 1)) throw new Error('--batches: positive integers');
  mkdirSync(OUT, { recursive: true });

  const t0 = Date.now();
  const command = ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ');
  log(`${command}: threads ${opts.threads}, batches ${opts.batches.join(',')}, models ${opts.models.join(',')}`);
  const training = trainingRunning();
  if (training.length) log(`WARNING: a training job is running; timings taken now are under load: ${training[0]}`);
  const loadBefore = await sampleLoad();
  log(`machine load before: ${JSON.stringify(loadBefore)}`);

  const versions = {
    node: process.version,
    onnxruntime_node: JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version,
    onnxruntime: ortVersion(),
    ...(opts.torch ? { python_side: await pythonVersions(opts) } : {}),
  };
  const gemm = await gemmSection(opts);
  log(`GEMM: ORT ${fmt(gemm.onnxruntime.gflops)} GFLOP/s, PyTorch ${fmt(gemm.pytorch.gflops)} GFLOP/s`);

  const def = defaultModel(opts);
  const models = [];
  const samples: LoadSample[] = [loadBefore];
  const extra: string[] = [];
  for (const key of opts.models) {
    const spec = key === 'default' ? def : await narrowModel(opts);
    if (key !== 'default') extra.push(spec.dir);
    models.push(await modelSection(opts, key, spec, gemm.peak_gflops));
  }
  log('cold start');
  const cold = await coldStart(opts, def);
  const variants = opts.variants
    ? await runVariants(opts, def.dir, log, extra)
    : { skipped: 'not run (--quick or --no-variants)' };
  const batch = opts.batchSection ? await batchSection(opts, def) : { skipped: 'not run (--no-batch)' };
  samples.push(await sampleLoad());
  const trainingAfter = trainingRunning();

  const results = {
    format: 'styled-vq-bench',
    version: 1,
    command,
    date: new Date().toISOString(),
    wall_s: Math.round((Date.now() - t0) / 1000),
    machine: machineInfo(),
    machine_state: {
      training_job_running: training.length > 0 || trainingAfter.length > 0,
      under_load: training.length > 0 || trainingAfter.length > 0 || (loadBefore.busy_fraction ?? 0) > 0.15,
      samples,
    },
    versions,
    threads: opts.threads,
    options: { batches: opts.batches, min_time_s: opts.minTime, quick: opts.quick },
    gemm,
    models,
    cold_start: cold,
    variants,
    batch,
    seed_size: existsSync(join(ROOT, 'bench', 'seed-size.json'))
      ? {
          note: 'separate run: node dist/bench/bench/seed-size.js (not part of npm run bench: ~12 GB RAM, ~10 GB disk)',
          ...JSON.parse(readFileSync(join(ROOT, 'bench', 'seed-size.json'), 'utf8')),
        }
      : { skipped: 'bench/seed-size.json not present (node dist/bench/bench/seed-size.js writes it)' },
  };
  writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(opts.md, renderMarkdown(results, rel));
  log(`wrote ${rel(opts.md)} and ${rel(opts.json)} in ${results.wall_s} s`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
