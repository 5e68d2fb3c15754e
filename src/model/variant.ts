/**
 * Which graph files and fingerprint a dtype runs (docs/model-package.md, "fp16 variant"):
 * fp32 is the package itself; fp16 is the package with the graphs of `variants.fp16` in
 * place of its own encoder and decoder, under the variant's own fingerprint.
 */
import { modelError, msg, opt, usageError } from '../errors';
import { DTYPES, type Dtype, type GraphFileEntry, type GraphRole, type Manifest } from './manifest';

export interface GraphSet {
  dtype: Dtype;
  files: Record<GraphRole, GraphFileEntry>;
  /** The fingerprint tokens made with these graphs carry. */
  fingerprint: string;
  /** The manifest as these graphs see it (`files` replaced): what each graph is checked against. */
  manifest: Manifest;
}

export function parseDtype(name: unknown): Dtype {
  if (typeof name === 'string' && (DTYPES as readonly string[]).includes(name)) return name as Dtype;
  throw usageError(`Unsupported dtype "${String(name)}". Should be one of: ${DTYPES.join(', ')}.`);
}

/** The graphs of one dtype; a package without that variant is refused with how to add it. */
export function graphSet(dir: string, manifest: Manifest, dtype: Dtype): GraphSet {
  if (dtype === 'fp32') return { dtype, files: manifest.files, fingerprint: manifest.fingerprint, manifest };
  const variant = manifest.variants?.[dtype];
  if (!variant) {
    throw modelError(
      msg`Model package ${dir} has no ${dtype} graphs (its model.json lists no variants.${dtype}); add them with \`python3 training/fp16.py ${dir}\` (docs/model-package.md), or use ${opt('dtype', 'fp32')}`,
    );
  }
  const files = { ...manifest.files, ...variant.files };
  return { dtype, files, fingerprint: variant.fingerprint, manifest: { ...manifest, files } };
}

/** The dtype whose graphs carry `fingerprint` in this package (fp32: its own), or undefined (another package). */
export function dtypeWithFingerprint(manifest: Manifest, fingerprint: string): Dtype | undefined {
  if (fingerprint === manifest.fingerprint) return 'fp32';
  const found = Object.entries(manifest.variants ?? {}).find(([, v]) => v?.fingerprint === fingerprint);
  return found ? (found[0] as Dtype) : undefined;
}

/**
 * Every fingerprint whose token files this package decodes as they were meant: its own, each
 * variant's (all share one codebook), then the earlier packages it has the same tokens as.
 */
export function packageFingerprints(manifest: Manifest): string[] {
  return [
    manifest.fingerprint,
    ...Object.values(manifest.variants ?? {}).map((v) => v.fingerprint),
    ...(manifest.same_tokens_as ?? []).map((e) => e.fingerprint),
  ];
}
