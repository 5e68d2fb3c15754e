/**
 * The package as users get it (issue 10.9): `npm pack` makes a tarball without build
 * leftovers (no .tsbuildinfo, no source maps of the unshipped src/, no bench or test
 * output) and without install-time scripts; installed into a fresh project, its CLI
 * encodes a shipped example with the default model, and `{ Model }` imports from
 * CommonJS, ESM and strict TypeScript.
 *
 * The install is a real `npm ci --offline` of the tarball: the temporary project's lockfile
 * is the tarball plus this repository's locked production dependencies, so every
 * dependency comes from the npm cache that installed this checkout (no network). It packs
 * the tarball from the current dist/ (the checkout's .npmrc turns scripts off, prepack
 * included): `npm test` builds first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './helpers/fixtures';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string): Run {
  // The default model, as a user gets it: not one named by the environment.
  const env = { ...process.env };
  delete env.STYLED_VQ_MODEL;
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 240_000, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  const result = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${result.code}:\n${r.stderr}`);
  return result;
}

interface PackedFile {
  path: string;
  size: number;
}

describe('npm pack', () => {
  let dir: string;
  let project: string;
  let files: PackedFile[];
  let installed: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'styled-vq-pack-'));
    const [packed] = JSON.parse(run(NPM, ['pack', '--json', '--pack-destination', dir], ROOT).stdout) as {
      filename: string;
      integrity: string;
      files: PackedFile[];
    }[];
    files = packed.files;

    // A fresh project whose lockfile names the tarball and our locked production dependencies.
    project = join(dir, 'project');
    const spec = `file:../${packed.filename}`;
    const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
    };
    const packages: Record<string, unknown> = {
      '': { name: 'pack-check', version: '1.0.0', dependencies: { 'styled-vq': spec } },
      'node_modules/styled-vq': {
        version: ours.version,
        resolved: spec,
        integrity: packed.integrity,
        license: ours.license,
        dependencies: ours.dependencies,
        bin: ours.bin,
        engines: ours.engines,
      },
    };
    for (const [key, entry] of Object.entries(lock.packages))
      if (key && !entry.dev && !entry.devOptional) packages[key] = entry;
    mkdirSync(project);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'pack-check', version: '1.0.0', private: true, dependencies: { 'styled-vq': spec } }),
    );
    writeFileSync(
      join(project, 'package-lock.json'),
      JSON.stringify({ name: 'pack-check', version: '1.0.0', lockfileVersion: 3, requires: true, packages }),
    );
    run(NPM, ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], project);
    installed = join(project, 'node_modules', 'styled-vq');
  }, 480_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ships the built library, the models and the license, and no build leftovers', () => {
    const paths = files.map((f) => f.path);
    for (const p of ['LICENSE', 'README.md', 'bin/styled-vq.js', 'dist/bin/cli.js', 'dist/src/index.js'])
      expect(paths).toContain(p);
    expect(paths).toContain('dist/src/index.d.ts');
    expect(paths).toContain(`models/${readFileSync(join(ROOT, 'models', 'DEFAULT'), 'utf8').trim()}/model.json`);
    const leftovers = paths.filter((p) =>
      /(^|\/)\.tsbuildinfo$|\.map$|^(src|test|bench|training|scripts|dist\/bench)\//.test(p),
    );
    expect(leftovers).toEqual([]);
    // Everything but the model weighs little.
    const rest = files.filter((f) => !f.path.startsWith('models/')).reduce((n, f) => n + f.size, 0);
    expect(rest).toBeLessThan(2_000_000);
  });

  test('has no install-time scripts and can be published', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.license).toBe('ISC');
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(manifest.scripts?.[s]).toBeUndefined();
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(/^ISC License/);
  });

  test('`npx styled-vq encode` works in the project with the default model', () => {
    const r = run(NPX, ['--no-install', 'styled-vq', 'encode', join(installed, 'examples', 'pier.jpg')], project);
    const record = JSON.parse(r.stdout);
    const manifest = JSON.parse(
      readFileSync(
        join(installed, 'models', readFileSync(join(installed, 'models', 'DEFAULT'), 'utf8').trim(), 'model.json'),
        'utf8',
      ),
    );
    expect(record.model).toEqual({ name: manifest.name, fingerprint: manifest.fingerprint });
    expect(record.tokens).toHaveLength(36);
    expect(record.tokens.every((t: number) => Number.isInteger(t) && t >= 0)).toBe(true);
  });

  test('doctor names paths that exist in the installed package, and the command its CUDA hint names', () => {
    const r = JSON.parse(run(NPX, ['--no-install', 'styled-vq', 'doctor', '--json'], project).stdout);
    expect(r.model.ok).toBe(true);
    expect(r.model.dir.startsWith(installed)).toBe(true);
    expect(existsSync(r.model.dir)).toBe(true);
    expect(existsSync(r.cuda.librariesDir)).toBe(true);
    run(NPX, ['--no-install', 'styled-vq', 'setup', 'cuda', '--help'], project);
  });

  test('`{ Model }` imports from CommonJS, ESM and strict TypeScript', () => {
    writeFileSync(
      join(project, 'check.cjs'),
      "const { Model, defaultModelDir } = require('styled-vq');\nconsole.log(typeof Model.load, defaultModelDir());\n",
    );
    writeFileSync(
      join(project, 'check.mjs'),
      "import { Model, defaultModelDir } from 'styled-vq';\nconsole.log(typeof Model.load, defaultModelDir());\n",
    );
    const expected = `function ${join(installed, 'models')}`;
    for (const file of ['check.cjs', 'check.mjs'])
      expect(run(process.execPath, [file], project).stdout.trim().startsWith(expected)).toBe(true);

    // A CommonJS and an ESM TypeScript file, strict. skipLibCheck (as `tsc --init` sets it)
    // spares checking @types/node, three quarters of tsc's time; what it would hide, a type
    // our declarations take from a package users do not get, is checked below.
    const ts =
      "import { Model } from 'styled-vq';\nexport const load = (dir: string): Promise<Model> => Model.load(dir);\n";
    writeFileSync(join(project, 'check.ts'), ts);
    writeFileSync(join(project, 'check.mts'), ts);
    run(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        join(ROOT, 'node_modules', '@types'),
        'check.ts',
        'check.mts',
      ],
      project,
    );
  });

  test('the declarations behind `styled-vq` name only packages it depends on', () => {
    const dependencies = Object.keys(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).dependencies);
    const seen = new Set<string>();
    const bare = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
        if (!spec.startsWith('.')) bare.add(spec);
        else {
          const base = join(dirname(file), spec.replace(/\.js$/, ''));
          visit(existsSync(`${base}.d.ts`) ? `${base}.d.ts` : join(base, 'index.d.ts'));
        }
      }
    };
    visit(join(installed, 'dist', 'src', 'index.d.ts'));
    expect(seen.size).toBeGreaterThan(5);
    const foreign = [...bare].filter((m) => !m.startsWith('node:') && !dependencies.includes(m));
    expect(foreign).toEqual([]);
  });
});
