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

async function checkNpyFile(path: string, header: Buffer, dataBytes: number): Promise<void> {
  const fh = await fs.open(path, 'r').catch((err: Error) => {
    throw inputError(`Cannot read ${path}: ${err.message}`, err);
  });
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(header.length);
    await fh.read(head, 0, head.length, 0);
    if (!head.equals(header))
      throw inputError(`${path}: its .npy header is not the one this run writes; not marked done`);
    if (size !== header.length + dataBytes)
      throw inputError(`${path} has ${size} bytes, expected ${header.length + dataBytes}; not marked done`);
  } finally {
    await fh.close();
  }
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
  const t = model.numTokens;
  await checkNpyFile(paths.tokens, npyHeader('int32', [n, t]), n * t * 4);
  if (latents)
    await checkNpyFile(paths.latents, npyHeader('float32', [n, t, model.latentDim]), n * t * model.latentDim * 4);
  const files = [await digestFile(paths.tokens)];
  if (latents) files.push(await digestFile(paths.latents));
  files.push(await digestFile(paths.sidecar));
  return { files, records: n, failed: sidecar.failed.length, sources: got };
}
