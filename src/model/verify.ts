/**
 * Package integrity: every file's size and sha256 (streamed, so multi-GB graphs never sit
 * in memory), and the fingerprint recomputed from those hashes (docs/model-package.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { modelError } from '../errors';
import { type FileEntry, GRAPH_ROLES, type GraphRole, type Manifest } from './manifest';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** sha256 of a prefix fill as little-endian float32, row-major (what the fingerprint lists). */
export function prefixFillSha256(values: readonly (readonly number[])[]): string {
  const flat = new Float32Array(values.flat());
  const bytes = Buffer.alloc(flat.length * 4);
  for (const [i, v] of flat.entries()) bytes.writeFloatLE(v, i * 4);
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The fingerprint of a package, from the sha256 of each graph (and its external data), plus
 * the prefix fill where the package has one (packages without keep their v1 fingerprint).
 */
export function computeFingerprint(
  hashes: Record<GraphRole, { sha256: string; data?: string | null }>,
  prefixFill?: readonly (readonly number[])[] | null,
): string {
  let text = 'styled-vq-fingerprint-v1\n';
  for (const role of GRAPH_ROLES) {
    const h = hashes[role];
    text += `${role} ${h.sha256}${h.data ? `+${h.data}` : ''}\n`;
  }
  if (prefixFill) text += `prefix_fill ${prefixFillSha256(prefixFill)}\n`;
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
}

export async function verifyFile(dir: string, entry: FileEntry, role: string): Promise<void> {
  const path = join(dir, entry.path);
  const stat = await fs.stat(path).catch(() => null);
  if (!stat) throw modelError(`Model package ${dir} is missing ${entry.path} (the ${role} file listed in model.json)`);
  // A symlink may point anywhere; the path check in manifest.ts only covers the name. What
  // is hashed and run must resolve inside the package folder (issue 15.3).
  const [realDir, realFile] = await Promise.all([fs.realpath(dir), fs.realpath(path)]);
  const rel = relative(realDir, realFile);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw modelError(
      `Model package ${dir}: ${entry.path} resolves to ${realFile}, outside the package folder (symlinks must stay ` +
        `inside it)`,
    );
  }
  if (!stat.isFile()) throw modelError(`Model package ${dir}: ${entry.path} is not a file`);
  if (stat.size !== entry.bytes) {
    throw modelError(
      `Model package ${dir}: ${entry.path} has ${stat.size} bytes, model.json says ${entry.bytes} (damaged or ` +
        `replaced file)`,
    );
  }
  const actual = await sha256File(path);
  if (actual !== entry.sha256) {
    throw modelError(
      `Model package ${dir}: ${entry.path} does not match its sha256 in model.json (damaged or replaced file)`,
    );
  }
}

/**
 * Check sizes and hashes of every file, then the stored fingerprint. Cheap size checks run
 * for all files before any hashing, so a missing file is reported at once.
 */
export async function verifyPackage(dir: string, manifest: Manifest): Promise<void> {
  const entries: { entry: FileEntry; role: string }[] = [];
  for (const role of GRAPH_ROLES) {
    const f = manifest.files[role];
    entries.push({ entry: f, role });
    if (f.data) entries.push({ entry: f.data, role: `${role} external data` });
  }
  for (const { entry, role } of entries) {
    const stat = await fs.stat(join(dir, entry.path)).catch(() => null);
    if (!stat)
      throw modelError(`Model package ${dir} is missing ${entry.path} (the ${role} file listed in model.json)`);
  }
  await Promise.all(entries.map(({ entry, role }) => verifyFile(dir, entry, role)));

  const hashes = {} as Record<GraphRole, { sha256: string; data?: string | null }>;
  for (const role of GRAPH_ROLES)
    hashes[role] = { sha256: manifest.files[role].sha256, data: manifest.files[role].data?.sha256 };
  const expected = computeFingerprint(hashes, manifest.prefix_fill?.values);
  if (expected !== manifest.fingerprint) {
    throw modelError(
      `Model package ${dir}: model.json fingerprint ${manifest.fingerprint} does not match its files (computed ` +
        `${expected})`,
    );
  }
}
