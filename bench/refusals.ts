/**
 * Refusal benchmark (issue 15 leftovers): how long and how much memory it takes to say no.
 * The unit tests check these refusals by behaviour (refused from the header, a memory bound,
 * no inference session); the time they take is measured here, never asserted there.
 * Run: `npm run bench:refusals [-- --model DIR --runs N]`. Every run is a fresh CLI
 * process; wall time, CPU time and peak RSS come from process.resourceUsage() at exit
 * (bench/usage-preload.js). Writes bench/refusals-results.json and bench/refusals.md.
 *
 *   pixel-limit   encode of a 30000x30000 PNG holding 4 rows (pixel limit, from the header)
 *   webp-38       encode of the audit's 38-byte 16383x16383 WebP (decoded-bytes cap)
 *   tiff-wide     encode of a 4,000,000x1 TIFF (aspect ratio of the upscale, from the header)
 *   done-rerun    batch --resume on a finished output (done marker: no session, no image)
 *   encode        encode of examples/pier.jpg: a normal cold start, for comparison
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { defaultModelDir } from '../src/model/resolve';

const ROOT = join(__dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'styled-vq.js');
const PRELOAD = join(ROOT, 'bench', 'usage-preload.js');
const OUT = join(ROOT, 'bench', 'out', 'refusals');

/** The audit's file: a lossless WebP, 16383 x 16383 of one colour, in 38 bytes (test/image-bombs.test.ts). */
const WEBP_BOMB = Buffer.from('524946461e000000574542505650384c110000002ffebfff0f0750b22257a6ff8188e87f0000', 'hex');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function pngChunk(type: string, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([len, typed, crc]);
}

/** A PNG header claiming width x height RGB, with 4 rows of data. */
function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc((width * 3 + 1) * 4))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

interface Run {
  code: number | null;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  stderr: string;
}

function runOnce(args: string[]): Run {
  const usageFile = join(OUT, 'usage.json');
  rmSync(usageFile, { force: true });
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--require', PRELOAD, BIN, ...args], {
    cwd: OUT,
    env: { ...process.env, STYLED_VQ_BENCH_USAGE: usageFile },
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const u = JSON.parse(readFileSync(usageFile, 'utf8')) as { max_rss_mb: number; user_s: number; system_s: number };
  return { code: r.status, wall_s: wall, cpu_s: u.user_s + u.system_s, peak_rss_mb: u.max_rss_mb, stderr: r.stderr };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  what: string;
  command: string;
  exit: number | null;
  runs: number;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  says: string;
}

/** How an argument is shown: the model as MODEL (named above the table), files relative to where they are. */
function shown(a: string, model: string): string {
  if (a === model) return 'MODEL';
  if (a.startsWith(`${OUT}/`)) return relative(OUT, a);
  return a.startsWith(`${ROOT}/`) ? relative(ROOT, a) : a;
}

function measure(what: string, args: string[], runs: number, expectExit: number, model: string): Row {
  const results = Array.from({ length: runs }, () => runOnce(args));
  const bad = results.find((r) => r.code !== expectExit);
  if (bad) throw new Error(`${what}: exit ${bad.code}, expected ${expectExit}: ${bad.stderr.trim()}`);
  const says = results[0].stderr.trim().split('\n').pop() ?? '';
  return {
    what,
    command: `styled-vq ${args.map((a) => shown(a, model)).join(' ')}`,
    exit: results[0].code,
    runs,
    wall_s: Number(median(results.map((r) => r.wall_s)).toFixed(2)),
    cpu_s: Number(median(results.map((r) => r.cpu_s)).toFixed(2)),
    peak_rss_mb: Math.round(Math.max(...results.map((r) => r.peak_rss_mb))),
    says: says.length > 160 ? `${says.slice(0, 157)}...` : says,
  };
}

async function main(): Promise<void> {
  const model = arg('model', defaultModelDir());
  const runs = Number(arg('runs', '3'));
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'images'), { recursive: true });
  writeFileSync(join(OUT, 'bomb-30000.png'), bombPng(30000, 30000));
  writeFileSync(join(OUT, 'bomb-16383.webp'), WEBP_BOMB);
  await sharp(Buffer.alloc(4_000_000 * 3, 128), { raw: { width: 4_000_000, height: 1, channels: 3 } })
    .tiff({ compression: 'deflate' })
    .toFile(join(OUT, 'wide-4000000x1.tiff'));
  for (const f of ['pier.jpg', 'glacier.jpg']) cpSync(join(ROOT, 'examples', f), join(OUT, 'images', f));
  const M = ['--model', model, '--device', 'cpu'];
  const done = ['batch', 'images', '-o', 'done.jsonl', '-q', ...M];
  const first = runOnce(done); // the finished output the rerun finds (not measured)
  if (first.code !== 0) throw new Error(`batch: ${first.stderr}`);

  const loadAtStart = loadavg();
  const rows = [
    measure('pixel-limit', ['encode', 'bomb-30000.png', '-o', 'x.json', ...M], runs, 2, model),
    measure('webp-38', ['encode', 'bomb-16383.webp', '-o', 'x.json', ...M], runs, 2, model),
    measure('tiff-wide', ['encode', 'wide-4000000x1.tiff', '-o', 'x.json', ...M], runs, 2, model),
    measure('done-rerun', [...done.filter((a) => a !== '-q'), '--resume'], runs, 0, model),
    measure(
      'encode',
      ['encode', join(ROOT, 'examples', 'pier.jpg'), '-o', 'pier.json', '--overwrite', ...M],
      runs,
      0,
      model,
    ),
  ];
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    model: relative(ROOT, model),
    load_average: { start: loadAtStart, end: loadavg() },
    rows,
  };
  writeFileSync(join(ROOT, 'bench', 'refusals-results.json'), `${JSON.stringify(result, null, 2)}\n`);
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  const lines = [
    '# Refusals: how long and how much memory saying no takes',
    '',
    `Generated by \`npm run bench:refusals\` (bench/refusals.ts), ${result.date}; Node ${process.version}, ${result.cpus} cores, model ${result.model}.`,
    `Load average at the start: ${fmt(loadAtStart)}; at the end: ${fmt(loadavg())} (the machine is shared: wall times depend on it).`,
    `Every row is a fresh process, ${runs} runs: median wall and CPU seconds, the largest peak RSS (bench/usage-preload.js).`,
    'The unit tests check the behaviour (refused from the header, memory bounds, no session); the times are only here.',
    '',
    '| what | command | exit | wall s | CPU s | peak RSS (MB) | last stderr line |',
    '|---|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.what} | \`${r.command}\` | ${r.exit} | ${r.wall_s} | ${r.cpu_s} | ${r.peak_rss_mb} | ${r.says.replace(/\|/g, '\\|')} |`,
    ),
    '',
  ];
  writeFileSync(join(ROOT, 'bench', 'refusals.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
