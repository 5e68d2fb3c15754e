import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { deflateSync, crc32 } from 'node:zlib';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import { ROOT } from './fixtures';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const BIN = join(ROOT, 'bin', 'styled-vq.js');

/** Run the real CLI (the built dist/, as users do) in a child process. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): CliResult {
  const env = { ...process.env, ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The same CLI run inside the test process, for cases about arguments and messages rather
 * than about the process (exit status, signals, pipes): no Node start-up, no module
 * loading, so a usage check costs milliseconds instead of a second. stdout and stderr
 * are captured; the exit code is the one bin/ would set.
 */
export async function runCliInProcess(args: string[], options: { cwd?: string } = {}): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof process.stdout.write;
  const [stdoutWrite, stderrWrite, dir] = [process.stdout.write, process.stderr.write, process.cwd()];
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  process.chdir(options.cwd ?? ROOT);
  try {
    const code = await main(args, { catchEscaped: false });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    process.chdir(dir);
  }
}

/** stderr without the Vulkan loader's own warning (printed by Dawn when WebGPU is tried). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() && !/Couldn't load Vulkan|BackendVk\.cpp/.test(l));
}

/** Width and height from a PNG's IHDR. */
export function pngSize(file: string): [number, number] {
  const b = readFileSync(file);
  expect(b.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function png(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A real width x height RGB PNG (a colour gradient), written without any image library. */
export function pngOf(width: number, height: number): Buffer {
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3); // filter byte 0, then pixels
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = (x * 255) / Math.max(1, width - 1);
      raw[row + 2 + x * 3] = (y * 255) / Math.max(1, height - 1);
      raw[row + 3 + x * 3] = ((x + y) * 7) & 255;
    }
  }
  return png(width, height, deflateSync(raw));
}

/**
 * A valid PNG header claiming width x height (8-bit RGB) with a token of image data: a
 * decompression bomb as far as any decoder that trusts the header is concerned.
 */
export function pngClaiming(width: number, height: number): Buffer {
  return png(width, height, deflateSync(Buffer.alloc(1024)));
}

/** Files in a directory, to show that nothing (not even a temp file) was left behind. */
export const listDir = (dir: string) => readdirSync(dir).sort();
