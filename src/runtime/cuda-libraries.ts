/**
 * What the CUDA execution provider needs on this machine, found (or not) by name, so a
 * failure can say "libcudnn.so.9 not found" instead of ONNX Runtime's dlopen text.
 *
 * The provider library styled-vq installs (`setup cuda`, see cuda-setup.ts) is ONNX Runtime
 * 1.29.0 built for CUDA 13; these are the sonames it links against.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** onnxruntime-node's own folder: its binding, libonnxruntime.so.1 and (when set up) the CUDA provider. */
export function ortBinaryDir(): string {
  const pkg = require.resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

/** The two libraries onnxruntime-node loads from its own folder for `cuda`. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'] as const;
export const CUDA_PROVIDER_LIBRARY = CUDA_PROVIDER_FILES[0];

/** Written beside the provider libraries by `setup cuda`: where they came from. */
export const CUDA_MARKER_FILE = 'styled-vq-cuda.json';

export interface CudaMarker {
  package: string;
  packageVersion: string;
  onnxruntime: string;
  cuda: string;
}

/** The CUDA libraries the provider loads, by soname, with what they are for users. */
export const CUDA_RUNTIME_LIBRARIES: readonly { soname: string; what: string }[] = [
  { soname: 'libcuda.so.1', what: 'NVIDIA driver' },
  { soname: 'libcudart.so.13', what: 'CUDA 13 runtime' },
  { soname: 'libcublas.so.13', what: 'cuBLAS 13' },
  { soname: 'libcublasLt.so.13', what: 'cuBLASLt 13' },
  { soname: 'libcurand.so.10', what: 'cuRAND (CUDA 13)' },
  { soname: 'libcudnn.so.9', what: 'cuDNN 9' },
];

export interface LibraryLookup {
  soname: string;
  what: string;
  /** Where the dynamic loader would find it, or null. */
  path: string | null;
}

export function cudaProviderInstalled(dir = ortBinaryDir()): boolean {
  return CUDA_PROVIDER_FILES.every((f) => existsSync(join(dir, f)));
}

export function readCudaMarker(dir = ortBinaryDir()): CudaMarker | null {
  try {
    return JSON.parse(readFileSync(join(dir, CUDA_MARKER_FILE), 'utf8')) as CudaMarker;
  } catch {
    return null;
  }
}

/** sonames in the loader cache (`ldconfig -p`), soname -> path. Empty where ldconfig is absent. */
function loaderCache(): Map<string, string> {
  const cache = new Map<string, string>();
  for (const exe of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      const text = execFileSync(exe, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
      for (const line of text.split('\n')) {
        const m = /^\s*(\S+)\s.*=>\s*(\S+)\s*$/.exec(line);
        if (m && !cache.has(m[1])) cache.set(m[1], m[2]);
      }
      return cache;
    } catch {
      // try the next location
    }
  }
  return cache;
}

/**
 * Find each CUDA library the way the dynamic loader would look: LD_LIBRARY_PATH first, then
 * the loader cache, then onnxruntime-node's folder (the provider's RUNPATH is $ORIGIN).
 * Nothing is loaded: doctor must not change the process it reports on.
 */
export function findCudaLibraries(env: NodeJS.ProcessEnv = process.env): LibraryLookup[] {
  const dirs = (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  let cache: Map<string, string> | undefined;
  let ortDir: string | undefined;
  return CUDA_RUNTIME_LIBRARIES.map(({ soname, what }) => {
    let path = dirs.map((d) => join(d, soname)).find((p) => existsSync(p)) ?? null;
    if (!path) path = (cache ??= loaderCache()).get(soname) ?? null;
    if (!path) {
      ortDir ??= ortBinaryDir();
      if (existsSync(join(ortDir, soname))) path = join(ortDir, soname);
    }
    return { soname, what, path };
  });
}

/** "libcudart.so.13 (CUDA 13 runtime), libcudnn.so.9 (cuDNN 9)" for the missing ones, or ''. */
export function missingCudaLibraries(env: NodeJS.ProcessEnv = process.env): string {
  return findCudaLibraries(env)
    .filter((l) => !l.path)
    .map((l) => `${l.soname} (${l.what})`)
    .join(', ');
}
