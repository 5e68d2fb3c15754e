/**
 * Model packages: verification of model.json, file sizes, sha256 and the fingerprint, and
 * the resolution order --model, $STYLED_VQ_MODEL, models/.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelInfo } from '../src/api/info';
import { StyledVqError } from '../src/errors';
import { readManifest } from '../src/model/manifest';
import { Model } from '../src/model/model';
import { defaultModelDir, resolveModelDir } from '../src/model/resolve';
import { computeFingerprint, verifyPackage } from '../src/model/verify';
import { checkRecordForModel, makeRecord } from '../src/tokens/record';
import { copyFixtureModel, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

async function loadError(dir: string): Promise<StyledVqError> {
  try {
    await Model.load(dir, { device: 'cpu' });
  } catch (err) {
    expect(err).toBeInstanceOf(StyledVqError);
    return err as StyledVqError;
  }
  throw new Error('expected the load to fail');
}

const editManifest = (dir: string, edit: (m: Record<string, any>) => void) => {
  const file = join(dir, 'model.json');
  const m = JSON.parse(readFileSync(file, 'utf8'));
  edit(m);
  writeFileSync(file, JSON.stringify(m, null, 2));
};

describe('model package verification', () => {
  test('the fixture package verifies and its fingerprint recomputes', async () => {
    const manifest = await readManifest(FIXTURE_MODEL);
    await verifyPackage(FIXTURE_MODEL, manifest);
    const model = await Model.load(FIXTURE_MODEL, { device: 'cpu' });
    expect(model.name).toBe('fixture-tiny');
    expect(model.numTokens).toBe(36);
    expect(model.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    await model.dispose();
  });

  test('fingerprint follows docs/model-package.md', () => {
    const h = (c: string) => ({ sha256: c.repeat(64) });
    const a = computeFingerprint({ codebook: h('a'), decoder: h('b'), dequantize: h('c'), encoder: h('d') });
    expect(a).toHaveLength(16);
    expect(
      computeFingerprint({
        codebook: h('a'),
        decoder: h('b'),
        dequantize: h('c'),
        encoder: { sha256: 'd'.repeat(64), data: 'e'.repeat(64) },
      }),
    ).not.toBe(a);
  });

  test('a missing ONNX file is refused, naming the file', async () => {
    const dir = copyFixtureModel(tmp.dir);
    rmSync(join(dir, 'decoder.onnx'));
    const err = await loadError(dir);
    expect(err.kind).toBe('model');
    expect(err.message).toMatch(/missing decoder\.onnx/);
  });

  test('an altered ONNX file (same size) is refused, naming the file', async () => {
    const dir = copyFixtureModel(tmp.dir);
    const file = join(dir, 'codebook.onnx');
    const bytes = readFileSync(file);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(file, bytes);
    const err = await loadError(dir);
    expect(err.message).toMatch(/codebook\.onnx does not match its sha256/);
  });

  test('a truncated ONNX file is refused, naming the file', async () => {
    const dir = copyFixtureModel(tmp.dir);
    const file = join(dir, 'encoder.onnx');
    writeFileSync(file, readFileSync(file).subarray(0, 1000));
    expect((await loadError(dir)).message).toMatch(/encoder\.onnx has 1000 bytes, model\.json says \d+/);
  });

  test('integrity 15.3: a package file that is a symlink leaving the package is refused; one inside is fine', async () => {
    const dir = copyFixtureModel(tmp.dir);
    // The real bytes moved outside, with a matching sha256: still refused (names the target).
    const outside = join(tmp.dir, 'elsewhere.onnx');
    renameSync(join(dir, 'encoder.onnx'), outside);
    symlinkSync(outside, join(dir, 'encoder.onnx'));
    const err = await loadError(dir);
    expect(err.kind).toBe('model');
    expect(err.message).toMatch(/encoder\.onnx resolves to .*elsewhere\.onnx, outside the package folder/);
    // A link within the package folder is allowed.
    rmSync(join(dir, 'encoder.onnx'));
    renameSync(outside, join(dir, 'encoder-real.onnx'));
    symlinkSync('encoder-real.onnx', join(dir, 'encoder.onnx'));
    const model = await Model.load(dir, { device: 'cpu' });
    await model.dispose();
  });

  test('integrity 15.4 / 10.13: an absurd size in model.json is refused before anything is allocated', async () => {
    for (const [edit, pattern] of [
      [
        (m: Record<string, any>) => {
          m.config.image_size = 2449490;
          m.preprocessing.image_size = 2449490;
        },
        /config\.image_size 2449490 is beyond the supported maximum 4096/,
      ],
      [
        (m: Record<string, any>) => {
          m.config.num_tokens = 1e9;
        },
        /config\.num_tokens 1000000000 is beyond the supported maximum/,
      ],
      [
        (m: Record<string, any>) => {
          m.config.latent_dim = 1e9;
          m.codebook.dim = 1e9;
        },
        /config\.latent_dim 1000000000 is beyond/,
      ],
      [
        (m: Record<string, any>) => {
          m.codebook.size = 2 ** 40;
        },
        /codebook\.size \d+ is beyond the supported maximum/,
      ],
    ] as const) {
      const dir = copyFixtureModel(tmp.dir, `m${Math.random().toString(36).slice(2)}`);
      editManifest(dir, edit);
      const before = process.memoryUsage().rss;
      const err = await loadError(dir);
      expect(err.kind).toBe('model');
      expect(err.message).toMatch(pattern);
      expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    }
  });

  test('integrity 15.5: NaN or infinite latents are refused with their position, never token 0', async () => {
    const model = await Model.load(FIXTURE_MODEL, { device: 'cpu' });
    try {
      const t = model.numTokens;
      const d = model.latentDim;
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        const data = new Float32Array(2 * t * d);
        data[t * d + 3 * d + 1] = bad;
        await expect(model.quantize({ data, dims: [2, t, d] })).rejects.toThrow(
          /Latent value (NaN|-?Infinity) \(image 1, position 3, dimension 1\) is not finite/,
        );
      }
      const ok = await model.quantize({ data: new Float32Array(t * d), dims: [1, t, d] });
      expect(ok.data.length).toBe(t);
    } finally {
      await model.dispose();
    }
  });

  test('integrity 15.2: a graph replaced after load() is refused when its session opens', async () => {
    const dir = copyFixtureModel(tmp.dir);
    const model = await Model.load(dir, { device: 'cpu' });
    try {
      const file = join(dir, 'decoder.onnx');
      const bytes = readFileSync(file);
      bytes[bytes.length - 10] ^= 0xff;
      writeFileSync(file, bytes);
      const t = model.numTokens;
      const d = model.latentDim;
      await expect(model.decode({ data: new Float32Array(t * d), dims: [1, t, d] })).rejects.toThrow(
        /decoder\.onnx does not match its sha256/,
      );
    } finally {
      await model.dispose();
    }
  });

  test('integrity 10.13: graphs swapped between roles (hashes and fingerprint updated) are refused at load', async () => {
    const dir = copyFixtureModel(tmp.dir);
    renameSync(join(dir, 'encoder.onnx'), join(dir, 'tmp.onnx'));
    renameSync(join(dir, 'decoder.onnx'), join(dir, 'encoder.onnx'));
    renameSync(join(dir, 'tmp.onnx'), join(dir, 'decoder.onnx'));
    editManifest(dir, (m) => {
      for (const k of ['sha256', 'bytes'])
        [m.files.encoder[k], m.files.decoder[k]] = [m.files.decoder[k], m.files.encoder[k]];
      const hashes: Record<string, { sha256: string }> = {};
      for (const role of ['codebook', 'decoder', 'dequantize', 'encoder'])
        hashes[role] = { sha256: m.files[role].sha256 };
      m.fingerprint = computeFingerprint(hashes as any, m.prefix_fill?.values);
    });
    // Refused when the package opens: the graphs are read and checked against the manifest.
    const err = await loadError(dir);
    expect(err.kind).toBe('model');
    expect(err.message).toMatch(/decoder\.onnx has inputs \[image\].*expected input "latents"/);
  });

  test('a manifest whose fingerprint disagrees with its files is refused', async () => {
    const dir = copyFixtureModel(tmp.dir);
    editManifest(dir, (m) => {
      m.fingerprint = '0123456789abcdef';
    });
    expect((await loadError(dir)).message).toMatch(
      /fingerprint 0123456789abcdef does not match its files \(computed [0-9a-f]{16}\)/,
    );
  });

  test('same_tokens_as: token files of a listed earlier package decode without force; bad entries are refused', async () => {
    const dir = copyFixtureModel(tmp.dir);
    const older = { name: 'fixture-older', fingerprint: 'fedcba9876543210' };
    editManifest(dir, (m) => {
      m.same_tokens_as = [older];
    });
    const model = await Model.load(dir, { device: 'cpu' });
    expect(model.fingerprints).toContain(older.fingerprint);
    expect(modelInfo(model).sameTokensAs).toEqual([older]);
    const tokens = Array.from({ length: model.numTokens }, (_, i) => i % model.codebookSize);
    const fromOlder = makeRecord(older, { source: 'a.png', tokens, originalSize: [64, 64] });
    expect(() => checkRecordForModel(fromOlder, model, 'tokens.json')).not.toThrow();
    const stranger = makeRecord({ ...older, fingerprint: '1111111111111111' }, { source: 'a.png', tokens });
    expect(() => checkRecordForModel(stranger, model, 'tokens.json')).toThrow(/made by model "fixture-older"/);

    const own = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).fingerprint;
    for (const [bad, message] of [
      [{ name: 'x' }, /same_tokens_as must be an array/],
      [[{ name: '', fingerprint: older.fingerprint }], /same_tokens_as\[0\]\.name must be a non-empty string/],
      [[older, { name: 'y', fingerprint: 'FEDCBA' }], /same_tokens_as\[1\]\.fingerprint must be 16 lowercase hex/],
      [[{ name: 'me', fingerprint: own }], /same_tokens_as\[0\] is the package itself/],
    ] as const) {
      editManifest(dir, (m) => {
        m.same_tokens_as = bad;
      });
      expect((await loadError(dir)).message).toMatch(message);
    }
  });

  test('wrong format, newer version, bad JSON, missing model.json, missing directory', async () => {
    const dir = copyFixtureModel(tmp.dir);
    editManifest(dir, (m) => {
      m.format = 'something-else';
    });
    expect((await loadError(dir)).message).toMatch(
      /model\.json: format is "something-else", expected "styled-vq-model"/,
    );
    editManifest(dir, (m) => {
      m.format = 'styled-vq-model';
      m.version = 2;
    });
    expect((await loadError(dir)).message).toMatch(/version 2 is newer than this styled-vq supports/);
    writeFileSync(join(dir, 'model.json'), '{"format": ');
    expect((await loadError(dir)).message).toMatch(/model\.json is not valid JSON/);
    rmSync(join(dir, 'model.json'));
    expect((await loadError(dir)).message).toMatch(/has no model\.json/);
    expect((await loadError(join(tmp.dir, 'nowhere'))).message).toMatch(/Model directory .*nowhere does not exist/);
  });

  test('file paths must stay inside the package', async () => {
    const dir = copyFixtureModel(tmp.dir);
    editManifest(dir, (m) => {
      m.files.encoder.path = '../encoder.onnx';
    });
    expect((await loadError(dir)).message).toMatch(
      /files\.encoder\.path "\.\.\/encoder\.onnx" must stay inside the package directory/,
    );
  });

  test('an unsupported device name is a usage error listing the devices', async () => {
    await expect(Model.load(FIXTURE_MODEL, { device: 'tpu' as never })).rejects.toThrow(
      'Unsupported device "tpu". Should be one of: auto, cpu, cuda, webgpu.',
    );
  });
});

describe('model resolution', () => {
  test('--model wins over $STYLED_VQ_MODEL, which wins over the default', () => {
    expect(resolveModelDir('a/b', { STYLED_VQ_MODEL: 'c/d' })).toEqual({ dir: 'a/b', source: 'option' });
    expect(resolveModelDir(undefined, { STYLED_VQ_MODEL: 'c/d' })).toEqual({ dir: 'c/d', source: 'env' });
  });

  test('models/: DEFAULT names the package, else the only one; none or several is explained', () => {
    const root = join(tmp.dir, 'models');
    expect(() => defaultModelDir(root)).toThrow(
      /No default model is installed .*; pass model DIR or set STYLED_VQ_MODEL=DIR/,
    );
    mkdirSync(root);
    copyFixtureModel(root, 'one');
    expect(defaultModelDir(root)).toBe(join(root, 'one'));
    copyFixtureModel(root, 'two');
    expect(() => defaultModelDir(root)).toThrow(/holds several models \(one, two\) and no DEFAULT file/);
    writeFileSync(join(root, 'DEFAULT'), 'two\n');
    expect(defaultModelDir(root)).toBe(join(root, 'two'));
    writeFileSync(join(root, 'DEFAULT'), 'three\n');
    expect(() => defaultModelDir(root)).toThrow(/DEFAULT names "three", but .* holds no model\.json/);
  });
});
