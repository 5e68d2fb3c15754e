/**
 * The CUDA path without a GPU (issue 12.5): `setup cuda` against a stand-in of the npm
 * provider package (same layout, dummy libraries) made here, the version check, the
 * offline error, and what `--device cuda` / `auto` / `doctor` say on a machine without CUDA.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { StyledVqError } from '../src/errors';
import { findCudaLibraries, CUDA_MARKER_FILE } from '../src/runtime/cuda-libraries';
import { CUDA_PROVIDER_PACKAGE, setupCuda } from '../src/runtime/cuda-setup';
import { cudaLibrariesInstalled, ortVersion } from '../src/runtime/onnx';
import { errorLines, runCli } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

const LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

/** A tarball laid out like com.github.asus4.onnxruntime.linux-x64-gpu, with dummy libraries. */
async function standIn(path: string, ortRelease: string): Promise<string> {
  const p = tarPack();
  const add = (name: string, body: string) => p.entry({ name: `package/${name}` }, body);
  add('package.json', JSON.stringify({ name: CUDA_PROVIDER_PACKAGE.name, version: CUDA_PROVIDER_PACKAGE.version }));
  add(
    'README.md',
    `# ONNX Runtime Plugin for Unity\n\n## Tested environment\n\n- ONNX Runtime: [${ortRelease}](https://github.com/microsoft/onnxruntime/releases/tag/v${ortRelease})\n`,
  );
  add('Plugins/Linux/x64/libonnxruntime_providers_tensorrt.so', 'not wanted');
  for (const lib of LIBS) add(`Plugins/Linux/x64/${lib}`, `dummy ${lib} ${ortRelease}`);
  p.finalize();
  const { pipeline } = await import('node:stream/promises');
  const { createWriteStream } = await import('node:fs');
  await pipeline(p, createGzip(), createWriteStream(path));
  return path;
}

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => (tmp = tempDir()));
afterEach(() => tmp.cleanup());

describe('setup cuda against a local stand-in of the npm package', () => {
  test('puts both libraries where onnxruntime-node looks (symlinks into the cache) and writes a marker; a second run changes nothing', async () => {
    const tarball = await standIn(join(tmp.dir, 'provider.tgz'), ortVersion());
    const target = join(tmp.dir, 'ort-bin');
    mkdirSync(target);
    const cacheDir = join(tmp.dir, 'cache');
    const r = await setupCuda({ from: tarball, cacheDir, targetDir: target });
    expect(r).toMatchObject({
      package: CUDA_PROVIDER_PACKAGE.name,
      packageVersion: '0.4.9',
      onnxruntime: ortVersion(),
      cuda: '13',
      targetDir: target,
    });
    expect(r.files.map((f) => [f.name, f.action])).toEqual(LIBS.map((l) => [l, 'linked']));
    for (const lib of LIBS) {
      expect(lstatSync(join(target, lib)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(target, lib))).toBe(join(cacheDir, `${CUDA_PROVIDER_PACKAGE.name}-0.4.9`, lib));
      expect(readFileSync(join(target, lib), 'utf8')).toBe(`dummy ${lib} ${ortVersion()}`);
    }
    expect(existsSync(join(target, 'libonnxruntime_providers_tensorrt.so'))).toBe(false);
    expect(JSON.parse(readFileSync(join(target, CUDA_MARKER_FILE), 'utf8'))).toMatchObject({
      onnxruntime: ortVersion(),
      packageVersion: '0.4.9',
    });

    const again = await setupCuda({ from: tarball, cacheDir, targetDir: target });
    expect(again.files.map((f) => f.action)).toEqual(['present', 'present']);

    const copied = await setupCuda({ from: tarball, cacheDir, targetDir: target, copy: true });
    expect(copied.files.map((f) => f.action)).toEqual(['copied', 'copied']);
    expect(lstatSync(join(target, LIBS[0])).isFile()).toBe(true);
  });

  test('refuses a provider package of another ONNX Runtime release, touching nothing', async () => {
    const tarball = await standIn(join(tmp.dir, 'old.tgz'), '1.28.0');
    const target = join(tmp.dir, 'ort-bin');
    mkdirSync(target);
    const err = await setupCuda({
      from: tarball,
      cacheDir: join(tmp.dir, 'cache'),
      targetDir: target,
      onnxruntimeVersion: '1.29.0',
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.message).toBe(
      `${CUDA_PROVIDER_PACKAGE.name}@0.4.9 holds ONNX Runtime 1.28.0 provider libraries, but onnxruntime-node here is 1.29.0: they must be the same release (styled-vq pins onnxruntime-node to 1.29.0)`,
    );
    for (const lib of LIBS) expect(existsSync(join(target, lib))).toBe(false);
  });

  test('does not replace provider libraries it did not install, unless overwrite', async () => {
    const tarball = await standIn(join(tmp.dir, 'provider.tgz'), ortVersion());
    const target = join(tmp.dir, 'ort-bin');
    mkdirSync(target);
    writeFileSync(join(target, LIBS[0]), 'the CUDA 12 one');
    const err = await setupCuda({ from: tarball, cacheDir: join(tmp.dir, 'cache'), targetDir: target }).catch((e) => e);
    expect(err.message).toMatch(
      /libonnxruntime_providers_cuda\.so already exists and was not put there by setup cuda .*overwrite: true/,
    );
    expect(readFileSync(join(target, LIBS[0]), 'utf8')).toBe('the CUDA 12 one');
    const r = await setupCuda({ from: tarball, cacheDir: join(tmp.dir, 'cache'), targetDir: target, overwrite: true });
    expect(r.files.map((f) => f.action)).toEqual(['linked', 'linked']);
  });

  test('a tarball that is not the provider package is refused by name', async () => {
    const bogus = join(tmp.dir, 'bogus.tgz');
    writeFileSync(bogus, 'not gzip');
    const err = await setupCuda({ from: bogus, cacheDir: join(tmp.dir, 'cache'), targetDir: tmp.dir }).catch((e) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.message).toMatch(/^Cannot unpack .*bogus\.tgz/);
  });
});

describe('setup cuda on the CLI', () => {
  test('a version mismatch is one line, exit 2', async () => {
    const tarball = await standIn(join(tmp.dir, 'old.tgz'), '1.28.0');
    const r = runCli(['setup', 'cuda', '--from', tarball, '--cache-dir', join(tmp.dir, 'cache')]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      `styled-vq: error: ${CUDA_PROVIDER_PACKAGE.name}@0.4.9 holds ONNX Runtime 1.28.0 provider libraries, but onnxruntime-node here is ${ortVersion()}: they must be the same release (styled-vq pins onnxruntime-node to ${ortVersion()})`,
    ]);
    expect(r.stdout).toBe('');
  });

  test('offline (registry unreachable, nothing cached): one line naming the cause and the --from way', () => {
    const r = runCli(['setup', 'cuda', '--cache-dir', join(tmp.dir, 'cache')], {
      env: {
        npm_config_registry: 'http://127.0.0.1:9/',
        npm_config_cache: join(tmp.dir, 'npm-cache'),
        npm_config_fetch_retries: '0',
        npm_config_offline: undefined,
      },
    });
    expect(r.code).toBe(2);
    const lines = errorLines(r.stderr).filter((l) => !/^styled-vq: downloading /.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^styled-vq: error: Cannot download com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9: the npm registry cannot be reached \(ECONNREFUSED\); on an offline machine pass --from <tarball>/,
    );
  });
});

describe('without CUDA', () => {
  const PIER = join(EXAMPLES, 'pier.jpg');

  test('--device cuda fails with one line naming the missing provider libraries and `setup cuda`', () => {
    if (cudaLibrariesInstalled()) return; // set up on this machine: the libraries are not what is missing
    const r = runCli(['encode', PIER, '--model', FIXTURE_MODEL, '--device', 'cuda']);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      'styled-vq: error: CUDA is not available: onnxruntime-node\'s CUDA provider libraries (libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so) are not installed; run `styled-vq setup cuda` (CUDA 13 + cuDNN 9; README "GPUs"), or use --device cpu',
    ]);
  });

  test("'auto' is silent: no notice, tokens on stdout", () => {
    if (cudaLibrariesInstalled()) return;
    const r = runCli(['encode', PIER, '--model', FIXTURE_MODEL]);
    expect(r.code).toBe(0);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(JSON.parse(r.stdout).tokens).toHaveLength(36);
  });

  test('each CUDA library is looked up by soname (LD_LIBRARY_PATH first) and reported found or missing', () => {
    const dir = join(tmp.dir, 'cuda-libs');
    mkdirSync(dir);
    writeFileSync(join(dir, 'libcudart.so.13'), '');
    const found = findCudaLibraries({ LD_LIBRARY_PATH: dir });
    expect(found.map((l) => l.soname)).toEqual([
      'libcuda.so.1',
      'libcudart.so.13',
      'libcublas.so.13',
      'libcublasLt.so.13',
      'libcurand.so.10',
      'libcudnn.so.9',
    ]);
    expect(found.find((l) => l.soname === 'libcudart.so.13')!.path).toBe(join(dir, 'libcudart.so.13'));
    const d = JSON.parse(
      runCli(['doctor', '--json', '--model', FIXTURE_MODEL], { env: { LD_LIBRARY_PATH: dir } }).stdout,
    );
    expect(d.cuda.libraries.find((l: { soname: string }) => l.soname === 'libcudart.so.13').path).toBe(
      join(dir, 'libcudart.so.13'),
    );
    expect(d.cuda.runs).toBe(d.providers[1].ok);
  });
});
