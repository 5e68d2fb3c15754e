/**
 * Package integrity: every file's place, size and sha256, each graph checked against the
 * manifest, and the fingerprint recomputed from those hashes (docs/model-package.md).
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream, promises as fs } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { firstLine, modelError } from '../errors';
import { checkGraph } from './graph-check';
import { type FileEntry, GRAPH_ROLES, type GraphRole, type Manifest } from './manifest';
import { type GraphInfo, readGraphInfo } from './onnx-graph';
import type { GraphSet } from './variant';

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

/**
 * Open a listed file after checking that it resolves inside the package folder (a symlink
 * may point anywhere; the name check in manifest.ts only covers the name, issue 15.3) and
 * has the listed size. The checks are made on the open descriptor, so the file that was
 * checked is the one that is read.
 */
async function openListed(dir: string, entry: FileEntry, role: string): Promise<fs.FileHandle> {
  const path = join(dir, entry.path);
  // Non-blocking: a FIFO under a listed name must be refused below, not wait for a writer.
  const handle = await fs.open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
  if (!handle)
    throw modelError(`Model package ${dir} is missing ${entry.path} (the ${role} file listed in model.json)`);
  try {
    const [realDir, realFile, stat] = await Promise.all([fs.realpath(dir), fs.realpath(path), handle.stat()]);
    const rel = relative(realDir, realFile);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw modelError(
        `Model package ${dir}: ${entry.path} resolves to ${realFile}, outside the package folder (symlinks must ` +
          `stay inside it)`,
      );
    }
    const named = await fs.stat(realFile);
    if (named.ino !== stat.ino || named.dev !== stat.dev)
      throw modelError(`Model package ${dir}: ${entry.path} was replaced while it was being opened`);
    if (!stat.isFile()) throw modelError(`Model package ${dir}: ${entry.path} is not a file`);
    if (stat.size !== entry.bytes) {
      throw modelError(
        `Model package ${dir}: ${entry.path} has ${stat.size} bytes, model.json says ${entry.bytes} (damaged or ` +
          `replaced file)`,
      );
    }
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function checkHash(dir: string, entry: FileEntry, actual: string): void {
  if (actual !== entry.sha256) {
    throw modelError(
      `Model package ${dir}: ${entry.path} does not match its sha256 in model.json (damaged or replaced file)`,
    );
  }
}

/** Check a listed file's place, size and sha256, streaming it (multi-GB files never sit in memory). */
export async function verifyFile(dir: string, entry: FileEntry, role: string): Promise<void> {
  const handle = await openListed(dir, entry, role);
  const hash = createHash('sha256');
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false }))
      hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  checkHash(dir, entry, hash.digest('hex'));
}

/** What one read into memory may hold (Node's fs limit, and protobuf's for a graph). */
const MAX_READ_BYTES = 2 ** 31 - 1;

/**
 * Read a listed file into memory once and check its place, size and sha256 on those very
 * bytes: what is handed on (to the ONNX parser, to ONNX Runtime) is what was verified.
 */
export async function readVerifiedFile(dir: string, entry: FileEntry, role: string): Promise<Buffer> {
  const handle = await openListed(dir, entry, role);
  if (entry.bytes > MAX_READ_BYTES) {
    await handle.close();
    throw modelError(
      `Model package ${dir}: ${entry.path} has ${entry.bytes} bytes, more than an ONNX graph can hold (2 GB; larger ` +
        `weights go to external data)`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await handle.readFile();
  } finally {
    await handle.close();
  }
  if (bytes.length !== entry.bytes) {
    throw modelError(
      `Model package ${dir}: ${entry.path} has ${bytes.length} bytes, model.json says ${entry.bytes} (damaged or ` +
        `replaced file)`,
    );
  }
  checkHash(dir, entry, createHash('sha256').update(bytes).digest('hex'));
  return bytes;
}

/** Decode a verified graph and check it against the manifest (graph-check.ts). */
export function inspectGraph(dir: string, role: GraphRole, manifest: Manifest, bytes: Uint8Array): string[] {
  let info: GraphInfo;
  try {
    info = readGraphInfo(bytes);
  } catch (err) {
    throw modelError(
      `Model package ${dir}: ${manifest.files[role].path} is not a readable ONNX model (${firstLine(err)})`,
      err,
    );
  }
  return checkGraph(dir, role, manifest, info);
}

/**
 * Check sizes and hashes of every file, then the stored fingerprint. Cheap size checks run
 * for all files before any hashing, so a missing file is reported at once.
 */
export async function verifyPackage(dir: string, manifest: Manifest): Promise<void> {
  const entries: { entry: FileEntry; role: string; graph?: GraphRole }[] = [];
  for (const role of GRAPH_ROLES) {
    const f = manifest.files[role];
    entries.push({ entry: f, role, graph: role });
    if (f.data) entries.push({ entry: f.data, role: `${role} external data` });
  }
  for (const { entry, role } of entries) {
    const stat = await fs.stat(join(dir, entry.path)).catch(() => null);
    if (!stat)
      throw modelError(`Model package ${dir} is missing ${entry.path} (the ${role} file listed in model.json)`);
  }
  // Graphs are read whole (under 2 GB by protobuf's limit) to be decoded and checked against
  // the manifest: shapes, and every external-data file they name (issue 15.1, 15.4).
  // Read in parallel; the first failure in the fingerprint's order is reported, so a
  // package with several faults always gets the same message.
  const results = await Promise.allSettled(
    entries.map(async ({ entry, role, graph }) => {
      if (!graph) return verifyFile(dir, entry, role);
      inspectGraph(dir, graph, manifest, await readVerifiedFile(dir, entry, role));
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

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

/**
 * Check the files of a variant's graphs, then its fingerprint: the v1 fingerprint of the
 * package with those graphs in place (the fp32 files were checked by {@link verifyPackage}).
 */
export async function verifyVariant(dir: string, manifest: Manifest, set: GraphSet): Promise<void> {
  if (set.dtype === 'fp32') return;
  const replaced = Object.keys(manifest.variants?.[set.dtype]?.files ?? {}) as GraphRole[];
  // Read, hashed and checked against the manifest like the package's own graphs (same
  // inputs, outputs and shapes; external data only the listed file).
  await Promise.all(
    replaced.map(async (role) => {
      const entry = set.files[role];
      const what = `${set.dtype} ${role}`;
      inspectGraph(dir, role, set.manifest, await readVerifiedFile(dir, entry, what));
      if (entry.data) await verifyFile(dir, entry.data, `${what} external data`);
    }),
  );
  const hashes = {} as Record<GraphRole, { sha256: string; data?: string | null }>;
  for (const role of GRAPH_ROLES) hashes[role] = { sha256: set.files[role].sha256, data: set.files[role].data?.sha256 };
  const expected = computeFingerprint(hashes, manifest.prefix_fill?.values);
  if (expected !== set.fingerprint) {
    throw modelError(
      `Model package ${dir}: model.json variants.${set.dtype}.fingerprint ${set.fingerprint} does not match its ` +
        `files (computed ${expected})`,
    );
  }
}
