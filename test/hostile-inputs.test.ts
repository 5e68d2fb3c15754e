/**
 * No "internal error" is reachable from an input file (issue 10 point 13): malformed
 * layouts, JSON nested thousands deep, split -o naming a file or a symlink, and a sweep
 * of garbage files through every command that reads files. Each gives one line and a
 * non-zero exit; nothing is written.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorLines, listDir, runCli } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
let tmp: ReturnType<typeof tempDir>;
const at = (name: string) => join(tmp.dir, name);
const cli = (...args: string[]) => runCli(args, { cwd: tmp.dir });
function expectClean(r: { code: number; stderr: string }, pattern?: RegExp): void {
  const lines = errorLines(r.stderr);
  expect(r.code).toBeGreaterThan(0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^styled-vq: error: /);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  if (pattern) expect(lines[0]).toMatch(pattern);
}

let layout: Record<string, any>;
beforeAll(() => {
  tmp = tempDir('styled-vq-hostile-');
  expect(cli('encode', join(EXAMPLES, 'pier.jpg'), join(EXAMPLES, 'glacier.jpg'), '-o', 'recs.jsonl', ...M).code).toBe(
    0,
  );
  writeFileSync(
    at('codes.json'),
    JSON.stringify([Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => 15 - i)]),
  );
  expect(
    cli(
      'concat',
      'recs.jsonl',
      'codes.json',
      '-o',
      'combined.jsonl',
      '--match',
      'order',
      '--styled-vocab',
      '1024',
      '--external-vocab',
      '16',
    ).code,
  ).toBe(0);
  layout = JSON.parse(readFileSync(at('combined.layout.json'), 'utf8'));
});
afterAll(() => tmp.cleanup());

describe('split with a malformed layout', () => {
  test.each([
    [
      'shape missing',
      (l: any) => delete l.external.npy.shape,
      /external\.npy\.shape must be a list of 1 to 3 positive integers, found nothing/,
    ],
    ['shape not a list', (l: any) => (l.external.npy.shape = 'x'), /external\.npy\.shape must be a list/],
    [
      'shape of the wrong size',
      (l: any) => (l.external.npy.shape = [17]),
      /holds 17 codes, but tokens_per_image is 16/,
    ],
    ['npy missing', (l: any) => delete l.external.npy, /external must have vocab_size, tokens_per_image and npy/],
    ['a float dtype', (l: any) => (l.external.npy.dtype = 'float32'), /external\.npy\.dtype must be one of/],
    [
      'a sequence that is null',
      (l: any) => (l.sequences.tokens = null),
      /sequences\.tokens must have parts, offsets and special/,
    ],
    ['no sequences', (l: any) => (l.sequences = {}), /sequences missing/],
    ['not JSON', () => 'garbage', /not valid JSON/],
  ])('%s', (_what, edit, pattern) => {
    const l = JSON.parse(JSON.stringify(layout));
    const out = edit(l);
    writeFileSync(at('bad.layout.json'), out === 'garbage' ? '{not json' : JSON.stringify(l));
    const before = listDir(tmp.dir);
    expectClean(cli('split', 'combined.jsonl', '--layout-file', 'bad.layout.json', '-o', 'parts'), pattern);
    expect(listDir(tmp.dir)).toEqual(before);
  });
});

describe('split -o that is not a folder to create', () => {
  test('an existing file, a symlink to a file, a symlink to a folder', () => {
    writeFileSync(at('a-file'), 'x');
    symlinkSync('a-file', at('file-link'));
    mkdirSync(at('real-dir'));
    symlinkSync('real-dir', at('dir-link'));
    expectClean(cli('split', 'combined.jsonl', '-o', 'a-file'), /Output a-file is a file, not a folder/);
    expectClean(cli('split', 'combined.jsonl', '-o', 'file-link'), /Output folder file-link is a symlink/);
    expectClean(cli('split', 'combined.jsonl', '-o', 'dir-link'), /Output folder dir-link is a symlink/);
    expect(readFileSync(at('a-file'), 'utf8')).toBe('x');
    expect(listDir(at('real-dir'))).toEqual([]);
  });
});

describe('JSON nested thousands deep', () => {
  test('as external codes (concat), as records (decode, dequantize), as sequences (split)', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    writeFileSync(at('deep.json'), deep);
    writeFileSync(at('deep.jsonl'), `${deep}\n`);
    expectClean(
      cli('concat', 'recs.jsonl', 'deep.json', '-o', 'c.jsonl', '--match', 'order', '--styled-vocab', '1024'),
    );
    expectClean(cli('decode', 'deep.jsonl', '-o', 'x.png', ...M));
    expectClean(cli('dequantize', 'deep.json', ...M));
    expectClean(cli('split', 'deep.jsonl', '--layout-file', 'combined.layout.json', '-o', 'p'));
    const objects = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    writeFileSync(at('deep-object.jsonl'), `${objects}\n`);
    expectClean(cli('decode', 'deep-object.jsonl', '-o', 'y.png', ...M));
    expect(listDir(tmp.dir).filter((f) => /^(c\.jsonl|x\.png|y\.png|p)$/.test(f))).toEqual([]);
  });
});

describe('garbage through every command that reads files', () => {
  const garbage: [string, Buffer | string][] = [
    ['random.bin', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24))],
    ['empty.json', ''],
    [
      'truncated.npy',
      Buffer.from("\x93NUMPY\x01\x00\x76\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2, 36), }", 'latin1'),
    ],
    ['nul.jsonl', Buffer.alloc(1000)],
    ['text.npz', 'PK\x03\x04 not really a zip'],
  ];
  beforeAll(() => {
    for (const [name, data] of garbage) writeFileSync(at(name), data);
    mkdirSync(at('a-dir.json'), { recursive: true });
  });
  const names = [...garbage.map(([n]) => n), 'a-dir.json', 'missing.json'];
  test.each(names)('%s', (name) => {
    const before = listDir(tmp.dir);
    expectClean(cli('decode', name, '-o', 'g.png', ...M));
    expectClean(cli('dequantize', name, ...M));
    expectClean(cli('quantize', name, ...M));
    expectClean(cli('concat', name, 'codes.json', '-o', 'g.jsonl', '--styled-vocab', '1024', '--external-vocab', '16'));
    expectClean(cli('concat', 'recs.jsonl', name, '-o', 'g.jsonl', '--styled-vocab', '1024', '--external-vocab', '16'));
    expectClean(cli('split', name, '--layout-file', 'combined.layout.json', '-o', 'gparts'));
    expectClean(cli('split', 'combined.jsonl', '--layout-file', name, '-o', 'gparts'));
    expectClean(cli('encode', name, ...M));
    expect(listDir(tmp.dir)).toEqual(before);
  });
});
