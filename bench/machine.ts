/** What the machine is and how busy it is: recorded with every run, since timings mean nothing without it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem, release, platform } from 'node:os';

export interface MachineInfo {
  cpu: string;
  logical_cpus: number;
  physical_cores: number | null;
  memory_gib: number;
  os: string;
  flags_of_note: string[];
}

export function machineInfo(): MachineInfo {
  let physical: number | null = null;
  const flags: string[] = [];
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const cores = new Set<string>();
    let phys = '';
    for (const line of text.split('\n')) {
      const [k, v] = line.split(':').map((s) => s?.trim());
      if (k === 'physical id') phys = v;
      if (k === 'core id') cores.add(`${phys}:${v}`);
      if (k === 'flags' && !flags.length) {
        const have = new Set(v.split(/\s+/));
        for (const f of [
          'avx2',
          'fma',
          'avx512f',
          'avx512_vnni',
          'avx512_bf16',
          'avx512_fp16',
          'amx_tile',
          'amx_int8',
          'amx_bf16',
          'f16c',
        ])
          if (have.has(f)) flags.push(f);
      }
    }
    physical = cores.size || null;
  } catch {
    // not Linux
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    logical_cpus: availableParallelism(),
    physical_cores: physical,
    memory_gib: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${platform()} ${release()}`,
    flags_of_note: flags,
  };
}

/** CPU seconds the whole machine has spent busy since boot (all CPUs), from /proc/stat. */
export function machineBusySeconds(): number | null {
  try {
    const t = cpuTimes();
    return (t.total - t.idle) / 100; // USER_HZ
  } catch {
    return null;
  }
}

function cpuTimes(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  // guest time is already counted in user time
  return { idle, total: v.slice(0, 8).reduce((a, b) => a + b, 0) };
}

export interface LoadSample {
  at: string;
  loadavg_1m: number;
  /** Share of all CPUs busy over a one-second sample, 0..1 (before our own work starts). */
  busy_fraction: number | null;
  /** Processes using over 10% of a CPU right now, heaviest first (ps). */
  busy_processes: string[];
}

/** Wait (up to maxS) until the machine is idle over a one-second sample; returns the busy share seen last. */
export async function waitIdle(maxS: number, threshold = 0.1): Promise<number | null> {
  const t0 = Date.now();
  for (;;) {
    const a = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const b = cpuTimes();
    const busy = 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
    if (busy < threshold || Date.now() - t0 > maxS * 1000) return Math.round(busy * 100) / 100;
  }
}

export async function sampleLoad(exclude: number[] = []): Promise<LoadSample> {
  let busy: number | null = null;
  try {
    const a = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const b = cpuTimes();
    busy = Math.round((1 - (b.idle - a.idle) / Math.max(1, b.total - a.total)) * 100) / 100;
  } catch {
    // no /proc/stat
  }
  return {
    at: new Date().toISOString(),
    loadavg_1m: loadavg()[0],
    busy_fraction: busy,
    busy_processes: busyProcesses(exclude),
  };
}

function busyProcesses(exclude: number[]): string[] {
  try {
    // top -b gives current (not lifetime) CPU use.
    const out = execFileSync('top', ['-b', '-c', '-n', '2', '-d', '0.5', '-w', '200'], { encoding: 'utf8' });
    const frames = out.split(/^top - /m);
    const last = frames[frames.length - 1].split('\n');
    const head = last.findIndex((l) => /^\s*PID\s/.test(l));
    const rows: string[] = [];
    for (const l of last.slice(head + 1)) {
      const f = l.trim().split(/\s+/);
      if (f.length < 12) continue;
      const pid = Number(f[0]);
      const pcpu = Number(f[8]);
      if (pcpu > 10 && pid !== process.pid && !exclude.includes(pid))
        rows.push(`${f.slice(11).join(' ')} (pid ${pid}, ${pcpu}% CPU)`);
    }
    return rows.slice(0, 5);
  } catch {
    return [];
  }
}

/** Is a model training job (training/train.py) running? Its CPU use makes timings meaningless. */
export function trainingRunning(): string[] {
  try {
    const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
    return out
      .split('\n')
      .filter((l) => /train\.py/.test(l) && !/ps -eo/.test(l))
      .map((l) => l.trim());
  } catch {
    return [];
  }
}
