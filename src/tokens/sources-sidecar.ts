/**
 * The sidecar `<stem>.sources.json` beside a batch's .npy arrays: which source each row
 * came from, which rows failed and why. Written by batch (batch/npy-output.ts), read by
 * resume, merge and concat.
 */
import { promises as fs } from 'node:fs';
import { inputError, firstLine } from '../errors';
import type { ModelRef } from './record';

export const SOURCES_FORMAT = 'styled-vq-batch-sources';
export const SOURCES_VERSION = 1;
/** Token value in the rows of inputs that failed. */
export const FAILED_TOKEN = -1;

/** The sidecar `<stem>.sources.json`. */
export interface SourcesSidecar {
  format: typeof SOURCES_FORMAT;
  version: typeof SOURCES_VERSION;
  model: ModelRef;
  /** File names (relative to the sidecar) of the arrays. */
  tokens: string;
  latents: string | null;
  /** [N, num_tokens]. */
  shape: [number, number];
  /** Rows that hold no tokens (FAILED_TOKEN / NaN), with the reason. */
  failed: { row: number; source: string; error: string }[];
  fill: { tokens: number; latents: 'NaN' };
  /**
   * How alpha was handled ("drop", or "background:R,G,B" with --background): it changes
   * tokens, so a resume compares it (issue 15.8). Absent in sidecars of older versions: "drop".
   */
  alpha?: string;
  /** N sources, row order. */
  sources: string[];
}

/** Read and check a sidecar (concat and resume use it). */
export async function readSourcesSidecar(path: string): Promise<SourcesSidecar> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(path, 'utf8'));
  } catch (err) {
    throw inputError(`Cannot read ${path}: ${firstLine(err)}`, err);
  }
  const s = raw as SourcesSidecar;
  const ok =
    s?.format === SOURCES_FORMAT &&
    s.version === SOURCES_VERSION &&
    typeof s.model?.fingerprint === 'string' &&
    Array.isArray(s.sources) &&
    Array.isArray(s.failed) &&
    Array.isArray(s.shape) &&
    s.shape[0] === s.sources.length;
  if (!ok)
    throw inputError(
      `${path} is not a styled-vq sources sidecar (format "${SOURCES_FORMAT}" v${SOURCES_VERSION} with N sources)`,
    );
  return s;
}
