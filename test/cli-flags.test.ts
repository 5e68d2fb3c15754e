/**
 * The library speaks option fields, the CLI flags (src/cli/flags.ts): every flag in the
 * table and every flag written into a message exists in the parser, every option field a
 * message names has a flag, and the library's own words never name a flag.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import yargs from 'yargs';
import { COMMANDS } from '../src/commands';
import { cliMessage, FLAGS } from '../src/cli/flags';
import { GLOBAL_OPTIONS } from '../src/cli/globals';
import { buildParser } from '../src/cli/parser';
import { StyledVqError } from '../src/errors';
import { preprocessImage } from '../src/image';
import { ROOT, tempDir } from './helpers/fixtures';

/** Flags of each command (globals included), as typed on the command line. */
function parserFlags(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const c of COMMANDS) {
    const y = yargs([]).options(GLOBAL_OPTIONS);
    (c.builder as (y: unknown) => unknown)(y);
    const o = (
      y as unknown as { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> } }
    ).getOptions();
    const names = [...Object.keys(o.key), ...Object.values(o.alias).flat(), 'help', 'version'];
    out.set(String(c.command).split(' ')[0], new Set(names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`))));
  }
  return out;
}
const FLAGS_BY_COMMAND = parserFlags();
const ALL_FLAGS = new Set([...FLAGS_BY_COMMAND.values()].flatMap((s) => [...s]));

/** Flags of other programs that messages tell users to type. */
const FOREIGN_FLAGS = new Set([
  '--array',
  '--onnxruntime-node-install',
  '--prefix-fill' /* training/export.py */,
  '--pack-destination' /* npm pack */,
  '--loglevel' /* npm */,
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}
const SOURCES = [...sourceFiles(join(ROOT, 'src')), join(ROOT, 'bin', 'cli.ts')].map((path) => ({
  file: relative(ROOT, path),
  // Code only: comments name flags freely.
  code: readFileSync(path, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1'),
}));
/** The error a call throws or rejects with (yargs throws some synchronously). */
async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}
const isCli = (file: string) => /^(src\/cli|src\/commands|bin)\//.test(file);

describe('flags in messages', () => {
  test('every flag in the field table exists in the parser', () => {
    const missing = Object.entries(FLAGS).filter(([, flag]) => !ALL_FLAGS.has(flag));
    expect(missing).toEqual([]);
  });

  test('every flag written in the CLI code exists in the parser', () => {
    const unknown = SOURCES.filter((s) => isCli(s.file)).flatMap((s) =>
      [...s.code.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)]
        .map((m) => m[0])
        .filter((f) => !ALL_FLAGS.has(f) && !FOREIGN_FLAGS.has(f))
        .map((f) => `${s.file}: ${f}`),
    );
    expect(unknown).toEqual([]);
  });

  test('library code names option fields, not flags', () => {
    // onnx.ts's provider hints ("or use --device cpu") are notices the CLI prints as they are.
    const named = SOURCES.filter((s) => !isCli(s.file) && s.file !== 'src/runtime/onnx.ts').flatMap((s) =>
      [...s.code.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)]
        .map((m) => m[0])
        .filter((f) => !FOREIGN_FLAGS.has(f))
        .map((f) => `${s.file}: ${f}`),
    );
    expect(named).toEqual([]);
  });

  test('every option field named in a message has a flag', () => {
    const fields = SOURCES.flatMap((s) =>
      [
        ...s.code.matchAll(
          /\b(?:opt|positiveInteger|nonNegativeInteger|inArray|invalidParameter|integerArg)\('([\w.]+)'/g,
        ),
      ].map((m) => m[1]),
    );
    expect(fields.length).toBeGreaterThan(20);
    // Arguments the CLI fills itself: preprocessImage's image (a positional) and alpha
    // (--background); decodePrefix's k (decode --prefix and mix --keep are checked by the CLI
    // first); writeImage's quality (the CLI writes at the default).
    const libraryOnly = new Set(['input', 'alpha', 'k', 'quality']);
    expect([...new Set(fields)].filter((f) => !FLAGS[f] && !libraryOnly.has(f))).toEqual([]);
  });

  test('split without a layout names --layout-file, a flag split has', async () => {
    const tmp = tempDir();
    try {
      writeFileSync(join(tmp.dir, 'gen.jsonl'), '[1, 2, 3]\n');
      const err = await failure(() =>
        buildParser(['split', join(tmp.dir, 'gen.jsonl'), '-o', join(tmp.dir, 'out')]).parseAsync(),
      );
      expect(err).toBeInstanceOf(StyledVqError);
      expect((err as Error).message).toMatch(/; name one with layoutFile$/);
      expect(cliMessage(err)).toMatch(/; name one with --layout-file$/);
      expect(FLAGS_BY_COMMAND.get('split')!.has('--layout-file')).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });

  test('the decompression-bomb error names maxPixels in the library and --max-pixels in the CLI', async () => {
    const err = await preprocessImage(join(ROOT, 'examples', 'pier.jpg'), { size: 64, maxPixels: 100 }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/\(raise maxPixels if this is intended\)$/);
    expect(cliMessage(err)).toMatch(/\(raise --max-pixels if this is intended\)$/);
  });

  test('option checks read "Expected <what> for <option> but received <value>" in both words', async () => {
    const err = await failure(() => buildParser(['info', '--threads', 'many']).parseAsync());
    expect(cliMessage(err)).toBe(
      'Expected positive integer for --threads but received "many" of type string (see styled-vq info --help)',
    );
    const lib = await preprocessImage(join(ROOT, 'examples', 'pier.jpg'), { size: 64, maxPixels: 0 }).catch(
      (e: unknown) => e,
    );
    expect((lib as Error).message).toBe('Expected positive integer for maxPixels but received 0 of type number');
    expect(cliMessage(lib)).toBe('Expected positive integer for --max-pixels but received 0 of type number');
  });
});
