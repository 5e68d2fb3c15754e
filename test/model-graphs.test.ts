/**
 * What the loader reads out of the graphs themselves (issue 15.1, 15.4): every external-data
 * file a graph names is the one model.json lists, hashes and fingerprints, and runs from
 * the verified bytes; the sizes in model.json agree with the graphs' inputs and outputs
 * before anything is allocated from them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StyledVqError } from '../src/errors';
import { GRAPH_ROLES } from '../src/model/manifest';
import { Model } from '../src/model/model';
import { computeFingerprint, sha256File } from '../src/model/verify';
import { runCli } from './helpers/cli';
import { copyExternalDataModel, copyFixtureModel, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

type ManifestJson = Record<string, any>;

async function loadError(dir: string): Promise<StyledVqError> {
  const err = await Model.load(dir, { device: 'cpu' }).then(
    async (m) => {
      await m.dispose();
      throw new Error('expected the load to fail');
    },
    (e) => e,
  );
  expect(err).toBeInstanceOf(StyledVqError);
  expect(err.kind).toBe('model');
  return err;
}

/**
 * Edit model.json as a careful attacker would: every listed file's size and sha256 and the
 * fingerprint recomputed, so only the checks under test can catch the edit.
 */
async function editPackage(dir: string, edit: (m: ManifestJson) => void): Promise<void> {
  const file = join(dir, 'model.json');
  const m = JSON.parse(readFileSync(file, 'utf8'));
  edit(m);
  const hashes: Record<string, { sha256: string; data?: string | null }> = {};
  for (const role of GRAPH_ROLES) {
    const entries = [m.files[role], m.files[role].data].filter(Boolean);
    for (const e of entries) {
      e.sha256 = await sha256File(join(dir, e.path));
      e.bytes = readFileSync(join(dir, e.path)).length;
    }
    hashes[role] = { sha256: m.files[role].sha256, data: m.files[role].data?.sha256 };
  }
  m.fingerprint = computeFingerprint(hashes as never, m.prefix_fill?.values);
  writeFileSync(file, JSON.stringify(m, null, 2));
}

/** Rename the external-data location inside dequantize.onnx (same length keeps the protobuf valid). */
function relocate(dir: string, location: string): void {
  const file = join(dir, 'dequantize.onnx');
  const bytes = readFileSync(file);
  const at = bytes.indexOf('dequantize.onnx.data');
  expect(at).toBeGreaterThan(0);
  expect(location).toHaveLength('dequantize.onnx.data'.length);
  bytes.write(location, at, 'latin1');
  writeFileSync(file, bytes);
}

const TOKENS = Int32Array.from({ length: 72 }, (_, i) => (i * 37) % 1024);

async function dequantizeWith(dir: string): Promise<Float32Array> {
  const model = await Model.load(dir, { device: 'cpu' });
  try {
    return (await model.dequantize({ data: TOKENS, dims: [2, 36] })).data as Float32Array;
  } finally {
    await model.dispose();
  }
}

describe('integrity 15.1: external data', () => {
  test('an exporter-made package with external data verifies (Python fingerprint) and runs its listed weights', async () => {
    const dir = copyExternalDataModel(tmp.dir);
    // Opened from another working directory: the weights come from the verified bytes, not
    // from a path ONNX Runtime would resolve against the current directory.
    const cwd = process.cwd();
    process.chdir(tmp.dir);
    try {
      expect(await dequantizeWith(dir)).toEqual(await dequantizeWith(FIXTURE_MODEL));
    } finally {
      process.chdir(cwd);
    }
  });

  test('external data that model.json does not list is refused, even with a recomputed fingerprint', async () => {
    const dir = copyExternalDataModel(tmp.dir);
    await editPackage(dir, (m) => {
      m.files.dequantize.data = null;
    });
    expect((await loadError(dir)).message).toMatch(
      /dequantize\.onnx names external data "dequantize\.onnx\.data" \(tensor "cb\.embedding"\), which model\.json does not list \(files\.dequantize\.data is null\)/,
    );
    // The audit's case: `info` used to say "all files verified" here.
    const r = runCli(['info', '--model', dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/which model\.json does not list/);
  });

  test('a graph naming another file of the package than the listed one is refused', async () => {
    const dir = copyExternalDataModel(tmp.dir);
    writeFileSync(join(dir, 'dequantize.onnx.dat2'), readFileSync(join(dir, 'dequantize.onnx.data')));
    relocate(dir, 'dequantize.onnx.dat2');
    await editPackage(dir, () => {});
    expect((await loadError(dir)).message).toMatch(
      /names external data "dequantize\.onnx\.dat2" .*which model\.json does not list \(files\.dequantize\.data is "dequantize\.onnx\.data"\)/,
    );
  });

  test('locations leaving the package folder are refused: "..", absolute, a symlink out', async () => {
    for (const location of ['../equantize.onnx.da', '/equantize.onnx.data']) {
      const dir = copyExternalDataModel(tmp.dir, `m${location.length}${location[0] === '/' ? 'abs' : 'up'}`);
      relocate(dir, location);
      await editPackage(dir, () => {});
      const escaped = location.replace(/\./g, '\\.');
      expect((await loadError(dir)).message).toMatch(
        new RegExp(
          `dequantize\\.onnx names external data "${escaped}" \\(tensor "cb\\.embedding"\\) outside the package folder`,
        ),
      );
    }
    const dir = copyExternalDataModel(tmp.dir, 'symlinked');
    const outside = join(tmp.dir, 'elsewhere.data');
    renameSync(join(dir, 'dequantize.onnx.data'), outside);
    symlinkSync(outside, join(dir, 'dequantize.onnx.data'));
    expect((await loadError(dir)).message).toMatch(
      /dequantize\.onnx\.data resolves to .*elsewhere\.data, outside the package folder/,
    );
  });

  test('a FIFO in place of the external data is refused, not waited on', async () => {
    const dir = copyExternalDataModel(tmp.dir);
    rmSync(join(dir, 'dequantize.onnx.data'));
    execFileSync('mkfifo', [join(dir, 'dequantize.onnx.data')]);
    expect((await loadError(dir)).message).toMatch(/dequantize\.onnx\.data is not a file/);
  });

  test('changed external data is refused at load, and when replaced after load, when its session opens', async () => {
    const dir = copyExternalDataModel(tmp.dir);
    const file = join(dir, 'dequantize.onnx.data');
    const original = readFileSync(file);
    const changed = Buffer.from(original);
    changed[100] ^= 0xff;
    writeFileSync(file, changed);
    expect((await loadError(dir)).message).toMatch(/dequantize\.onnx\.data does not match its sha256/);

    writeFileSync(file, original);
    const model = await Model.load(dir, { device: 'cpu' });
    try {
      writeFileSync(file, changed);
      await expect(model.dequantize({ data: TOKENS, dims: [2, 36] })).rejects.toThrow(
        /dequantize\.onnx\.data does not match its sha256/,
      );
    } finally {
      await model.dispose();
    }
  });
});

describe('integrity 15.4: model.json sizes agree with the graphs', () => {
  const cases: [string, (m: ManifestJson) => void, RegExp][] = [
    [
      'image_size 128',
      (m) => {
        m.config.image_size = 128;
        m.preprocessing.image_size = 128;
      },
      /decoder\.onnx output "image" has shape \[batch,3,64,64\]; model\.json says \[B,3,image_size,image_size\] = \[B,3,128,128\]/,
    ],
    [
      'image_size 4096 (within the absolute bound)',
      (m) => {
        m.config.image_size = 4096;
        m.preprocessing.image_size = 4096;
      },
      /decoder\.onnx output "image" has shape \[batch,3,64,64\]; model\.json says .* = \[B,3,4096,4096\]/,
    ],
    [
      'num_tokens 37',
      (m) => {
        m.config.num_tokens = 37;
        delete m.prefix_fill;
      },
      /codebook\.onnx input "latents" has shape \[batch,36,16\]; model\.json says \[B,num_tokens,latent_dim\] = \[B,37,16\]/,
    ],
    [
      'latent_dim 17',
      (m) => {
        m.config.latent_dim = 17;
        m.codebook.dim = 17;
        delete m.prefix_fill;
      },
      /codebook\.onnx input "latents" has shape \[batch,36,16\]; model\.json says \[B,num_tokens,latent_dim\] = \[B,36,17\]/,
    ],
    [
      'codebook.size 2048',
      (m) => {
        m.codebook.size = 2048;
      },
      /dequantize\.onnx holds a codebook table of \[1024,16\]; model\.json says codebook\.size 2048 = 2048 rows of 16/,
    ],
    [
      'per_position true',
      (m) => {
        m.codebook.per_position = true;
      },
      /codebook\.size 1024 x num_tokens 36 \(per_position\) = 36864 rows/,
    ],
    [
      'preprocessing.range [0, 1]',
      (m) => {
        m.preprocessing.range = [0, 1];
      },
      /preprocessing\.range \[0,1\] is not supported \(expected \[-1, 1\]\)/,
    ],
    [
      'preprocessing.exif_orientation false',
      (m) => {
        m.preprocessing.exif_orientation = false;
      },
      /preprocessing\.exif_orientation false is not supported/,
    ],
  ];

  test.each(cases)(
    'an edited %s is refused when the package opens, before anything is allocated',
    async (_, edit, pattern) => {
      const dir = copyFixtureModel(tmp.dir);
      await editPackage(dir, edit);
      const before = process.memoryUsage().rss;
      expect((await loadError(dir)).message).toMatch(pattern);
      expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    },
  );
});
