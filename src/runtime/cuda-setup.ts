/**
 * `setup cuda`: put onnxruntime-node's CUDA provider libraries where it loads them, from the
 * npm registry alone.
 *
 * onnxruntime-node ships without them; its own install script downloads a CUDA 12 build
 * from api.nuget.org (unreachable from many clusters, and CUDA 12 only). The npm package
 * below is a packaging of the official ONNX Runtime 1.29.0 release built for CUDA 13. A
 * provider library must come from the same ONNX Runtime release as the core that loads it,
 * which is why package.json pins onnxruntime-node to exactly 1.29.0.
 *
 * The 179 MB tarball is fetched once into a cache (never by `npm ci`), the two libraries
 * are unpacked there, and symlinked (or copied) into onnxruntime-node's folder.
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { deviceError, msg, opt, usageError } from '../errors';
import { ioError } from '../io/io-errors';
import { type CudaMarker, CUDA_MARKER_FILE, CUDA_PROVIDER_FILES, ortBinaryDir } from './cuda-libraries';

/** The provider package on the npm registry, and what it holds. */
export const CUDA_PROVIDER_PACKAGE = {
  name: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  version: '0.4.9',
  /** Folder of the libraries inside the tarball. */
  libDir: 'package/Plugins/Linux/x64/',
  cuda: '13',
} as const;

export interface SetupCudaOptions {
  /** A local tarball of the provider package instead of the registry (offline mirrors, tests). */
  from?: string;
  /** Where the tarball and unpacked libraries are kept; default $STYLED_VQ_CACHE/cuda or ~/.cache/styled-vq/cuda. */
  cacheDir?: string;
  /** Folder to put the libraries in; default onnxruntime-node's own (where it looks). */
  targetDir?: string;
  /** The ONNX Runtime version they must match; default the loaded onnxruntime-node's. */
  onnxruntimeVersion?: string;
  /** Copy instead of symlinking (when the cache will not stay). */
  copy?: boolean;
  /** Replace provider libraries that `setup cuda` did not put there (e.g. the CUDA 12 ones). */
  overwrite?: boolean;
  /** Progress lines ("downloading ..."); default none. */
  log?: (line: string) => void;
}

export interface SetupCudaResult {
  package: string;
  packageVersion: string;
  onnxruntime: string;
  cuda: string;
  targetDir: string;
  cacheDir: string;
  /** Per library: what was done. 'present': already set up, nothing changed. */
  files: { name: string; path: string; action: 'linked' | 'copied' | 'present' }[];
}

export function defaultCudaCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STYLED_VQ_CACHE) return join(resolve(env.STYLED_VQ_CACHE), 'cuda');
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'styled-vq', 'cuda');
}

export async function setupCuda(options: SetupCudaOptions = {}): Promise<SetupCudaResult> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw deviceError(
      `setup cuda supports Linux x64 only (this is ${process.platform}-${process.arch}); see README "GPUs" for the official install script`,
    );
  }
  const log = options.log ?? (() => undefined);
  const cacheDir = resolve(options.cacheDir ?? defaultCudaCacheDir());
  const targetDir = resolve(options.targetDir ?? ortBinaryDir());
  const wanted = options.onnxruntimeVersion ?? (await loadedOrtVersion());
  await mkdirp(cacheDir);

  const tarball = options.from ? localTarball(options.from) : await fetchTarball(cacheDir, log);
  const unpacked = await unpack(tarball, cacheDir, wanted, log);

  if (!existsSync(targetDir))
    throw deviceError(`onnxruntime-node's library folder ${targetDir} does not exist (is onnxruntime-node installed?)`);
  const marker: CudaMarker = {
    package: unpacked.package,
    packageVersion: unpacked.packageVersion,
    onnxruntime: unpacked.onnxruntime,
    cuda: CUDA_PROVIDER_PACKAGE.cuda,
  };
  const ours = (await readMarker(targetDir)) !== null;
  const files: SetupCudaResult['files'] = [];
  for (const name of CUDA_PROVIDER_FILES) {
    const source = join(unpacked.dir, name);
    const dest = join(targetDir, name);
    files.push({
      name,
      path: dest,
      action: await place(source, dest, { copy: !!options.copy, replace: ours || !!options.overwrite }),
    });
  }
  await writeFileAtomic(join(targetDir, CUDA_MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
  return { ...marker, packageVersion: unpacked.packageVersion, targetDir, cacheDir, files };
}

async function loadedOrtVersion(): Promise<string> {
  const { ortVersion } = await import('./onnx');
  return ortVersion();
}

function localTarball(from: string): string {
  const path = resolve(from);
  if (!existsSync(path)) throw usageError(`Cannot read the provider package ${from}: no such file`);
  return path;
}

/** `npm pack` the pinned package into the cache (npm's own cache, proxy and registry settings apply). */
async function fetchTarball(cacheDir: string, log: (line: string) => void): Promise<string> {
  const { name, version } = CUDA_PROVIDER_PACKAGE;
  const file = join(cacheDir, `${name}-${version}.tgz`);
  if (existsSync(file)) return file;
  log(`downloading ${name}@${version} (179 MB) from the npm registry into ${cacheDir}`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const partial = join(cacheDir, `.partial-${process.pid}`);
  await mkdirp(partial);
  try {
    await new Promise<void>((done, fail) => {
      execFile(
        npm,
        ['pack', `${name}@${version}`, '--pack-destination', partial, '--loglevel=error'],
        { cwd: partial, maxBuffer: 1 << 20 },
        (err, _out, stderr) => {
          if (!err) return done();
          const code = /npm (?:ERR!|error) code (\S+)/.exec(stderr)?.[1];
          const offline = code && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENOTCACHED|ECONNRESET/.test(code);
          const why =
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'npm is not on PATH'
              : offline
                ? `the npm registry cannot be reached (${code})`
                : firstErrorLine(stderr) || err.message;
          fail(
            deviceError(
              msg`Cannot download ${name}@${version}: ${why}; on an offline machine pass ${opt('from', '<tarball>')} (made with \`npm pack ${name}@${version}\` elsewhere)`,
            ),
          );
        },
      );
    });
    await fs.rename(join(partial, basename(file)), file);
  } finally {
    await fs.rm(partial, { recursive: true, force: true });
  }
  return file;
}

function firstErrorLine(stderr: string): string {
  return (
    stderr
      .split('\n')
      .map((l) => l.replace(/^npm (ERR!|error)\s*/, '').trim())
      .find((l) => l && !/^(code|syscall|errno)\b/.test(l)) ?? ''
  );
}

interface Unpacked {
  dir: string;
  package: string;
  packageVersion: string;
  onnxruntime: string;
}

/**
 * Unpack package.json, README.md (it names the ONNX Runtime release) and the two libraries
 * into `<cache>/<name>-<version>/`, once the release is the one wanted. A folder already
 * complete is reused (idempotent).
 */
async function unpack(
  tarball: string,
  cacheDir: string,
  wantedOrt: string,
  log: (line: string) => void,
): Promise<Unpacked> {
  const staging = join(cacheDir, `.unpack-${process.pid}`);
  await fs.rm(staging, { recursive: true, force: true });
  await mkdirp(staging);
  try {
    const wanted = new Map<string, string>([
      ['package/package.json', 'package.json'],
      ['package/README.md', 'README.md'],
      ...CUDA_PROVIDER_FILES.map((f) => [CUDA_PROVIDER_PACKAGE.libDir + f, f] as [string, string]),
    ]);
    const found = new Set<string>();
    const extract = tarExtract();
    extract.on('entry', (header, stream, next) => {
      const out = wanted.get(header.name);
      if (!out || header.type !== 'file') {
        stream.on('end', next);
        stream.resume();
        return;
      }
      found.add(out);
      pipeline(stream, createWriteStream(join(staging, out))).then(() => next(), next);
    });
    try {
      await pipeline(createReadStream(tarball), createGunzip(), extract);
    } catch (err) {
      throw deviceError(
        `Cannot unpack ${tarball}: ${(err as Error).message} (not the provider package tarball, or damaged; delete it and run setup cuda again)`,
      );
    }
    const missing = [...wanted.values()].filter((f) => !found.has(f));
    if (missing.length)
      throw deviceError(`${tarball} is not the CUDA provider package: it lacks ${missing.join(', ')}`);

    const pkg = JSON.parse(await fs.readFile(join(staging, 'package.json'), 'utf8')) as {
      name?: string;
      version?: string;
    };
    const readme = await fs.readFile(join(staging, 'README.md'), 'utf8');
    // "- ONNX Runtime: [1.29.0](https://github.com/microsoft/onnxruntime/releases/tag/v1.29.0)"
    const ort = /ONNX Runtime:\s*\[?v?(\d+\.\d+\.\d+)/.exec(readme)?.[1];
    if (!pkg.name || !pkg.version || !ort)
      throw deviceError(
        `${tarball}: cannot tell which ONNX Runtime release its libraries are (no "ONNX Runtime: x.y.z" in its README)`,
      );

    if (ort !== wantedOrt) {
      throw deviceError(
        `${pkg.name}@${pkg.version} holds ONNX Runtime ${ort} provider libraries, but onnxruntime-node here is ${wantedOrt}: ` +
          `they must be the same release (styled-vq pins onnxruntime-node to ${wantedOrt})`,
      );
    }
    const dir = join(cacheDir, `${pkg.name}-${pkg.version}`);
    if (!(await complete(dir))) {
      log(`unpacking the provider libraries into ${dir}`);
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rename(staging, dir);
    }
    return { dir, package: pkg.name, packageVersion: pkg.version, onnxruntime: ort };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function complete(dir: string): Promise<boolean> {
  return CUDA_PROVIDER_FILES.every((f) => existsSync(join(dir, f))) && existsSync(join(dir, 'package.json'));
}

/** Symlink (or copy) `source` to `dest`, atomically; leaves alone a link that is already right. */
async function place(
  source: string,
  dest: string,
  how: { copy: boolean; replace: boolean },
): Promise<'linked' | 'copied' | 'present'> {
  const existing = await fs.lstat(dest).catch(() => null);
  if (existing) {
    if (existing.isSymbolicLink() && (await fs.readlink(dest)) === source && !how.copy) return 'present';
    if (!how.replace) {
      throw deviceError(
        msg`${dest} already exists and was not put there by setup cuda (the CUDA 12 install script?); pass ${opt('overwrite', true)} to replace it`,
      );
    }
  }
  const tmp = `${dest}.styled-vq-${process.pid}`;
  try {
    await fs.rm(tmp, { force: true });
    let action: 'linked' | 'copied' = 'linked';
    if (how.copy) action = 'copied';
    else await fs.symlink(source, tmp).catch(() => (action = 'copied'));
    if (action === 'copied') await fs.copyFile(source, tmp);
    await fs.rename(tmp, dest);
    return action;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw ioError(err, dest, 'write');
  }
}

async function readMarker(dir: string): Promise<CudaMarker | null> {
  try {
    return JSON.parse(await fs.readFile(join(dir, CUDA_MARKER_FILE), 'utf8')) as CudaMarker;
  } catch {
    return null;
  }
}

async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw ioError(err, path, 'write');
  }
}

async function mkdirp(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    throw ioError(err, dir, 'create folder');
  }
}
