/**
 * The seed-size check (issues 2 and 6; not part of `npm run bench`: it needs ~10-20 GB of
 * RAM, ~10 GB of disk and several minutes). Exports the research-size model with random
 * weights, then measures: export time and peak memory, file sizes, ONNX Runtime load time,
 * peak RSS and batch-1 encode latency, against PyTorch's batch-1 encode on the same weights
 * (rebuilt from the same seed: reading 9.5 GB of initializers back would need the memory
 * twice).
 *
 *   npm run build && npx tsc -p bench/tsconfig.json
 *   node dist/bench/bench/seed-size.js [--out /work/cache/seed-pkg] [--reuse] [--threads 2]
 *
 * Never commit the package (~10 GB).
 */
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { packageRoot } from '../src/util/package-root';
import { ortJob, runChild, runJson } from './child';
import { sampleLoad, trainingRunning } from './machine';

const ROOT = packageRoot();
const log = (m: string) => process.stderr.write(`[seed-size ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const gib = (b: number) => Math.round((b / 1024 ** 3) * 100) / 100;

/** /usr/bin/time -v's peak RSS, in MB. */
function timeMaxRss(stderr: string): number | null {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  return m ? Number(m[1]) / 1024 : null;
}

async function main() {
  const a = await yargs(process.argv.slice(2))
    .options({
      out: { type: 'string', default: '/work/cache/seed-pkg' },
      reuse: { type: 'boolean', default: false, describe: 'Keep an existing package instead of exporting again' },
      threads: { type: 'number', default: availableParallelism() },
      python: { type: 'string', default: process.env.STYLED_VQ_PYTHON || '/usr/bin/python3' },
      iters: { type: 'number', default: 3 },
      json: {
        type: 'string',
        default: join(ROOT, 'bench', 'seed-size.json'),
        describe: 'Where the figures go (npm run bench copies them into BENCHMARKS.md)',
      },
      torch: { type: 'boolean', default: true },
      preset: { type: 'string', default: 'seed', describe: 'Another preset, to try the script on something small' },
      'codebook-size': { type: 'number', default: 4096 },
    })
    .strict()
    .parse();
  const result: Record<string, any> = {
    date: new Date().toISOString(),
    preset: a.preset,
    threads: a.threads,
    memory_gib: gib(totalmem()),
    out: a.out,
  };
  const save = () => {
    mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
    writeFileSync(a.json, `${JSON.stringify(result, null, 2)}\n`);
  };
  result.command = `node dist/bench/bench/seed-size.js ${process.argv.slice(2).join(' ')}`.trim();
  result.machine_load_before = await sampleLoad();

  if (!(a.reuse && existsSync(join(a.out, 'model.json')))) {
    const args = [
      '-v',
      a.python,
      join(ROOT, 'training', 'export.py'),
      '--random',
      '--preset',
      a.preset,
      '--codebook-size',
      String(a['codebook-size']),
      '--out',
      a.out,
      '--name',
      `${a.preset}-random`,
      '--description',
      'random weights, for the size check only',
    ];
    log(`export: /usr/bin/time ${args.join(' ')} (free memory ${gib(freemem())} GiB)`);
    const r = await runChild('/usr/bin/time', args, { timeoutS: 3600 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    result.export = {
      command: `${a.python} training/export.py ${args.slice(3).join(' ')}`,
      exit: r.code,
      wall_s: Math.round(r.wallS),
      max_rss_mb: timeMaxRss(r.stderr),
      report: last.startsWith('{') ? JSON.parse(last) : null,
      stderr_tail: r.code === 0 ? undefined : r.stderr.trim().split('\n').slice(-15).join('\n'),
    };
    log(`export: ${JSON.stringify({ ...result.export, stderr_tail: undefined })}`);
    save();
    if (r.code !== 0) {
      log(`export failed:\n${result.export.stderr_tail}`);
      return;
    }
  } else result.export = { reused: true };

  result.files = Object.fromEntries(readdirSync(a.out).map((f) => [f, statSync(join(a.out, f)).size]));
  log(`files: ${JSON.stringify(result.files)}`);

  log(`ONNX Runtime: load + batch-1 encode (${a.threads} threads; free memory ${gib(freemem())} GiB)`);
  result.onnxruntime = await ortJob(
    {
      mode: 'run',
      model: a.out,
      graph: 'encoder',
      batch: 1,
      threads: a.threads,
      minTime: 0,
      minIters: a.iters,
      maxIters: a.iters,
      warmup: 1,
    },
    3600,
  );
  log(`ORT: ${JSON.stringify(result.onnxruntime)}`);
  save();

  if (a.torch) {
    log(`PyTorch: build (same seed) + batch-1 encode (free memory ${gib(freemem())} GiB)`);
    result.pytorch = await runJson(
      a.python,
      [
        join(ROOT, 'training', 'bench_torch.py'),
        'run',
        '--random',
        a.preset,
        '--seed',
        '0',
        '--graph',
        'encoder',
        '--batch',
        '1',
        '--threads',
        String(a.threads),
        '--min-time',
        '0',
        '--min-iters',
        String(a.iters),
        '--max-iters',
        String(a.iters),
      ],
      3600,
    );
    log(`PyTorch: ${JSON.stringify(result.pytorch)}`);
    if (result.onnxruntime.median_s && result.pytorch.median_s)
      result.ort_vs_pytorch_ratio = result.pytorch.median_s / result.onnxruntime.median_s;
    save();
    // Same weights? PyTorch's latents for one image (rebuilt from the seed) against ORT's.
    const ref = join(ROOT, 'bench', 'out', `check-${a.preset}-size.json`);
    const py = await runJson(
      a.python,
      [
        join(ROOT, 'training', 'bench_torch.py'),
        'check',
        '--random',
        a.preset,
        '--seed',
        '0',
        '--graphs',
        'encoder',
        '--batch',
        '1',
        '--out',
        ref,
      ],
      3600,
    );
    result.weights_check = py.error
      ? py
      : await ortJob({ mode: 'check', model: a.out, file: ref, threads: a.threads }, 3600);
    log(`weights check: ${JSON.stringify(result.weights_check)}`);
  }
  result.training_job_running = trainingRunning().length > 0;
  save();
  log(`wrote ${a.json}`);
}

main().catch((err) => {
  process.stderr.write(`seed-size: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
