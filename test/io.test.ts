/**
 * src/io: the one atomic write. Files appear whole or not at all, and are durable before
 * success is reported: the temporary file is fsynced before the rename, the folder after
 * it. The order is read from the real system calls (strace), for both the small-file
 * writer and the streamed one.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StyledVqError } from '../src/errors';
import { AtomicStreamWriter } from '../src/io/atomic-stream';
import { writeFileAtomic } from '../src/io/atomic-write';
import { ROOT, tempDir } from './helpers/fixtures';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

describe('atomic write', () => {
  test('fsyncs the file before the rename and the folder after it (strace)', () => {
    const out = join(tmp.dir, 'traced');
    mkdirSync(out);
    const script = `
      const { writeFileAtomic } = require(${JSON.stringify(join(ROOT, 'dist/src/io/atomic-write.js'))});
      const { AtomicStreamWriter } = require(${JSON.stringify(join(ROOT, 'dist/src/io/atomic-stream.js'))});
      (async () => {
        await writeFileAtomic(process.argv[1] + '/small.txt', 'hello');
        const w = await AtomicStreamWriter.open(process.argv[1] + '/streamed.txt');
        await w.write('x'.repeat(100000));
        await w.commit();
      })();`;
    const trace = join(tmp.dir, 'trace.txt');
    const r = spawnSync(
      'strace',
      [
        '-f',
        '-y',
        '-qq',
        '-o',
        trace,
        '-e',
        'trace=fsync,fdatasync,rename,renameat,renameat2',
        process.execPath,
        '-e',
        script,
        out,
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(r.error).toBeUndefined(); // strace is installed by .ci/run
    expect(r.status).toBe(0);
    // One event per line: "sync <path>" or "rename <from> <to>", for our folder only.
    const events = readFileSync(trace, 'utf8')
      .split('\n')
      .flatMap((line) => {
        const sync = /f(?:data)?sync\(\d+<([^>]+)>\)\s+= 0/.exec(line);
        if (sync) return sync[1].startsWith(out) ? [`sync ${sync[1].replace(out, '')}`] : [];
        const ren = /rename\w*\(.*"([^"]+)",.*"([^"]+)"/.exec(line);
        return ren?.[2].startsWith(out) ? [`rename ${ren[1].replace(out, '')} ${ren[2].replace(out, '')}`] : [];
      })
      .map((e) => e.replace(/\.\d+\.[0-9a-f]{8}\.tmp/g, '.TMP'));
    expect(events).toEqual([
      'sync /.small.txt.TMP',
      'rename /.small.txt.TMP /small.txt',
      'sync ',
      'sync /.streamed.txt.TMP',
      'rename /.streamed.txt.TMP /streamed.txt',
      'sync ',
    ]);
    expect(readFileSync(join(out, 'streamed.txt'), 'utf8')).toHaveLength(100000);
  });

  test('creates missing folders, replaces a symlink instead of writing through it, leaves no temporary file', async () => {
    const victim = join(tmp.dir, 'victim.txt');
    writeFileSync(victim, 'keep');
    const dir = join(tmp.dir, 'a', 'b');
    await writeFileAtomic(join(dir, 'x.txt'), 'one');
    symlinkSync(victim, join(dir, 'link.txt'));
    await writeFileAtomic(join(dir, 'link.txt'), 'two');
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(lstatSync(join(dir, 'link.txt')).isFile()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['link.txt', 'x.txt']);
  });

  test('a failed write is one line naming the file, and leaves nothing behind', async () => {
    const dir = join(tmp.dir, 'fail');
    mkdirSync(dir);
    mkdirSync(join(dir, 'taken')); // a folder where the file should go: the rename fails
    const err = await writeFileAtomic(join(dir, 'taken'), 'data').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect((err as Error).message).toBe(`Cannot write ${join(dir, 'taken')}: it is a folder`);
    expect(readdirSync(dir)).toEqual(['taken']);

    const w = await AtomicStreamWriter.open(join(dir, 'streamed.bin'));
    await w.write(new Uint8Array(10));
    await w.abort();
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});
