/**
 * Our temporary files and folders: named so they can be told apart from anything else,
 * tracked while they are written, and cleaned up after an interrupt (issue 15.17).
 *
 * Every temporary is built next to its target as `.<target name>.<pid>.<8 hex>.tmp` (a
 * folder or file being replaced waits as `...tmp.old` until the new one is in place). While this
 * process writes one it is in the live set: bin/ removes them all on SIGINT / SIGTERM
 * before exiting. A run killed outright (kill -9, power cut) cannot clean up, so the next
 * run on the same target removes the temporaries that are provably stale: exactly that
 * name pattern for exactly that target, in the target's folder, written by a process that
 * no longer runs on this host. Nothing else is ever removed.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A fresh temporary name next to `target` (hidden, with pid and random suffix). */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The pid in a temporary's name if `name` is one of `target`'s (see tempPathFor), else null. */
export function tempOwner(name: string, target: string): { pid: number; old: boolean } | null {
  const m = new RegExp(`^\\.${escapeRegExp(basename(target))}\\.([1-9][0-9]{0,9})\\.[0-9a-f]{8}\\.tmp(\\.old)?$`).exec(
    name,
  );
  return m ? { pid: Number(m[1]), old: m[2] !== undefined } : null;
}

const live = new Set<string>();

/** A temporary this process is writing now: removed by {@link removeLiveTemps} on an interrupt. */
export function trackTemp(path: string): void {
  live.add(path);
}

/** Renamed into place or removed: no longer ours to clean up. */
export function untrackTemp(path: string): void {
  live.delete(path);
}

/**
 * Remove every temporary this process is writing, synchronously (called from a signal
 * handler just before exiting). Returns how many there were.
 */
export function removeLiveTemps(): number {
  const n = live.size;
  for (const path of live) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // exiting anyway: the next run removes what is left (removeStaleTemps)
    }
  }
  live.clear();
  return n;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, not ours
  }
}

/** Any temporary's name, split into the target's base name and its suffix (see tempPathFor). */
const ANY_TEMP = /^\.(.+)\.[1-9][0-9]{0,9}\.[0-9a-f]{8}\.tmp(?:\.old)?$/;

/**
 * Remove the temporaries an interrupted run left next to `target` (files or folders named
 * as tempPathFor makes them, whose process is gone). A `.tmp.old` holds a replaced output
 * (split's folder, decode's replaced image): removed only when `target` is there (the
 * replacement finished), else kept. Returns the paths removed.
 */
export async function removeStaleTemps(target: string): Promise<string[]> {
  return removeStaleTempsOf([target]);
}

/**
 * {@link removeStaleTemps} for many targets (decode's NAME-0.png ... NAME-9999.png): one
 * readdir per folder, each entry matched against the set of target names, so the cost is
 * the folder's size, not targets x folder size.
 */
export async function removeStaleTempsOf(targets: readonly string[]): Promise<string[]> {
  const byDir = new Map<string, Set<string>>();
  for (const target of targets) {
    const dir = dirname(target);
    if (!byDir.has(dir)) byDir.set(dir, new Set());
    byDir.get(dir)?.add(basename(target));
  }
  const removed: string[] = [];
  for (const [dir, targetNames] of byDir) {
    const entries = await fs.readdir(dir).catch(() => [] as string[]);
    for (const name of entries) {
      const base = ANY_TEMP.exec(name)?.[1];
      if (base === undefined || !targetNames.has(base)) continue;
      const target = join(dir, base);
      const owner = tempOwner(name, target); // the exact pattern, as for one target
      if (!owner || pidAlive(owner.pid)) continue;
      const path = join(dir, name);
      const st = await fs.lstat(path).catch(() => null);
      if (!st || st.isSymbolicLink() || !(st.isFile() || st.isDirectory())) continue;
      if (owner.old && !(await fs.lstat(target).catch(() => null))) continue;
      await fs.rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}
