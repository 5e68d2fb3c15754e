/**
 * Variants of the ONNX Runtime side, measured in the same run as the main table: session
 * options (arena, memory pattern, optimization level, threads) and int8 graphs made by
 * bench/quantize.py, with their quality cost (token agreement with float32 and PSNR).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../src/util/package-root';
import { guarded, ortJob, runJson } from './child';
import type { Options } from './main';

const ROOT = packageRoot();
const OUT = join(ROOT, 'bench', 'out');

interface Variant {
  label: string;
  sessionOptions?: Record<string, unknown>;
  threads?: number;
  int8?: boolean;
}

/** training/data's validation crops at the model's size, when this machine has them. */
function validationImages(size: number): string | null {
  const root = process.env.STYLED_VQ_DATA || '/work/cache/styled-vq';
  const p = join(root, `crops${size}`, 'val.npy');
  return existsSync(p) ? p : null;
}

async function int8Files(opts: Options, dir: string, manifest: any, log: (m: string) => void) {
  const qdir = join(OUT, 'variants', `${manifest.name}-${manifest.fingerprint}`);
  mkdirSync(qdir, { recursive: true });
  const files: Record<string, string> = {};
  for (const graph of ['encoder', 'decoder']) {
    const dst = join(qdir, `${graph}.int8.onnx`);
    if (!existsSync(dst)) {
      const r = await runJson(
        opts.python,
        [join(ROOT, 'bench', 'quantize.py'), join(dir, manifest.files[graph].path), dst, '--experts'],
        900,
      );
      if (r.error) throw new Error(`quantize.py ${graph}: ${r.error}`);
      log(`  int8 ${graph}: ${r.quantized_matmuls} MatMuls, ${r.bytes_before} -> ${r.bytes_after} bytes`);
    }
    files[graph] = dst;
  }
  return files;
}

const n = (x: unknown, d = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—');

export async function runVariants(
  opts: Options,
  dir: string,
  log: (m: string) => void,
  extraModels: string[] = [],
): Promise<Record<string, unknown>> {
  const rel = (p: string) => relative(ROOT, p);
  const out: Record<string, any> = { models: [] };
  const md: string[] = [];
  for (const [k, modelDir] of [dir, ...extraModels].entries()) {
    const manifest = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8'));
    log(`variants: ${manifest.name}`);
    let int8: Record<string, string> | undefined;
    let int8Error: string | undefined;
    try {
      int8 = await int8Files(opts, modelDir, manifest, log);
    } catch (err) {
      int8Error = (err as Error).message;
    }
    // Session options only on the first (default) model; int8 on all.
    const variants: Variant[] =
      k === 0
        ? [
            { label: 'library settings' },
            { label: 'CPU memory arena off', sessionOptions: { enableCpuMemArena: false } },
            { label: 'memory pattern off', sessionOptions: { enableMemPattern: false } },
            { label: 'graph optimization "extended"', sessionOptions: { graphOptimizationLevel: 'extended' } },
            { label: 'graph optimization "basic"', sessionOptions: { graphOptimizationLevel: 'basic' } },
            ...(opts.threads > 1 ? [{ label: '1 thread', threads: 1 }] : []),
            { label: 'int8 MatMuls (bench/quantize.py)', int8: true },
          ]
        : [{ label: 'library settings' }, { label: 'int8 MatMuls (bench/quantize.py)', int8: true }];
    const batches = opts.quick ? [8] : [1, 32];
    const rows: Record<string, any>[] = [];
    for (const graph of ['encoder', 'decoder'] as const) {
      for (const batch of batches) {
        let base: number | undefined;
        for (const v of variants) {
          if (v.int8 && !int8) {
            rows.push({ graph, batch, variant: v.label, error: int8Error });
            continue;
          }
          const r = await guarded(
            () =>
              ortJob(
                {
                  mode: 'run',
                  model: modelDir,
                  graph,
                  batch,
                  threads: v.threads ?? opts.threads,
                  minTime: opts.minTime,
                  minIters: 3,
                  maxIters: 10000,
                  warmup: 1,
                  ...(v.int8 ? { file: int8![graph] } : {}),
                  ...(v.sessionOptions ? { sessionOptions: v.sessionOptions } : {}),
                },
                900,
              ),
            { log },
          );
          if (base === undefined) base = r.images_per_s;
          const row = {
            graph,
            batch,
            variant: v.label,
            others_cpu_share: r.others_cpu_share,
            disturbed: r.disturbed,
            images_per_s: r.images_per_s ?? null,
            vs_library_settings: r.images_per_s && base ? Math.round((r.images_per_s / base) * 1000) / 1000 : null,
            max_rss_mb: r.max_rss_mb ?? null,
            load_s: r.load_s ?? null,
            error: r.error,
          };
          log(`  ${graph} b${batch} ${v.label}: ${n(r.images_per_s)} img/s${r.error ? ` (${r.error})` : ''}`);
          rows.push(row);
        }
      }
    }
    let quality: Record<string, any> = { skipped: 'no int8 graphs' };
    if (int8) {
      const images = validationImages(manifest.config.image_size);
      quality = await ortJob(
        {
          mode: 'quality',
          model: modelDir,
          encoder: int8.encoder,
          decoder: int8.decoder,
          images,
          limit: opts.quick ? 256 : 2000,
          threads: opts.threads,
        },
        900,
      );
      log(`  int8 quality: ${JSON.stringify(quality)}`);
    }
    out.models.push({
      name: manifest.name,
      dir: rel(modelDir),
      rows,
      int8_quality: quality,
      int8_files: int8 && Object.fromEntries(Object.entries(int8).map(([g, f]) => [g, rel(f)])),
    });

    md.push(`### ${manifest.name}`, '');
    md.push(
      '| graph | batch | variant | ORT img/s | vs library settings | peak RSS MB | load s |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const r of rows)
      md.push(
        `| ${r.graph} | ${r.batch} | ${r.variant} | ${r.error ? `error: ${String(r.error).slice(0, 80)}` : n(r.images_per_s)} | ${n(r.vs_library_settings, 2)}x | ${n(r.max_rss_mb, 0)} | ${n(r.load_s, 2)} |`,
      );
    md.push('');
    if (!quality.error && !quality.skipped) {
      const p = quality.psnr_db;
      md.push(
        `int8 quality on ${quality.images}: token agreement with float32 **${(quality.token_agreement * 100).toFixed(2)}%** ` +
          `(images with all ${manifest.config.num_tokens} tokens equal: ${(quality.images_with_all_tokens_equal * 100).toFixed(1)}%; max latent difference ${n(quality.latents_max_abs_diff, 4)}). ` +
          `Reconstruction PSNR: float32 ${n(p.fp32, 2)} dB; int8 encoder ${n(p.encoder_variant, 2)} dB; int8 decoder ${n(p.decoder_variant, 2)} dB; both ${n(p.both_variants, 2)} dB ` +
          `(int8 decoder against the float32 decoder's output: ${n(p.decoder_variant_vs_fp32_decoder, 1)} dB).`,
        '',
      );
    } else md.push(`int8 quality: ${quality.error ?? quality.skipped}`, '');
  }
  out.markdown = md.join('\n');
  return out;
}
