/**
 * Scale-out as a library: shards of a listing (naming, ranges, engine variables), done
 * markers (idempotent reruns, damaged outputs redone), `mergeShards` (byte-identical to
 * one run, refusing missing / changed / foreign shards with the --array to resubmit), the
 * output lock (a second writer refused, stale locks taken over) and webdataset tars.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { arrayRanges, IncompleteShardsError, jsonlSources, mergeShards } from '../src/batch/merge';
import { SourceTally } from '../src/batch/done-marker';
import { runBatch, type RunBatchOptions } from '../src/batch/run-batch';
import { parseShard, shardFromEnvironment, shardOutputPath, shardRange } from '../src/batch/shard';
import { checkTarArchive } from '../src/batch/tar-input';
import { exitCodeFor } from '../src/errors';
import { OutputLock } from '../src/io/output-lock';
import { Model } from '../src/model/model';
import { failure } from './helpers/errors';
import { FIXTURE_MODEL, tempDir } from './helpers/fixtures';
import { writeBadFiles, writeImageFolder } from './helpers/image-folder';

let model: Model;
let tmp: ReturnType<typeof tempDir>;
let photos: string;
let single: string;
let n = 0;
const fresh = (name = 'run') => {
  const dir = join(tmp.dir, `${name}-${n++}`);
  mkdirSync(dir);
  return dir;
};
const batch = (options: Partial<RunBatchOptions> & { output: string }) =>
  runBatch(model, { inputs: [photos], batchSize: 4, concurrency: 2, preprocessIn: 'main', ...options });
const text = (p: string) => readFileSync(p, 'utf8');
/**
 * The bytes of a JSONL output, except the text of error records: libvips words the same
 * failure differently from run to run (batch-pipeline.test.ts). Everything else, tokens
 * and order included, must be identical.
 */
const bytes = (p: string) => text(p).replace(/"error":"(?:[^"\\]|\\.)*"/g, '"error":"..."');

beforeAll(async () => {
  tmp = tempDir('styled-vq-scale-');
  photos = join(tmp.dir, 'photos');
  await writeImageFolder(photos, { count: 21, seed: 3 });
  await writeBadFiles(photos);
  model = await Model.open({ model: FIXTURE_MODEL, device: 'cpu' });
  single = join(fresh('single'), 'all.jsonl');
  await batch({ output: single, batchSize: 24 });
});
afterAll(async () => {
  await model?.dispose();
  tmp.cleanup();
});

describe('shards', () => {
  test('I/N parsed, checked, named with zero-padded ids, sliced contiguously', () => {
    expect(parseShard('3/128')).toEqual({ index: 3, count: 128 });
    expect(() => parseShard('3')).toThrow(/Expected I\/N .* for shard but received "3"/);
    expect(() => parseShard('4/4')).toThrow(/^shard 4\/4: shard index 4 is out of range; shards are numbered 0 to 3$/);
    expect(() => parseShard('0/0')).toThrow(/at least 1/);
    expect(shardOutputPath('out/tokens.jsonl', { index: 12, count: 128 })).toBe('out/tokens-00012-of-00128.jsonl');
    expect(shardOutputPath('out/tok-{shard}.npy', { index: 7, count: 200000 })).toBe('out/tok-000007.npy');
    expect(shardOutputPath('t-{shard}-{shards}.jsonl', { index: 1, count: 2 })).toBe('t-00001-00002.jsonl');
    expect(() => shardOutputPath('out-{shard}/t.jsonl', { index: 1, count: 2 })).toThrow(/file name/);
    // Shards tile the listing exactly, sizes differ by at most one.
    const sizes = [...Array(7).keys()].map((i) => shardRange(100, { index: i, count: 7 }));
    expect(sizes[0].start).toBe(0);
    expect(sizes[6].end).toBe(100);
    for (const [i, r] of sizes.slice(1).entries()) expect(r.start).toBe(sizes[i].end);
    expect(new Set(sizes.map((r) => r.end - r.start))).toEqual(new Set([14, 15]));
  });

  test('the index from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or a named variable', () => {
    expect(shardFromEnvironment(8, { SLURM_ARRAY_TASK_ID: '5' })).toEqual({ index: 5, count: 8 });
    expect(shardFromEnvironment(8, { JOB_COMPLETION_INDEX: '2' })).toEqual({ index: 2, count: 8 });
    expect(shardFromEnvironment(8, { MY_IDX: '7', SLURM_ARRAY_TASK_ID: '1' }, 'MY_IDX')).toEqual({
      index: 7,
      count: 8,
    });
    expect(() => shardFromEnvironment(8, {})).toThrow(/none of SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX is set/);
    expect(() => shardFromEnvironment(8, { SLURM_ARRAY_TASK_ID: '8' })).toThrow(
      /SLURM_ARRAY_TASK_ID=8 is out of range for 8 shards/,
    );
    expect(() => shardFromEnvironment(8, { SLURM_ARRAY_TASK_ID: 'x' })).toThrow(/not a shard index/);
  });

  test('merge reads sources whole when a read ends inside a multi-byte character', () => {
    const lines = `${['{"source":"фото/ü-1.jpg"}', '{"source":"写真/2.jpg"}'].join('\n')}\n`;
    const bytes = Buffer.from(lines);
    const want = new SourceTally();
    want.add('фото/ü-1.jpg');
    want.add('写真/2.jpg');
    for (let cut = 1; cut < bytes.length; cut++) {
      const got = new SourceTally();
      const s = jsonlSources([got], 'x.jsonl');
      s.feed(bytes.subarray(0, cut));
      s.feed(bytes.subarray(cut));
      s.end();
      expect([cut, got.digest()]).toEqual([cut, want.digest()]);
    }
  });

  test('--array strings', () => {
    expect(arrayRanges([3, 17, 40, 41, 42])).toBe('3,17,40-42');
    expect(arrayRanges([5, 1, 2, 3, 2])).toBe('1-3,5');
  });
});

describe('shards and merge', () => {
  test('three shards, merged in order, are byte-identical to one run; each has a done marker', async () => {
    const dir = fresh();
    for (const i of [2, 0, 1]) {
      const s = await batch({
        output: join(dir, 'tok.jsonl'),
        shard: { index: i, count: 3 },
        env: { SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: String(i) },
      });
      expect(s.output).toBe(join(dir, `tok-0000${i}-of-00003.jsonl`));
      expect(s.marker).toBe(`${s.output}.done.json`);
    }
    const marker = JSON.parse(text(join(dir, 'tok-00001-of-00003.jsonl.done.json')));
    expect(marker).toMatchObject({
      format: 'styled-vq-done',
      kind: 'batch',
      shard: { index: 1, count: 3 },
      counts: { records: 8 },
      listing: { count: 24 },
      sources: { count: 8 },
      engine: { SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '1' },
      files: [{ name: 'tok-00001-of-00003.jsonl', bytes: statSync(join(dir, 'tok-00001-of-00003.jsonl')).size }],
    });
    const m = await mergeShards({ shards: [dir], output: join(dir, 'all.jsonl') });
    expect(m).toMatchObject({ shards: 3, records: 24, failed: 3 });
    expect(bytes(join(dir, 'all.jsonl'))).toBe(bytes(single));
    expect(JSON.parse(text(join(dir, 'all.jsonl.done.json')))).toMatchObject({
      kind: 'merge',
      counts: { records: 24, failed: 3 },
      shards: [{ index: 0 }, { index: 1 }, { index: 2 }],
    });
  });

  test('npy shards with latents merge to the arrays and sidecar of one run', async () => {
    const dir = fresh();
    const one = join(dir, 'one.npy');
    await batch({ output: one, latents: true });
    for (let i = 0; i < 4; i++)
      await batch({ output: join(dir, 's-{shard}.npy'), latents: true, shard: { index: i, count: 4 } });
    await mergeShards({ shards: [join(dir, 's-*.npy')], output: join(dir, 'all.npy') });
    expect(readFileSync(join(dir, 'all.npy'))).toEqual(readFileSync(one));
    expect(readFileSync(join(dir, 'all.latents.npy'))).toEqual(readFileSync(join(dir, 'one.latents.npy')));
    const norm = (p: string) => {
      const sc = JSON.parse(text(p));
      return {
        ...sc,
        tokens: 'x',
        latents: 'y',
        failed: sc.failed.map((f: { row: number; source: string }) => [f.row, f.source]),
      };
    };
    expect(norm(join(dir, 'all.sources.json'))).toEqual(norm(join(dir, 'one.sources.json')));
  });

  test('merge refuses missing, changed and foreign shards, naming the --array to resubmit; nothing is written', async () => {
    const dir = fresh();
    for (const i of [0, 2, 3, 5]) await batch({ output: join(dir, 't.jsonl'), shard: { index: i, count: 6 } });
    const all = join(dir, 'all.jsonl');
    const e = await failure(mergeShards({ shards: [dir], output: all }));
    expect(e).toBeInstanceOf(IncompleteShardsError);
    expect((e as IncompleteShardsError).array).toBe('1,4');
    expect(e.message).toMatch(/2 of 6 shards are missing, unfinished or changed: rerun them with --array=1,4/);
    expect(existsSync(all)).toBe(false);

    for (const i of [1, 4]) await batch({ output: join(dir, 't.jsonl'), shard: { index: i, count: 6 } });
    // Same size, other bytes: only the sha256 can tell.
    const victim = join(dir, 't-00003-of-00006.jsonl');
    const original = text(victim);
    writeFileSync(
      victim,
      original.replace(/"tokens":\[(\d)/, (_, d) => `"tokens":[${(Number(d) + 1) % 10}`),
    );
    const changed = await failure(mergeShards({ shards: [dir], output: all }));
    expect(changed.message).toMatch(/t-00003-of-00006\.jsonl changed since it was marked done.*--array=3$/);
    expect(existsSync(all)).toBe(false);
    writeFileSync(victim, original);

    // A shard of another listing (one more image) is another job.
    const other = fresh('other');
    await writeImageFolder(join(other, 'p'), { count: 25, seed: 3 });
    await runBatch(model, {
      inputs: [join(other, 'p')],
      output: join(other, 't.jsonl'),
      shard: { index: 0, count: 6 },
      preprocessIn: 'main',
    });
    const foreign = await failure(mergeShards({ shards: [dir, join(other, 't-00000-of-00006.jsonl')], output: all }));
    expect(foreign.message).toMatch(/shards of different jobs \(listing of 24 vs 25 inputs/);
    // Another model (a marker edited to say so) is another job too.
    const mk = join(dir, 't-00005-of-00006.jsonl.done.json');
    const saved = text(mk);
    writeFileSync(mk, saved.replace(/"fingerprint": "[0-9a-f]+"/, '"fingerprint": "ffffffffffffffff"'));
    expect((await failure(mergeShards({ shards: [dir], output: all }))).message).toMatch(
      /shards of different jobs \(model .*ffffffffffffffff/,
    );
    writeFileSync(mk, saved);

    await mergeShards({ shards: [dir], output: all });
    expect(bytes(all)).toBe(bytes(single));
    expect((await failure(mergeShards({ shards: [dir], output: all }))).message).toMatch(
      /Output exists: .*; add overwrite: true to replace it$/,
    );
  });

  test('more shards than inputs: the empty ones are marked done empty and merge fine', async () => {
    const dir = fresh();
    const few = join(dir, 'few');
    await writeImageFolder(few, { count: 2, seed: 8 });
    for (let i = 0; i < 3; i++)
      await runBatch(model, {
        inputs: [few],
        output: join(dir, 't.jsonl'),
        shard: { index: i, count: 3 },
        preprocessIn: 'main',
      });
    expect(text(join(dir, 't-00000-of-00003.jsonl'))).toBe('');
    const m = await mergeShards({ shards: [dir], output: join(dir, 'all.jsonl') });
    expect(m.records).toBe(2);
  });
});

describe('done markers', () => {
  test('a rerun on a finished output does nothing; a damaged one is reported and redone; another job is refused', async () => {
    const dir = fresh();
    const opts = { output: join(dir, 't.jsonl'), shard: { index: 1, count: 2 } };
    await batch(opts);
    const out = join(dir, 't-00001-of-00002.jsonl');
    const before = readFileSync(out);
    const mtime = statSync(out).mtimeMs;
    const again = await batch(opts);
    expect(again).toMatchObject({ alreadyComplete: true, done: 0, skipped: 12, marker: `${out}.done.json` });
    expect(again.execution).toBeUndefined(); // no session was even created
    expect(statSync(out).mtimeMs).toBe(mtime);

    appendFileSync(out, '{"torn');
    const redo = await batch(opts);
    expect(redo.markerInvalid).toMatch(/has \d+ bytes, the marker says \d+/);
    expect(redo).toMatchObject({ alreadyComplete: false, skipped: 12, repairedBytes: 6 });
    expect(readFileSync(out)).toEqual(before);
    expect(existsSync(`${out}.done.json`)).toBe(true);

    expect((await failure(batch({ ...opts, latents: true }))).message).toMatch(
      /marked done with another latents \(latents: false then, true now\).*overwrite: true/,
    );
    const forced = await batch({ ...opts, overwrite: true });
    expect(forced.done + forced.failed).toBe(12);
  });

  test('a finished shard of a listing that changed since is refused, not silently kept', async () => {
    const dir = fresh();
    const own = join(dir, 'p');
    await writeImageFolder(own, { count: 6, seed: 12 });
    const opts = {
      inputs: [own],
      output: join(dir, 't.jsonl'),
      shard: { index: 0, count: 2 },
      preprocessIn: 'main' as const,
    };
    await runBatch(model, opts);
    await writeImageFolder(join(own, 'more'), { count: 1, seed: 13, name: () => '../zz-late.png' });
    expect((await failure(runBatch(model, opts))).message).toMatch(
      /marked done for a listing of 6 inputs, but there are more inputs now \(7\); use a new output, or overwrite: true/,
    );
  });

  test('every input failed: reported, not marked done', async () => {
    const dir = fresh();
    const bad = join(dir, 'bad');
    await writeBadFiles(bad);
    const s = await runBatch(model, { inputs: [bad], output: join(dir, 'bad.jsonl'), preprocessIn: 'main' });
    expect(s).toMatchObject({ allFailed: true, failed: 3, marker: null });
    expect(existsSync(join(dir, 'bad.jsonl.done.json'))).toBe(false);
  });
});

describe('output lock', () => {
  test('a second writer of the same output is refused with the busy code (75) while the first runs', async () => {
    const dir = fresh();
    const output = join(dir, 't.jsonl');
    // The second starts from inside the first's progress callback: surely mid-run.
    let second: Promise<unknown> | undefined;
    const startSecond = () => {
      second = batch({ output });
      second.catch(() => undefined); // examined below, after the first finished
    };
    const first = batch({ output, batchSize: 1, onProgress: (p) => p.written === 3 && startSecond() });
    await first;
    const e = await failure(second!);
    expect(e.kind).toBe('busy');
    expect(exitCodeFor(e)).toBe(75);
    expect(e.message).toMatch(new RegExp(`being written by another process \\(pid ${process.pid} on ${hostname()}`));
    expect(bytes(output)).toBe(bytes(single));
    expect(existsSync(`${output}.lock`)).toBe(false);
  });

  test('stale locks are taken over: a dead pid on this host at once, another host after its heartbeat stops', async () => {
    const dir = fresh();
    const output = join(dir, 't.jsonl');
    const lock = `${output}.lock`;
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 11, host: hostname(), token: 'dead', since: 'then' }));
    const s = await batch({ output });
    expect(s.lockTakenOver).toMatch(/pid 4194315 on .*: its owner, pid 4194315 on this host, is gone/);

    // Another host's live lock: refused; the same lock without a heartbeat for longer than staleMs: taken over.
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'x', since: 'then' }));
    await expect(OutputLock.acquire(join(dir, 'u.jsonl'))).resolves.toBeDefined(); // other outputs are free
    expect((await failure(OutputLock.acquire(output, { staleMs: 60_000 }))).kind).toBe('busy');
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    const taken = await OutputLock.acquire(output, { staleMs: 60_000 });
    expect(taken.tookOver).toMatch(/pid 1 on elsewhere.*no heartbeat for 1[12]\d s/);
    expect(JSON.parse(text(lock)).token).toBe(taken.owner.token);
    await taken.release();
    expect(existsSync(lock)).toBe(false);
  });

  test('a holder whose lock was taken over finds out before writing anything final', async () => {
    const dir = fresh();
    const output = join(dir, 'v.jsonl');
    const a = await OutputLock.acquire(output, { heartbeatMs: 60_000 });
    renameSync(`${output}.lock`, `${output}.lock.old`);
    const b = await OutputLock.acquire(output);
    await expect(a.verify()).rejects.toThrow(/lost the lock/);
    await a.release();
    expect(existsSync(`${output}.lock`)).toBe(true); // a's release leaves b's lock alone
    await b.release();
  });
});

/** A tar built with tar-stream's packer (ustar), as webdataset writers make them. */
async function makeTar(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries) p.entry({ name: e.name }, e.data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('webdataset tar input', () => {
  let tar: string;
  let members: string[];
  beforeAll(async () => {
    const dir = fresh('tar');
    const imgs = (await writeImageFolder(join(dir, 'src'), { count: 5, seed: 3 })).map((p) => readFileSync(p));
    const entries: { name: string; data: Buffer }[] = [];
    imgs.forEach((data, i) => {
      entries.push({ name: `${String(i).padStart(6, '0')}.png`, data });
      entries.push({ name: `${String(i).padStart(6, '0')}.json`, data: Buffer.from(`{"i": ${i}}`) });
    });
    entries.push({ name: '000005.jpg', data: Buffer.from('not an image at all') });
    members = entries.filter((e) => /\.(png|jpg)$/.test(e.name)).map((e) => e.name);
    tar = join(dir, 'shard-00012.tar');
    writeFileSync(tar, await makeTar(entries));
  });

  test('image members in archive order, keys kept in the source, companions ignored, a bad member an error record', async () => {
    const out = join(fresh(), 'tar.jsonl');
    const s = await runBatch(model, { inputs: [tar], output: out, batchSize: 2 });
    expect(s).toMatchObject({ done: 5, failed: 1, ignored: 5, total: 6 });
    const recs = text(out)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.map((r) => r.source)).toEqual(members.map((m) => `${tar}/${m}`));
    expect(recs[5].error).toMatch(new RegExp(`^${tar}/000005\\.jpg: `));
    // Same tokens as the same images read from files.
    const direct = join(fresh(), 'direct.jsonl');
    await runBatch(model, { inputs: [join(tar, '..', 'src')], output: direct });
    const d = text(direct)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.slice(0, 5).map((r) => r.tokens)).toEqual(d.map((r) => r.tokens));
  });

  test('one tar per task (inputsAreShard): shards named and marked, merged equal to one run over all tars', async () => {
    const dir = fresh();
    const tars: string[] = [];
    const imgs = (await writeImageFolder(join(dir, 'src'), { count: 9, seed: 4 })).map((p) => readFileSync(p));
    for (let t = 0; t < 3; t++) {
      tars.push(join(dir, `shard-${t}.tar`));
      writeFileSync(
        tars[t],
        await makeTar(imgs.slice(t * 3, t * 3 + 3).map((data, i) => ({ name: `${t}${i}.png`, data }))),
      );
    }
    for (let t = 0; t < 3; t++)
      await runBatch(model, {
        inputs: [tars[t]],
        output: join(dir, 'out', 'tok.jsonl'),
        shard: { index: t, count: 3 },
        inputsAreShard: true,
      });
    const marker = JSON.parse(text(join(dir, 'out', 'tok-00001-of-00003.jsonl.done.json')));
    expect(marker).toMatchObject({
      shard: { index: 1, count: 3 },
      listing: null,
      sources: { count: 3 },
      options: { shard_inputs: 'whole' },
    });
    const one = join(dir, 'one.jsonl');
    await runBatch(model, { inputs: tars, output: one });
    await mergeShards({ shards: [join(dir, 'out')], output: join(dir, 'all.jsonl') });
    expect(bytes(join(dir, 'all.jsonl'))).toBe(bytes(one));
    // A sliced shard does not belong with them.
    await runBatch(model, {
      inputs: tars,
      output: join(dir, 'out', 'tok.jsonl'),
      shard: { index: 0, count: 3 },
      overwrite: true,
    });
    expect(
      (await failure(mergeShards({ shards: [join(dir, 'out')], output: join(dir, 'all2.jsonl') }))).message,
    ).toMatch(/shards of different jobs/);
  });

  test('a tar cut at a member boundary or inside a member, or not a tar, is refused before any work', async () => {
    const whole = readFileSync(tar);
    expect(await checkTarArchive(tar)).toEqual({ members: 11 });
    const dir = fresh();
    // Member 0: header (512) + data padded to 512; cutting right after it leaves a valid-looking shorter tar.
    const size0 = parseInt(whole.toString('latin1', 124, 135), 8);
    const boundary = 512 + Math.ceil(size0 / 512) * 512;
    const cases: [string, Buffer, RegExp][] = [
      [
        'boundary.tar',
        whole.subarray(0, boundary),
        /is truncated: it ends after member "000000\.png" without the end-of-archive block/,
      ],
      ['mid.tar', whole.subarray(0, boundary + 1024 + 600), /is truncated inside member "000001\.png"/],
      ['inside.tar', whole.subarray(0, 600), /is truncated inside member "000000\.png"/],
      ['garbage.tar', Buffer.alloc(2048, 7), /bad tar header at byte 0/],
    ];
    for (const [name, bytes, re] of cases) {
      writeFileSync(join(dir, name), bytes);
      const e = await failure(runBatch(model, { inputs: [join(dir, name)], output: join(dir, `${name}.jsonl`) }));
      expect([name, e.kind, e.message]).toEqual([name, 'input', expect.stringMatching(re)]);
      expect(existsSync(join(dir, `${name}.jsonl`))).toBe(false);
    }
  });
});
