/**
 * The pieces under batch that need no model: glob patterns, the lazy sorted listing,
 * byte-offset line reading (what resume trusts), and the progress display.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import { Writable } from 'node:stream';
import { untilAborted } from '../src/batch/abortable';
import { planGlob } from '../src/batch/glob';
import { countInputs, InputList } from '../src/batch/input-list';
import { readLines } from '../src/io/line-reader';
import { formatDuration, progressView } from '../src/cli/progress';
import type { BatchProgress } from '../src/batch/run-batch';
import { tempDir } from './helpers/fixtures';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir('styled-vq-inputs-');
});
afterAll(() => tmp.cleanup());

const touch = (...parts: string[]) => {
  const p = join(tmp.dir, ...parts);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, 'x');
  return p;
};
const list = async (specs: string[], recursive = false) => {
  const out: string[] = [];
  for await (const i of new InputList(specs, { recursive })) out.push(i.error ? `!${i.source}` : i.source);
  return out;
};

describe('glob patterns', () => {
  test.each([
    ['photos/*.jpg', 'photos', ['a.jpg', 'b.jpg'], ['a.png', 'sub/a.jpg', '.hidden.jpg']],
    ['photos/**/*.jpg', 'photos', ['a.jpg', 'sub/a.jpg', 'x/y/z.jpg'], ['a.png', '.git/a.jpg', 'sub/.a.jpg']],
    ['data/img_??.{png,jpg}', 'data', ['img_01.png', 'img_ab.jpg'], ['img_1.png', 'img_001.png', 'img_01.gif']],
    ['data/[ab]*/[!x]*.png', 'data', ['a1/y.png', 'bz/a.png'], ['c1/y.png', 'a1/x.png', 'a1/b/y.png']],
    ['*.png', '.', ['a.png'], ['d/a.png']],
    ['/abs/**', '/abs', ['a', 'b/c'], ['.a', 'b/.c']],
    // What the hand-written matcher got wrong (issue 10 point 10):
    [
      'photos/{2023/summer,2024}/*.jpg',
      'photos',
      ['2023/summer/a.jpg', '2024/b.jpg'],
      ['2023/a.jpg', '2023/winter/a.jpg', '2024/x/b.jpg'],
    ],
    ['data/{a,{b,c}x}*.png', 'data', ['a1.png', 'bx2.png', 'cx.png'], ['b1.png', 'd.png']],
    ['data/a\\*b?.png', 'data', ['a*b1.png'], ['axb1.png', 'a*b.png']],
  ])('%s', (pattern, base, yes, no) => {
    const plan = planGlob(pattern);
    expect(plan.base).toBe(base);
    for (const p of yes) expect([p, plan.match.test(p)]).toEqual([p, true]);
    for (const p of no) expect([p, plan.match.test(p)]).toEqual([p, false]);
  });

  test('an escaped pattern is one literal file', () => {
    const plan = planGlob('photos/\\*.jpg');
    expect(plan.base).toBe('photos');
    expect(plan.match.test('*.jpg')).toBe(true);
    expect(plan.match.test('a.jpg')).toBe(false);
  });

  test('walks only the directories a pattern without ** can match', () => {
    const plan = planGlob('data/[ab]*/*.png');
    expect(plan.enter('a1')).toBe(true);
    expect(plan.enter('c1')).toBe(false);
    expect(plan.enter('a1/deeper')).toBe(false);
    expect(planGlob('data/**/*.png').enter('any/depth/at/all')).toBe(true);
  });
});

describe('input listing', () => {
  test('folders: image extensions only, sorted by code point, hidden entries skipped, subfolders with recursive', async () => {
    const d = join(tmp.dir, 'f');
    const files = ['B.jpg', 'a.PNG', 'a.png', 'c.webp', 'z/1.jpg', 'z/y/2.jpeg'].map((f) =>
      touch('f', ...f.split('/')),
    );
    touch('f', 'notes.txt');
    touch('f', '.hidden.jpg');
    touch('f', '.cache', 'x.jpg');
    expect(await list([d])).toEqual(files.slice(0, 4));
    expect(await list([d], true)).toEqual(files);
    const l = new InputList([d], { recursive: true });
    for await (const _ of l);
    expect(l.ignored).toBe(1);
    expect(await countInputs([d], { recursive: true })).toBe(6);
  });

  test('symlink loops are entered once; an image named directly is one input whatever its extension', async () => {
    const d = join(tmp.dir, 'loop');
    const a = touch('loop', 'a.jpg');
    symlinkSync(d, join(d, 'again'));
    expect(await list([d], true)).toEqual([a]);
    const odd = touch('odd.bin');
    expect(await list([odd, a])).toEqual([odd, a]);
  });

  test('list files: relative to the list, blank lines and # comments skipped, absolute paths kept', async () => {
    const l = join(tmp.dir, 'lists', 'in.txt');
    mkdirSync(join(tmp.dir, 'lists'), { recursive: true });
    writeFileSync(l, '# header\nimgs/one.jpg\n\n  /abs/two.png  \r\n../three.jpg\n');
    expect(await list([l])).toEqual([
      join(tmp.dir, 'lists', 'imgs', 'one.jpg'),
      '/abs/two.png',
      join(tmp.dir, 'three.jpg'),
    ]);
  });

  test('a missing spec is a usage error before anything is listed', async () => {
    await expect(new InputList([join(tmp.dir, 'missing')]).check()).rejects.toThrow(/no such file or folder/);
    expect(() => new InputList([])).toThrow(/at least one input/);
  });
});

describe('line reader', () => {
  test('offsets of every line, and whether it was terminated', async () => {
    const p = join(tmp.dir, 'lines.txt');
    writeFileSync(p, 'ab\n\nü€\npartial');
    const lines = [];
    for await (const l of readLines(p)) lines.push(l);
    expect(lines).toEqual([
      { text: 'ab', start: 0, end: 3, terminated: true },
      { text: '', start: 3, end: 4, terminated: true },
      { text: 'ü€', start: 4, end: 10, terminated: true },
      { text: 'partial', start: 10, end: 17, terminated: false },
    ]);
  });

  test('lines longer than the read chunk', async () => {
    const p = join(tmp.dir, 'long.txt');
    const long = 'x'.repeat(200_000);
    writeFileSync(p, `${long}\n${long}y\n`);
    const lines = [];
    for await (const l of readLines(p)) lines.push([l.text.length, l.start, l.terminated]);
    expect(lines).toEqual([
      [200_000, 0, true],
      [200_001, 200_001, true],
    ]);
  });
});

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    const stream = Object.assign(
      new Writable({
        write: (c, _e, cb) => {
          chunks.push(String(c));
          cb();
        },
      }),
      { isTTY, columns: 100 },
    );
    return { stream, text: () => chunks.join('') };
  };
  const at = (written: number): BatchProgress => ({
    written,
    done: written - 1,
    failed: 1,
    skipped: 0,
    elapsedSeconds: written / 50,
    imagesPerSecond: 50,
  });

  test('plain lines (not a terminal): count, total, rate and ETA', () => {
    const s = sink(false);
    const v = progressView({ stream: s.stream, quiet: false, intervalSeconds: 0 });
    v.setTotal(1000);
    v.update(at(250));
    v.stop();
    expect(s.text()).toBe('styled-vq: batch 250/1000 (25%), 1 failed, 50.0 img/s, eta 15s\n');
  });

  test('a bar on a terminal; nothing at all when quiet', () => {
    const s = sink(true);
    const v = progressView({ stream: s.stream, quiet: false });
    v.setTotal(1000);
    v.update(at(500));
    v.stop();
    expect(s.text()).toMatch(/batch \[.*\] 500\/1000 \| 50\.0 img\/s \| eta 10s/);
    const q = sink(true);
    const quiet = progressView({ stream: q.stream, quiet: true });
    quiet.update(at(5));
    quiet.stop();
    expect(q.text()).toBe('');
  });

  test('durations', () => {
    expect([formatDuration(0), formatDuration(59.4), formatDuration(61), formatDuration(3 * 3600 + 5 * 60)]).toEqual([
      '0s',
      '59s',
      '1m01s',
      '3h05m',
    ]);
  });
});

describe('waiting with an abort signal', () => {
  test('resolves with the value, or "aborted"; leaves no listener behind (each would pin a result in memory)', async () => {
    const c = new AbortController();
    for (let i = 0; i < 50; i++) expect(await untilAborted(Promise.resolve(i), c.signal)).toBe(i);
    await expect(untilAborted(Promise.reject(new Error('boom')), c.signal)).rejects.toThrow('boom');
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
    const pending = untilAborted(new Promise(() => undefined), c.signal);
    c.abort();
    expect(await pending).toBe('aborted');
    expect(await untilAborted(Promise.resolve(1), c.signal)).toBe('aborted');
  });
});
