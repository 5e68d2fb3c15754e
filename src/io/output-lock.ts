/**
 * One writer per output: `<out>.lock`, created exclusively (O_EXCL), holding the owner's
 * pid, host and a random token, and kept fresh by a heartbeat (its mtime is touched every
 * `heartbeatMs`). Engines do run two attempts of one task at once (a Kubernetes pod
 * replaced before the old one died, a Ray retry, a Slurm requeue race); without this both
 * append to the same file and the output gets duplicated and cut lines.
 *
 * A lock is stale, and taken over, when its owner is on this host and its pid is gone
 * (kill -9, OOM: taken over at once), or when its heartbeat is older than `staleMs`
 * (another host that died or lost the shared filesystem). Hosts sharing a folder must
 * agree on the time within a fraction of `staleMs`.
 *
 * Taking over is serialised by a second exclusive file, `<out>.lock.takeover`, so two
 * processes that both saw the stale lock cannot both win: under it the lock is re-read,
 * and removed only if it is still the stale one that was judged. A takeover file left by
 * a process killed in that instant is itself stale after `staleMs`.
 *
 * The lock is re-checked before anything final (the done marker): a holder that stalled
 * for longer than `staleMs` and lost its lock stops instead of writing over the new owner.
 *
 * Hand-written rather than proper-lockfile: that library judges staleness by mtime only, so
 * a task killed with -9 and requeued at once would wait out the whole stale period, and
 * it records no owner to name in the message.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { busyError } from '../errors';
import { ioError } from './io-errors';
import { DEFAULTS } from '../defaults';

export interface LockOwner {
  pid: number;
  host: string;
  token: string;
  /** ISO time the lock was taken. */
  since: string;
}

export interface LockOptions {
  /** Heartbeat period (default DEFAULTS.lock.heartbeatMs, 5000 ms). */
  heartbeatMs?: number;
  /** A heartbeat older than this is a dead owner (default DEFAULTS.lock.staleMs, 60000 ms). */
  staleMs?: number;
}

export const lockPathFor = (output: string) => `${output}.lock`;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, not ours
  }
}

async function readOwner(path: string): Promise<{ owner: LockOwner | null; mtimeMs: number } | null> {
  try {
    const [text, stat] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)]);
    let owner: LockOwner | null = null;
    try {
      const o = JSON.parse(text);
      if (typeof o?.pid === 'number' && typeof o.host === 'string' && typeof o.token === 'string') owner = o;
    } catch {
      // A lock cut while being written (its owner was killed in that instant): no owner, judged by age.
    }
    return { owner, mtimeMs: stat.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function staleness(lock: { owner: LockOwner | null; mtimeMs: number }, staleMs: number): string | null {
  const age = Date.now() - lock.mtimeMs;
  if (lock.owner && lock.owner.host === hostname() && lock.owner.pid !== process.pid && !pidAlive(lock.owner.pid)) {
    return `its owner, pid ${lock.owner.pid} on this host, is gone`;
  }
  if (age > staleMs) return `no heartbeat for ${(age / 1000).toFixed(0)} s`;
  return null;
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

export class OutputLock {
  private timer: NodeJS.Timeout | undefined;
  private lost: string | undefined;
  private released = false;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
    /** Set when a stale lock was taken over: whose, and why it was judged stale. */
    readonly tookOver: string | undefined,
    private readonly staleMs: number,
  ) {}

  /**
   * Take the lock of `output`, or throw a busy error (exit 75) naming the live owner.
   * `what` names the output in messages.
   */
  static async acquire(output: string, options: LockOptions = {}): Promise<OutputLock> {
    const path = lockPathFor(output);
    const heartbeatMs = options.heartbeatMs ?? DEFAULTS.lock.heartbeatMs;
    const staleMs = options.staleMs ?? DEFAULTS.lock.staleMs;
    const owner: LockOwner = {
      pid: process.pid,
      host: hostname(),
      token: randomBytes(8).toString('hex'),
      since: new Date().toISOString(),
    };
    const content = `${JSON.stringify(owner)}\n`;
    let tookOver: string | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        if (await createExclusive(path, content)) break;
        const held = await readOwner(path);
        if (!held) continue; // released meanwhile: try again
        const why = staleness(held, staleMs);
        const who = held.owner
          ? `pid ${held.owner.pid} on ${held.owner.host}, since ${held.owner.since}`
          : 'an unknown owner';
        if (!why || attempt >= 3) {
          throw busyError(
            `${output} is being written by another process (${who}; lock ${path}); exit 75: retry later, or remove ` +
              `the lock if that process is gone`,
          );
        }
        if (await OutputLock.takeOver(path, held, staleMs)) tookOver = `${who}: ${why}`;
      }
    } catch (err) {
      if ((err as { kind?: string }).kind === 'busy') throw err;
      throw ioError(err, path, 'write'); // e.g. "Cannot write out.jsonl.lock: read-only file system"
    }
    const lock = new OutputLock(path, owner, tookOver, staleMs);
    lock.timer = setInterval(() => void lock.beat(), heartbeatMs);
    lock.timer.unref();
    return lock;
  }

  /** Remove the stale lock `seen`, if it is still the one there; serialised by the takeover file. */
  private static async takeOver(
    path: string,
    seen: { owner: LockOwner | null; mtimeMs: number },
    staleMs: number,
  ): Promise<boolean> {
    const guard = `${path}.takeover`;
    if (!(await createExclusive(guard, JSON.stringify({ pid: process.pid, host: hostname() })))) {
      const g = await readOwner(guard);
      if (g && Date.now() - g.mtimeMs > staleMs) await fs.rm(guard, { force: true });
      return false;
    }
    try {
      const now = await readOwner(path);
      if (now && now.owner?.token === seen.owner?.token && now.mtimeMs === seen.mtimeMs)
        await fs.rm(path, { force: true });
      return true;
    } finally {
      await fs.rm(guard, { force: true });
    }
  }

  private async beat(): Promise<void> {
    if (this.released || this.lost) return;
    try {
      const now = await readOwner(this.path);
      if (now?.owner?.token !== this.owner.token) {
        this.lost = now?.owner ? `pid ${now.owner.pid} on ${now.owner.host} took it over` : 'it was removed';
        return;
      }
      const t = new Date();
      await fs.utimes(this.path, t, t);
    } catch {
      // A missed beat is harmless unless it lasts staleMs; verify() says then.
    }
  }

  /** Throw if the lock is no longer ours (before writing anything final). */
  async verify(): Promise<void> {
    await this.beat();
    if (this.lost)
      throw busyError(
        `lost the lock on ${this.path} (${this.lost}, after no heartbeat for ${this.staleMs / 1000} s?); exit 75: ` +
          `retry later`,
      );
  }

  /** Stop the heartbeat and remove the lock, if it is still ours. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    const now = await readOwner(this.path).catch(() => null);
    if (now?.owner?.token === this.owner.token) await fs.rm(this.path, { force: true });
  }
}
