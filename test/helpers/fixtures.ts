import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
/** The lead's random-weight package: 64 px, 36 tokens, latent dim 16, codebook 1024. */
export const FIXTURE_MODEL = join(ROOT, 'test', 'fixtures', 'model-tiny');
export const EXAMPLES = join(ROOT, 'examples');
export const FIXTURE_IMAGES = join(ROOT, 'test', 'fixtures', 'images');
/** The parts of the tiny package whose dequantize.onnx keeps its weights as external data. */
export const FIXTURE_EXTERNAL = join(ROOT, 'test', 'fixtures', 'model-external');

export function tempDir(prefix = 'styled-vq-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A private copy of the fixture package, to damage in a test. */
export function copyFixtureModel(into: string, name = 'model'): string {
  const dest = join(into, name);
  cpSync(FIXTURE_MODEL, dest, { recursive: true, filter: (src) => !src.endsWith('parity.json') });
  return dest;
}

/**
 * A package whose dequantize.onnx keeps its weights in dequantize.onnx.data (made by the
 * exporter's code, test/fixtures/model-external/make.py): the tiny package with these files
 * laid over it.
 */
export function copyExternalDataModel(into: string, name = 'model-external'): string {
  const dest = copyFixtureModel(into, name);
  for (const f of readdirSync(FIXTURE_EXTERNAL).filter((n) => !n.endsWith('.py')))
    cpSync(join(FIXTURE_EXTERNAL, f), join(dest, f));
  return dest;
}
