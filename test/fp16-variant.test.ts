/**
 * The fp16 variant of a package (docs/model-package.md, "fp16 variant", issue 12.3):
 * training/fp16.py (the real script, /usr/bin/python3 with the onnx package, as CI
 * installs it) adds float16 encoder and decoder graphs to a copy of the fixture package;
 * `dtype: 'fp16'` runs them with their own fingerprint, close to the float32 graphs.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StyledVqError } from '../src/errors';
import { Model } from '../src/model/model';
import { runCli, runCliInProcess } from './helpers/cli';
import { copyFixtureModel, EXAMPLES, FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';

let tmp: ReturnType<typeof tempDir>;
let pkg: string;
let fp32Fingerprint: string;

function addFp16(dir: string, ...extra: string[]) {
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'training', 'fp16.py'), dir, ...extra], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
const editManifest = (dir: string, edit: (m: Record<string, any>) => void) => {
  const m = manifestOf(dir);
  edit(m);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(m, null, 2));
};

/** A copy of the package that already has its fp16 variant (no Python run). */
function copyOf(dir: string, name: string): string {
  const dest = join(tmp.dir, name);
  cpSync(dir, dest, { recursive: true });
  return dest;
}

async function loadError(dir: string, dtype: 'fp16' | 'fp32' = 'fp16'): Promise<StyledVqError> {
  try {
    await Model.load(dir, { device: 'cpu', dtype });
  } catch (err) {
    expect(err).toBeInstanceOf(StyledVqError);
    return err as StyledVqError;
  }
  throw new Error('expected the load to fail');
}

/** The fixture's parity images (smooth random fields, training/styled_vq/export.py) as a batch. */
function parityImages() {
  const bundle = JSON.parse(readFileSync(join(FIXTURE_MODEL, 'parity.json'), 'utf8'));
  return { data: Float32Array.from(bundle.image.data as number[]), dims: bundle.image.shape as number[] };
}

beforeAll(() => {
  tmp = tempDir();
  pkg = copyFixtureModel(tmp.dir, 'with-fp16');
  fp32Fingerprint = manifestOf(pkg).fingerprint;
  addFp16(pkg);
});
afterAll(() => tmp.cleanup());

describe('training/fp16.py', () => {
  test('adds float16 encoder and decoder beside the float32 graphs, with their own fingerprint', () => {
    const m = manifestOf(pkg);
    expect(m.fingerprint).toBe(fp32Fingerprint); // the package itself is unchanged
    expect(Object.keys(m.variants.fp16.files).sort()).toEqual(['decoder', 'encoder']);
    expect(m.variants.fp16.files.encoder.path).toBe('encoder.fp16.onnx');
    expect(m.variants.fp16.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(m.variants.fp16.fingerprint).not.toBe(fp32Fingerprint);
    // float16 weights: the graph shrinks (to about half where the weights dominate)
    expect(m.variants.fp16.files.decoder.bytes).toBeLessThan(m.files.decoder.bytes * 0.7);
  });
});

describe('dtype fp16', () => {
  test('runs the float16 graphs: latents and images close to float32, tokens nearly all equal', async () => {
    const fp32 = await Model.load(pkg, { device: 'cpu' });
    const fp16 = await Model.load(pkg, { device: 'cpu', dtype: 'fp16' });
    try {
      expect(fp16.dtype).toBe('fp16');
      expect(fp16.fingerprint).toBe(manifestOf(pkg).variants.fp16.fingerprint);
      expect(fp16.fingerprints).toEqual([fp32.fingerprint, fp16.fingerprint]);
      const images = parityImages();
      const [a, b] = [await fp32.encode(images), await fp16.encode(images)];
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < a.data.length; i++) {
        worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
        scale = Math.max(scale, Math.abs(a.data[i]));
      }
      expect(worst).toBeGreaterThan(0); // really other graphs
      expect(worst).toBeLessThan(0.01 * scale);
      const [ta, tb] = [await fp32.quantize(a), await fp32.quantize(b)];
      const equal = ta.data.filter((t, i) => t === tb.data[i]).length;
      expect(equal / ta.data.length).toBeGreaterThanOrEqual(0.9);
      const [da, db] = [await fp32.decode(a), await fp16.decode(a)];
      const imageDiff = da.data.reduce((m, v, i) => Math.max(m, Math.abs(v - db.data[i])), 0);
      expect(imageDiff).toBeLessThan(0.02);
    } finally {
      await fp32.dispose();
      await fp16.dispose();
    }
  });

  test('ops kept in float32 (--keep-fp32) still give the same outputs as float32, within fp16 rounding', async () => {
    const dir = copyFixtureModel(tmp.dir, 'keep');
    addFp16(dir, '--keep-fp32', 'LayerNormalization,Softmax');
    expect(manifestOf(dir).variants.fp16.keep_fp32).toEqual(['LayerNormalization', 'Softmax']);
    const model = await Model.load(dir, { device: 'cpu', dtype: 'fp16' });
    try {
      const latents = await model.encode(parityImages());
      expect(latents.dims).toEqual([2, 36, model.latentDim]);
      expect(latents.data.every(Number.isFinite)).toBe(true);
    } finally {
      await model.dispose();
    }
  });

  test('CLI: tokens made with --dtype fp16 carry its fingerprint and decode with the float32 graphs', () => {
    const out = join(tmp.dir, 'pier.json');
    const enc = runCli([
      'encode',
      join(EXAMPLES, 'pier.jpg'),
      '--model',
      pkg,
      '--device',
      'cpu',
      '--dtype',
      'fp16',
      '-o',
      out,
    ]);
    expect(enc.stderr).not.toMatch(/error/);
    expect(enc.code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8')).model.fingerprint).toBe(manifestOf(pkg).variants.fp16.fingerprint);
    const dec = runCli(['decode', out, '--model', pkg, '--device', 'cpu', '-o', join(tmp.dir, 'pier.png')]);
    expect(dec.code).toBe(0);
    const info = runCli(['info', '--model', pkg]);
    expect(info.stdout).toContain(`fp16 (fingerprint ${manifestOf(pkg).variants.fp16.fingerprint})`);
  });

  test('batch: resuming or rerunning an output made with the other dtype names --dtype, not only --model', async () => {
    const images = join(tmp.dir, 'dtype-images');
    mkdirSync(images);
    for (const f of ['pier.jpg', 'glacier.jpg']) cpSync(join(EXAMPLES, f), join(images, f));
    const out = join(tmp.dir, 'dtype.jsonl');
    const batch = (...extra: string[]) =>
      runCliInProcess(['batch', images, '-o', out, '--model', pkg, '--device', 'cpu', '-q', ...extra]);
    expect((await batch('--dtype', 'fp16')).code).toBe(0);
    const fp16 = manifestOf(pkg).variants.fp16.fingerprint;

    // A finished output (done marker), rerun with the float32 graphs.
    const rerun = await batch('--resume');
    expect(rerun.code).toBe(1);
    expect(rerun.stderr.trim().split('\n')).toEqual([
      `styled-vq: error: ${out} (marked done) was made with --dtype fp16 (model "${manifestOf(pkg).name}", fingerprint ${fp16}), this run uses --dtype fp32 (fingerprint ${fp32Fingerprint}); rerun with --dtype fp16, or use a new -o, or --overwrite to redo it`,
    ]);

    // An interrupted one (one record, no marker), resumed with the float32 graphs, then with the same dtype.
    rmSync(`${out}.done.json`);
    writeFileSync(out, `${readFileSync(out, 'utf8').split('\n')[0]}\n`);
    const resumed = await batch('--resume');
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toMatch(
      new RegExp(
        `line 1 was made with --dtype fp16 \\(.*fingerprint ${fp16}\\), this run uses --dtype fp32 .*; resume with --dtype fp16, or use a new -o, or --force to start over`,
      ),
    );
    expect((await batch('--resume', '--dtype', 'fp16')).code).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2);

    // A finished .npy output without its marker: the sources sidecar says which graphs made it.
    const npy = join(tmp.dir, 'dtype.npy');
    const args = ['batch', images, '-o', npy, '--model', pkg, '--device', 'cpu', '-q'];
    expect((await runCliInProcess([...args, '--dtype', 'fp16'])).code).toBe(0);
    rmSync(`${npy}.done.json`);
    expect((await runCliInProcess([...args, '--resume'])).stderr).toMatch(
      /dtype\.sources\.json was made with --dtype fp16 .*; resume with --dtype fp16, or /,
    );
  });

  test('a package without fp16 graphs: one line that says how to add them, naming --dtype', async () => {
    const plain = copyFixtureModel(tmp.dir, 'plain');
    const err = await loadError(plain);
    expect(err.kind).toBe('model');
    expect(err.message).toMatch(/has no fp16 graphs .*training\/fp16\.py .*dtype fp32/);
    const cli = await runCliInProcess(['encode', join(EXAMPLES, 'pier.jpg'), '--model', plain, '--dtype', 'fp16']);
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toContain('--dtype fp32');
    const bad = await runCliInProcess(['encode', join(EXAMPLES, 'pier.jpg'), '--dtype', 'fp8']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Unsupported dtype "fp8". Should be one of: fp32, fp16.');
  });

  test('a damaged fp16 graph, a wrong variant fingerprint and a variant replacing the codebook are refused', async () => {
    const damaged = copyOf(pkg, 'damaged');
    writeFileSync(join(damaged, 'encoder.fp16.onnx'), 'not a graph');
    expect((await loadError(damaged)).message).toMatch(/encoder\.fp16\.onnx has \d+ bytes, model\.json says/);
    // The float32 graphs do not read the variant's files.
    await (await Model.load(damaged, { device: 'cpu' })).dispose();

    const wrong = copyOf(pkg, 'wrong');
    editManifest(wrong, (m) => {
      m.variants.fp16.fingerprint = '0123456789abcdef';
    });
    expect((await loadError(wrong)).message).toMatch(/variants\.fp16\.fingerprint 0123456789abcdef does not match/);

    const codebook = copyOf(pkg, 'codebook');
    editManifest(codebook, (m) => {
      m.variants.fp16.files.codebook = m.files.codebook;
    });
    expect((await loadError(codebook, 'fp32')).message).toMatch(
      /variants\.fp16\.files\.codebook: a variant replaces only encoder and decoder/,
    );
  });
});
