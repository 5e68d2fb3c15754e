/**
 * The files of one multi-file command, all published or none (issue 15.11): each file is
 * written to a temporary next to its target and nothing at a target path changes until
 * `commit()`. A run that fails before then removes only its own temporaries, so a file of
 * the same name from an earlier run is never touched. `commit()` moves every temporary into
 * place; a file it replaces (allowed by `overwrite`) is kept under a hidden backup name until
 * every rename succeeded, and put back if one fails.
 */
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { usageError, msg, opt } from '../errors';
import { syncDir, tempPathFor } from './atomic-write';
import { trackTemp, untrackTemp } from './temp-files';
import { ioError } from './io-errors';
import { ensureParentDir } from './output-path';

export interface OutputSetOptions {
  /** Replace files that exist at commit time (the CLI's --overwrite); otherwise commit refuses them. */
  overwrite?: boolean;
  /** The option that named the outputs, for the "exists" message (default `output`). */
  option?: string;
}

interface Staged {
  target: string;
  tmp: string;
}

interface Published {
  target: string;
  /** Where the replaced file waits until the whole set is in place; none when the target was new. */
  backup?: string;
}

/** Hard links are not everywhere (some network and FUSE file systems): then fall back to a rename. */
const NO_LINK = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK'];
const noLink = (err: unknown) => NO_LINK.includes((err as NodeJS.ErrnoException).code ?? '');

/** Files written by one command: `write()` stages, `commit()` publishes all, `rollback()` drops the staged ones. */
export class OutputSet {
  private staged: Staged[] = [];
  private readonly committed: string[] = [];

  constructor(private readonly options: OutputSetOptions = {}) {}

  /** Write `data` for `target` to a synced temporary beside it; `target` itself is not touched yet. */
  async write(target: string, data: string | Uint8Array): Promise<void> {
    await ensureParentDir(target);
    const tmp = tempPathFor(target);
    trackTemp(tmp); // SIGINT / SIGTERM remove it (temp-files.ts)
    try {
      const fh = await fs.open(tmp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      untrackTemp(tmp);
      throw ioError(err, target, 'write');
    }
    this.staged.push({ target, tmp });
  }

  /** The targets staged so far (before commit), or published (after). */
  get files(): readonly string[] {
    return this.committed.length ? this.committed : this.staged.map((s) => s.target);
  }

  /**
   * Move every staged file into place. On any failure the targets are as they were before
   * (replaced files restored, new ones removed), the temporaries are gone, and the error
   * names the file that failed.
   */
  async commit(): Promise<void> {
    const staged = this.staged;
    this.staged = [];
    const done: Published[] = [];
    let current = '';
    try {
      for (const { target, tmp } of staged) {
        current = target;
        done.push(await this.publish(tmp, target));
      }
      for (const dir of new Set(staged.map((s) => dirname(s.target)))) await syncDir(dir);
    } catch (err) {
      for (const p of done.reverse()) await undo(p);
      await Promise.all(staged.map((s) => fs.rm(s.tmp, { force: true }).catch(() => undefined)));
      for (const s of staged) untrackTemp(s.tmp);
      throw ioError(err, current, 'write');
    }
    for (const s of staged) untrackTemp(s.tmp); // published: no longer temporaries
    // Every new file is in place and on disk: the replaced ones can go.
    await Promise.all(done.map((p) => p.backup && fs.rm(p.backup, { force: true }).catch(() => undefined)));
    this.committed.push(...staged.map((s) => s.target));
  }

  /** Remove the staged temporaries; files at the target paths (this run's or not) are left alone. */
  async rollback(): Promise<void> {
    const staged = this.staged;
    this.staged = [];
    await Promise.all(staged.map((s) => fs.rm(s.tmp, { force: true }).catch(() => undefined)));
    for (const s of staged) untrackTemp(s.tmp);
  }

  private async publish(tmp: string, target: string): Promise<Published> {
    if (!this.options.overwrite) {
      // link() never replaces: a file that appeared at `target` during the run is refused, not lost.
      try {
        await fs.link(tmp, target);
        await fs.rm(tmp);
        return { target };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw this.exists(target);
        if (!noLink(err)) throw err;
      }
      if (await fs.lstat(target).catch(() => null)) throw this.exists(target);
      await fs.rename(tmp, target);
      return { target };
    }
    const old = await fs.lstat(target).catch(() => null);
    if (!old) {
      await fs.rename(tmp, target);
      return { target };
    }
    if (old.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    // `.tmp.old`: after a kill mid-commit the next run removes it only if `target` is in place (temp-files.ts),
    // so a replaced file that was renamed away (no hard links) and not yet replaced is never lost.
    const backup = `${tempPathFor(target)}.old`;
    let linked = true;
    try {
      await fs.link(target, backup); // the old file stays at `target` until the rename replaces it
    } catch (err) {
      if (!noLink(err)) throw err;
      linked = false;
      await fs.rename(target, backup);
    }
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      if (linked) await fs.rm(backup, { force: true }).catch(() => undefined);
      else await fs.rename(backup, target).catch(() => undefined);
      throw err;
    }
    return { target, backup };
  }

  private exists(target: string) {
    const option = this.options.option ?? 'output';
    return usageError(msg`Output ${opt(option)} ${target} exists; add ${opt('overwrite', true)} to replace it`);
  }
}

/** Put a target back as it was before commit: the replaced file, or nothing. */
async function undo({ target, backup }: Published): Promise<void> {
  if (backup) await fs.rename(backup, target).catch(() => undefined);
  else await fs.rm(target, { force: true }).catch(() => undefined);
}
