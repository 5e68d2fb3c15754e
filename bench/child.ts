/** Child processes of the benchmark: each measurement runs alone and reports one JSON line. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallS: number;
}

export function runChild(
  cmd: string,
  args: string[],
  opts: { timeoutS?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutS ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutS * 1000) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr, wallS: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}

/** Run a child that prints one JSON object as its last stdout line; failures become { error }. */
export async function runJson(cmd: string, args: string[], timeoutS = 600): Promise<Record<string, any>> {
  try {
    const r = await runChild(cmd, args, { timeoutS });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code === 0 && last.startsWith('{')) return JSON.parse(last);
    const why = r.code === null ? `killed after ${timeoutS} s` : `exit ${r.code}`;
    return { error: `${why}: ${(r.stderr.trim().split('\n').slice(-3).join(' | ') || last).slice(0, 500)}` };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Other jobs on the machine ruin timings, and a 2-thread OpenMP runtime on a core that is
 * taken collapses (PyTorch went from 240 to 3 images/s here). So: wait for an idle machine
 * before each measurement, and afterwards compare the machine's busy CPU time over the
 * child's life with the CPU time the child reports for itself; when other processes took
 * more than `maxOthers` of one CPU on average, measure again (up to `tries` times). The
 * figure keeps the share others took (kernel threads and the like show up as ~0.1 for the
 * PyTorch process even on an idle machine, hence the 0.25 default), and `disturbed: true` when no try was clean.
 */
export async function guarded(
  measure: () => Promise<Record<string, any>>,
  opts: { tries?: number; maxOthers?: number; idleWaitS?: number; log?: (m: string) => void } = {},
): Promise<Record<string, any>> {
  const { machineBusySeconds, waitIdle } = await import('./machine');
  const tries = opts.tries ?? 3;
  const maxOthers = opts.maxOthers ?? 0.25;
  let last: Record<string, any> = {};
  for (let i = 1; i <= tries; i++) {
    await waitIdle(opts.idleWaitS ?? 60);
    const busy0 = machineBusySeconds();
    const self0 = process.cpuUsage();
    const t0 = Date.now();
    const r = await measure();
    const wall = (Date.now() - t0) / 1000;
    const busy1 = machineBusySeconds();
    const self = process.cpuUsage(self0);
    if (busy0 === null || busy1 === null || typeof r.cpu_s !== 'number' || r.error) return r;
    const others = Math.max(0, busy1 - busy0 - r.cpu_s - (self.user + self.system) / 1e6);
    last = { ...r, others_cpu_share: Math.round((others / wall) * 100) / 100, tries: i };
    if (others / wall <= maxOthers) return last;
    opts.log?.(
      `  (other processes took ${(others / wall).toFixed(2)} of a CPU during that measurement: ${i < tries ? 'again' : 'kept, marked disturbed'})`,
    );
  }
  return { ...last, disturbed: true };
}

/** The compiled ONNX Runtime worker next to this file. */
export const ORT_WORKER = join(__dirname, 'ort-worker.js');

export function ortJob(job: object, timeoutS?: number) {
  return runJson(process.execPath, [ORT_WORKER, JSON.stringify(job)], timeoutS);
}
