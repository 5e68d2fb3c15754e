import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
/** The lead's random-weight package: 64 px, 36 tokens, latent dim 16, codebook 1024. */
export const FIXTURE_MODEL = join(ROOT, 'test', 'fixtures', 'model-tiny');
export const EXAMPLES = join(ROOT, 'examples');
export const FIXTURE_IMAGES = join(ROOT, 'test', 'fixtures', 'images');

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
