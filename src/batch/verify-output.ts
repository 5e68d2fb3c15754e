/**
 * Reading a finished batch output back before it is marked done: every record whole and
 * of the loaded model, exactly the sources the run listed (same count, same order, by
 * hash), the .npy arrays exactly as long as their headers say. What it returns goes into
 * the done marker.
 */
import { promises as fs } from 'node:fs';
import { inputError, msg, opt } from '../errors';
import { npyHeader } from '../tokens/npy';
import { isErrorRecord, type ModelShape, parseRecord } from '../tokens/record';
import { digestFile, type MarkerFile, type SourceDigest, SourceTally } from './done-marker';
import { readLines } from '../io/line-reader';
import { readSourcesSidecar } from '../tokens/sources-sidecar';
import type { NpyPaths } from './output-paths';

export interface VerifiedOutput {
  files: MarkerFile[];
  records: number;
  failed: number;
  sources: SourceDigest;
}

const differs = (what: string, got: SourceDigest, want: SourceDigest) =>
  inputError(
    `${what} does not hold the ${want.count} inputs this run listed (it holds ${got.count}` +
      `${got.count === want.count ? ', other sources or another order' : ''}); was it changed meanwhile? Not marked ` +
      `done`,
  );

/** Check a JSONL output line by line (streamed) against the model and the listed sources. */
export async function verifyJsonl(path: string, model: ModelShape, expected: SourceDigest): Promise<VerifiedOutput> {
  const tally = new SourceTally();
  let failed = 0;
  for await (const line of readLines(path)) {
    const where = `${path} line ${tally.count + 1}`;
    if (!line.terminated)
      throw inputError(msg`${where} is cut off; not marked done (run again with ${opt('resume', true)})`);
    let raw: unknown;
    try {
      raw = JSON.parse(line.text);
    } catch {
      throw inputError(msg`${where} is not valid JSON; not marked done (run again with ${opt('resume', true)})`);
    }
    const rec = parseRecord(raw, where);
    if (rec.model.fingerprint !== model.fingerprint)
      throw inputError(`${where} is a record of another model (fingerprint ${rec.model.fingerprint}); not marked done`);
    if (isErrorRecord(rec)) failed++;
    tally.add(rec.source);
  }
  const got = tally.digest();
  if (got.count !== expected.count || got.sha256 !== expected.sha256) throw differs(path, got, expected);
  return { files: [await digestFile(path)], records: got.count, failed, sources: got };
}

/**
 * What is wrong with a finished .npy array, or null when it is whole: it must exist and
 * hold exactly the header this run writes and `dataBytes` after it (the row count comes
 * from the sources sidecar). Read once before marking done, and again before a resume
 * trusts a finished output that has no done marker (issue 15.10).
 */
export async function npyFileProblem(path: string, header: Buffer, dataBytes: number): Promise<string | null> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${path} is missing` : `${path} cannot be read (${code ?? (err as Error).message})`;
  }
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(header.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || !head.equals(header))
      return `${path}: its .npy header is not the one this run writes`;
    const want = header.length + dataBytes;
    if (size !== want) return `${path} has ${size} bytes, expected ${want} (cut off or changed)`;
    return null;
  } finally {
    await fh.close();
  }
}

/** The arrays of a finished .npy output of `rows` rows against their headers and sizes: the first problem, or null. */
export async function npyArraysProblem(
  paths: NpyPaths,
  model: Pick<ModelShape, 'numTokens' | 'latentDim'>,
  rows: number,
  latents: boolean,
): Promise<string | null> {
  const t = model.numTokens;
  const d = model.latentDim;
  return (
    (await npyFileProblem(paths.tokens, npyHeader('int32', [rows, t]), rows * t * 4)) ??
    (latents ? await npyFileProblem(paths.latents, npyHeader('float32', [rows, t, d]), rows * t * d * 4) : null)
  );
}

/** Check a finished .npy output: both arrays' headers and sizes, and the sidecar's sources. */
export async function verifyNpy(
  paths: NpyPaths,
  model: ModelShape,
  expected: SourceDigest,
  latents: boolean,
): Promise<VerifiedOutput> {
  const sidecar = await readSourcesSidecar(paths.sidecar);
  if (sidecar.model.fingerprint !== model.fingerprint)
    throw inputError(
      `${paths.sidecar} names another model (fingerprint ${sidecar.model.fingerprint}); not marked done`,
    );
  const tally = new SourceTally();
  for (const s of sidecar.sources) tally.add(s);
  const got = tally.digest();
  if (got.count !== expected.count || got.sha256 !== expected.sha256) throw differs(paths.sidecar, got, expected);
  const n = got.count;
  const problem = await npyArraysProblem(paths, model, n, latents);
  if (problem) throw inputError(`${problem}; not marked done`);
  const files = [await digestFile(paths.tokens)];
  if (latents) files.push(await digestFile(paths.latents));
  files.push(await digestFile(paths.sidecar));
  return { files, records: n, failed: sidecar.failed.length, sources: got };
}
