/**
 * Streaming benchmark (issue 10 point 5): concat, and decode's record reader, on a
 * generated ImageNet-size token file (1,281,167 records by default), in fresh processes,
 * with peak RSS and records/s. Run: `npm run bench:streaming [-- --records N]`.
 * Writes bench/streaming-results.json and prints the table rows for bench/streaming.md.
 *
 *   concat  styled-vq concat records.jsonl codes.npy -o combined.jsonl --match order
 *           (codes.npy: uint16 [N, 256], LlamaGen-sized rows, read a row at a time)
 *   decode  the reader decode runs over its input (both passes use it): every record
 *           parsed and checked against the model, memory flat; plus `decode` itself on the
 *           first 2,000 records for its images/s (decoding 1.3 M images is the model's cost,
 *           not the reader's).
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { npyHeader } from '../src/tokens/npy';
import { prng } from '../src/util/prng';

const ROOT = join(__dirname, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'styled-vq.js');
const MODEL = join(ROOT, 'test', 'fixtures', 'model-tiny');
const PRELOAD = join(ROOT, 'bench', 'usage-preload.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function writeInputs(dir: string, n: number): Promise<{ records: string; codes: string; small: string }> {
  const manifest = JSON.parse(readFileSync(join(MODEL, 'model.json'), 'utf8'));
  const model = { name: manifest.name, fingerprint: manifest.fingerprint };
  const records = join(dir, 'records.jsonl');
  const codes = join(dir, 'codes.npy');
  const small = join(dir, 'records-2000.jsonl');
  if (existsSync(records) && existsSync(codes) && existsSync(small)) return { records, codes, small };
  const rand = prng(1);
  const out = createWriteStream(records);
  const head: string[] = [];
  let buf = '';
  for (let i = 0; i < n; i++) {
    const tokens = Array.from({ length: 36 }, () => Math.floor(rand() * 1024));
    const line = `${JSON.stringify({
      format: 'styled-vq-tokens',
      version: 1,
      model,
      source: `train/n${String(i % 1000).padStart(8, '0')}/img_${i}.JPEG`,
      original_size: [500, 375],
      tokens,
    })}\n`;
    if (i < 2000) head.push(line);
    buf += line;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  writeFileSync(small, head.join(''));
  const perRow = 256;
  const npy = createWriteStream(codes);
  npy.write(npyHeader('uint16', [n, perRow]));
  const rows = 4096;
  for (let i = 0; i < n; i += rows) {
    const m = Math.min(rows, n - i);
    const block = new Uint16Array(m * perRow);
    for (let j = 0; j < block.length; j++) block[j] = Math.floor(rand() * 16384);
    if (!npy.write(Buffer.from(block.buffer))) await once(npy, 'drain');
  }
  npy.end();
  await once(npy, 'finish');
  return { records, codes, small };
}

interface Row {
  what: string;
  command: string;
  records: number;
  seconds: number;
  records_per_s: number;
  /** CPU seconds (user + system): what the run costs when the machine is shared. */
  cpu_s: number;
  records_per_cpu_s: number;
  peak_rss_mb: number;
}

function measure(what: string, args: string[], records: number, shown: string): Row {
  const rssFile = join(ROOT, 'bench', 'out', 'streaming', `${what}.usage.json`);
  rmSync(rssFile, { force: true });
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--require', PRELOAD, ...args], {
    cwd: ROOT,
    env: { ...process.env, STYLED_VQ_BENCH_USAGE: rssFile },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  const usage = JSON.parse(readFileSync(rssFile, 'utf8')) as { max_rss_mb: number; user_s: number; system_s: number };
  const cpu = usage.user_s + usage.system_s;
  return {
    what,
    command: shown,
    records,
    seconds: Number(seconds.toFixed(2)),
    records_per_s: Math.round(records / seconds),
    cpu_s: Number(cpu.toFixed(2)),
    records_per_cpu_s: Math.round(records / cpu),
    peak_rss_mb: Math.round(usage.max_rss_mb),
  };
}

async function main(): Promise<void> {
  const n = Number(arg('records', '1281167'));
  const dir = join(ROOT, 'bench', 'out', 'streaming');
  mkdirSync(dir, { recursive: true });
  const loadAtStart = require('node:os').loadavg() as number[];
  const t0 = Date.now();
  const { records, codes, small } = await writeInputs(dir, n);
  console.log(
    `inputs: ${records} (${(statSync(records).size / 1e6).toFixed(0)} MB), ${codes} (${(statSync(codes).size / 1e6).toFixed(0)} MB) in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  const M = ['--model', MODEL, '--device', 'cpu'];
  const combined = join(dir, 'combined.jsonl');
  const rows: Row[] = [];
  rows.push(
    measure(
      'concat',
      [BIN, 'concat', records, codes, '-o', combined, '--match', 'order', '--overwrite', '-q', ...M],
      n,
      `styled-vq concat records.jsonl codes.npy -o combined.jsonl --match order  (${n} records, codes uint16 [N,256])`,
    ),
  );
  const reader = join(__dirname, 'streaming-reader.js');
  rows.push(
    measure(
      'decode-reader',
      [reader, records, MODEL],
      n,
      `decode's record reader over records.jsonl: parse + check every record (bench/streaming-reader.ts)`,
    ),
  );
  const outDir = join(dir, 'decoded');
  rmSync(outDir, { recursive: true, force: true });
  rows.push(
    measure(
      'decode-2000',
      [BIN, 'decode', small, '-o', join(outDir, 'img.png'), '-q', ...M],
      2000,
      'styled-vq decode records-2000.jsonl -o decoded/img.png  (fixture model, 64 px)',
    ),
  );
  rmSync(outDir, { recursive: true, force: true });
  const os = require('node:os') as typeof import('node:os');
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    load_average_at_end: os.loadavg(),
    records: n,
    rows,
  };
  writeFileSync(join(ROOT, 'bench', 'streaming-results.json'), `${JSON.stringify(result, null, 2)}\n`);
  const lines = [
    '# Streaming: concat and decode on an ImageNet-size token file',
    '',
    `Generated by \`npm run bench:streaming\` (bench/streaming.ts), ${result.date}; Node ${process.version}, ${result.cpus} cores.`,
    `Load average at the start: ${loadAtStart.map((x) => x.toFixed(2)).join(', ')}; at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')}`,
    '(the machine is shared: wall-clock rates depend on it; records per CPU second do much less).',
    `Inputs: ${n} token records (JSONL, ${(statSync(records).size / 1e6).toFixed(0)} MB) and their external codes (.npy uint16 [N, 256], ${(statSync(codes).size / 1e6).toFixed(0)} MB).`,
    'Every row is a fresh process; peak RSS and CPU time from process.resourceUsage() at exit (bench/usage-preload.js).',
    '',
    '| what | command | records | wall s | records/s | CPU s | records/CPU s | peak RSS (MB) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.what} | \`${r.command}\` | ${r.records} | ${r.seconds} | ${r.records_per_s} | ${r.cpu_s} | ${r.records_per_cpu_s} | ${r.peak_rss_mb} |`,
    ),
    '',
  ];
  writeFileSync(join(ROOT, 'bench', 'streaming.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
