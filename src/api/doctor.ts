/**
 * What this machine can run: versions, cores, which execution providers actually load
 * (each is tried on a tiny in-memory graph), and whether the default model is usable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, cpus } from 'node:os';
import { Model } from '../model/model';
import { resolveModelDir } from '../model/resolve';
import { bundledProviders, ortVersion, probeProvider, type ProbeResult, type Provider } from '../runtime/onnx';
import {
  cudaProviderInstalled,
  findCudaLibraries,
  type LibraryLookup,
  ortBinaryDir,
  readCudaMarker,
} from '../runtime/cuda-libraries';
import { packageVersion } from '../util/package-root';

export interface DoctorReport {
  versions: { styledVq: string; node: string; onnxruntime: string; sharp: string };
  platform: string;
  cpu: { cores: number; model: string };
  providers: ProbeResult[];
  cuda: {
    /** Both provider libraries are in onnxruntime-node's folder. */
    librariesInstalled: boolean;
    librariesDir: string;
    /** Where `setup cuda` put them: package and ONNX Runtime release; null if not by setup cuda. */
    provider: { package: string; packageVersion: string; onnxruntime: string; cuda: string } | null;
    /** Each CUDA library the provider needs, found (path) or missing (null). */
    libraries: LibraryLookup[];
    /** A session really opened and ran on CUDA. */
    runs: boolean;
  };
  bundledProviders: { name: string; bundled: boolean }[];
  model: { ok: boolean; dir?: string; source?: string; name?: string; fingerprint?: string; error?: string };
}

function sharpVersions(): { sharp: string } {
  // Read from package metadata: sharp itself is only imported by src/image, and its
  // "exports" hide package.json from require.resolve, so walk up from its entry point.
  try {
    let dir = dirname(require.resolve('sharp'));
    while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    return { sharp: pkg.version };
  } catch {
    return { sharp: 'not found' };
  }
}

export interface DoctorOptions {
  /** Model directory to check instead of the resolved default. */
  model?: string;
  /** Providers to try (default all three). */
  providers?: Provider[];
}

export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const providers: ProbeResult[] = [];
  for (const p of options.providers ?? (['cpu', 'cuda', 'webgpu'] as Provider[]))
    providers.push(await probeProvider(p));

  let model: DoctorReport['model'] = { ok: false };
  try {
    const { dir, source } = resolveModelDir(options.model);
    model = { ok: false, dir, source };
    const loaded = await Model.load(dir, { device: 'cpu' }, source);
    model = { ok: true, dir, source, name: loaded.name, fingerprint: loaded.fingerprint };
    await loaded.dispose();
  } catch (err) {
    model = { ...model, ok: false, error: (err as Error).message };
  }

  const { sharp } = sharpVersions();
  return {
    versions: { styledVq: packageVersion(), node: process.versions.node, onnxruntime: ortVersion(), sharp },
    platform: `${process.platform}-${process.arch}`,
    cpu: { cores: availableParallelism(), model: cpus()[0]?.model?.trim() ?? 'unknown' },
    providers,
    cuda: {
      librariesInstalled: cudaProviderInstalled(),
      librariesDir: ortBinaryDir(),
      provider: readCudaMarker(),
      libraries: findCudaLibraries(),
      runs: providers.some((p) => p.device === 'cuda' && p.ok),
    },
    bundledProviders: bundledProviders(),
    model,
  };
}
