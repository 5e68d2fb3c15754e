/**
 * Where ONNX Runtime spends its time on one graph: runs it with profiling on, writes the
 * optimized graph (`optimizedModelFilePath`) and prints the time per operator type of the
 * optimized graph.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json
 *   node dist/bench/bench/profile.js --model models/NAME --graph decoder --batch 8 [--threads 2] [--runs 20]
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import yargs from 'yargs';

async function main() {
  const a = await yargs(process.argv.slice(2))
    .options({
      model: { type: 'string', demandOption: true },
      graph: { choices: ['encoder', 'decoder'] as const, demandOption: true },
      file: { type: 'string', describe: 'graph file instead of the package one' },
      batch: { type: 'number', default: 8 },
      threads: { type: 'number', default: 1 },
      runs: { type: 'number', default: 20 },
      out: { type: 'string', default: 'bench/out/profile' },
      level: { choices: ['disabled', 'basic', 'extended', 'all'] as const, default: 'all' as const },
    })
    .strict()
    .parse();
  const manifest = JSON.parse(readFileSync(join(a.model, 'model.json'), 'utf8'));
  const c = manifest.config;
  const file = a.file ?? join(a.model, manifest.files[a.graph].path);
  mkdirSync(a.out, { recursive: true });
  const prefix = join(a.out, `${manifest.name}-${a.graph}-b${a.batch}`);
  const s = await ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: a.level,
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableProfiling: true,
    profileFilePrefix: prefix,
    optimizedModelFilePath: `${prefix}.optimized.onnx`,
    logSeverityLevel: 3,
  });
  const dims = a.graph === 'encoder' ? [a.batch, 3, c.image_size, c.image_size] : [a.batch, c.num_tokens, c.latent_dim];
  const size = dims.reduce((x, y) => x * y, 1);
  const data = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 12.9898) * 0.9);
  const feeds = { [a.graph === 'encoder' ? 'image' : 'latents']: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < a.runs; i++) await s.run(feeds);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9 / a.runs;
  s.endProfiling();
  await s.release();
  // ORT names the file <prefix>_<date>.json: take the newest.
  const dir = dirname(prefix);
  const profFile = readdirSync(dir)
    .filter((f) => f.startsWith(`${basename(prefix)}_`) && f.endsWith('.json'))
    .map((f) => join(dir, f))
    .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
  const profPath = join(a.out, `${manifest.name}-${a.graph}-b${a.batch}.profile.json`);
  renameSync(profFile, profPath);
  const events: { cat: string; name: string; dur: number; args?: { op_name?: string } }[] = JSON.parse(
    readFileSync(profPath, 'utf8'),
  );
  const byOp = new Map<string, { us: number; count: number }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const v = byOp.get(op) ?? { us: 0, count: 0 };
    v.us += e.dur;
    v.count += 1;
    byOp.set(op, v);
    total += e.dur;
  }
  // the 3 warm-up runs are profiled too
  const runs = a.runs + 3;
  console.log(
    `${file} batch ${a.batch}, ${a.threads} threads: ${(wall * 1e3).toFixed(2)} ms/run wall, ${(total / runs / 1e3).toFixed(2)} ms/run in kernels`,
  );
  const rows = [...byOp.entries()].sort((x, y) => y[1].us - x[1].us);
  for (const [op, v] of rows) {
    console.log(
      `${op.padEnd(28)} ${(v.us / runs / 1e3).toFixed(3).padStart(9)} ms ${((v.us / total) * 100).toFixed(1).padStart(5)}%  ${String(v.count / runs).padStart(5)} nodes`,
    );
  }
  console.log(`optimized graph: ${prefix}.optimized.onnx; profile: ${profPath}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
