/**
 * Which model package to use, in a fixed order: an explicit directory (--model), then the
 * STYLED_VQ_MODEL environment variable, then the shipped default in `models/` (named by
 * `models/DEFAULT`, or the only package there).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { modelError, msg, opt } from '../errors';
import { DEFAULTS } from '../defaults';
import { packageRoot } from '../util/package-root';

export type ModelSource = 'option' | 'env' | 'default';

export interface ResolvedModel {
  dir: string;
  source: ModelSource;
}

const HOW_TO_CHOOSE = msg`pass ${opt('model', 'DIR')} or set ${DEFAULTS.modelEnv}=DIR (a package directory holding model.json)`;

/** The directory of shipped model packages. */
export function modelsDir(): string {
  return join(packageRoot(), DEFAULTS.modelsDir);
}

/** The shipped default package (in `root`, default models/), or an error that says what is (not) there. */
export function defaultModelDir(root: string = modelsDir()): string {
  const defaultFile = join(root, DEFAULTS.defaultModelFile);
  if (existsSync(defaultFile)) {
    const name = readFileSync(defaultFile, 'utf8').trim();
    const dir = join(root, name);
    if (!name || !existsSync(join(dir, 'model.json'))) {
      throw modelError(msg`${defaultFile} names "${name}", but ${dir} holds no model.json; ${HOW_TO_CHOOSE}`);
    }
    return dir;
  }
  const packages = existsSync(root)
    ? readdirSync(root).filter((n) => {
        const d = join(root, n);
        return statSync(d).isDirectory() && existsSync(join(d, 'model.json'));
      })
    : [];
  if (packages.length === 1) return join(root, packages[0]);
  if (packages.length === 0)
    throw modelError(msg`No default model is installed (nothing in ${root}); ${HOW_TO_CHOOSE}`);
  throw modelError(
    msg`${root} holds several models (${packages.sort().join(', ')}) and no ${DEFAULTS.defaultModelFile} file naming one; ${HOW_TO_CHOOSE}`,
  );
}

export function resolveModelDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): ResolvedModel {
  if (explicit) return { dir: explicit, source: 'option' };
  const fromEnv = env[DEFAULTS.modelEnv];
  if (fromEnv) return { dir: fromEnv, source: 'env' };
  return { dir: defaultModelDir(), source: 'default' };
}
