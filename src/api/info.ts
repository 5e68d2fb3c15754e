/** What a model package is: everything `styled-vq info` shows, as plain data. */
import { GRAPH_ROLES } from '../model/manifest';
import type { Model } from '../model/model';

export interface ModelInfo {
  name: string;
  description?: string;
  dir: string;
  source: string;
  fingerprint: string;
  /** The graph precisions the package holds ('fp32', plus 'fp16' where it has that variant), and their fingerprints. */
  dtypes: { dtype: string; fingerprint: string }[];
  verified: true;
  imageSize: number;
  numTokens: number;
  latentDim: number;
  codebook: { size: number; dim: number; metric: string };
  /** Earlier packages whose token files this one decodes without --force (model.json same_tokens_as). */
  sameTokensAs: { name: string; fingerprint: string }[];
  /** The kind of the package's prefix fill (docs/model-package.md), or null: no prefix decoding. */
  prefixFill: string | null;
  parameters: Record<string, number>;
  config: Record<string, unknown>;
  preprocessing: Record<string, unknown>;
  files: { role: string; path: string; bytes: number; sha256: string }[];
  training?: unknown;
  quality?: unknown;
}

/** Info about a loaded (and therefore verified) package. Opens no sessions. */
export function modelInfo(model: Model): ModelInfo {
  const m = model.manifest;
  const files: ModelInfo['files'] = [];
  for (const role of GRAPH_ROLES) {
    const f = m.files[role];
    files.push({ role, path: f.path, bytes: f.bytes, sha256: f.sha256 });
    if (f.data) files.push({ role: `${role} data`, path: f.data.path, bytes: f.data.bytes, sha256: f.data.sha256 });
  }
  for (const [dtype, v] of Object.entries(m.variants ?? {})) {
    for (const [role, f] of Object.entries(v.files)) {
      files.push({ role: `${role} ${dtype}`, path: f.path, bytes: f.bytes, sha256: f.sha256 });
      if (f.data)
        files.push({ role: `${role} ${dtype} data`, path: f.data.path, bytes: f.data.bytes, sha256: f.data.sha256 });
    }
  }
  return {
    name: m.name,
    description: m.description,
    dir: model.dir,
    source: model.source,
    fingerprint: m.fingerprint,
    dtypes: [
      { dtype: 'fp32', fingerprint: m.fingerprint },
      ...Object.entries(m.variants ?? {}).map(([dtype, v]) => ({ dtype, fingerprint: v.fingerprint })),
    ],
    verified: true,
    imageSize: model.imageSize,
    numTokens: model.numTokens,
    latentDim: model.latentDim,
    codebook: { ...m.codebook },
    sameTokensAs: (m.same_tokens_as ?? []).map((e) => ({ ...e })),
    prefixFill: m.prefix_fill?.kind ?? null,
    parameters: { ...(m.parameters ?? {}) },
    config: { ...m.config },
    preprocessing: { ...m.preprocessing },
    files,
    training: m.training,
    quality: m.quality,
  };
}
