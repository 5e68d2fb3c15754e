/**
 * Long lines (issue 15.15): every reader of token records is linear in the line length
 * (a 100 MB line took minutes when the line was re-joined with each read chunk) and stops
 * at one documented limit, DEFAULTS.maxRecordBytes (64 MiB), with one line naming the file
 * and line, as soon as the limit is passed. Records far above any real one (5 MB) still read.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../src/defaults';
import { type Line, readLines } from '../src/io/line-reader';
import { JsonSplitter } from '../src/tokens/json-stream';
import { readTokenFile } from '../src/tokens/token-file';
import { errorLines } from './helpers/cli';
import { EXAMPLES, FIXTURE_MODEL, ROOT, tempDir } from './helpers/fixtures';

const BIN = join(ROOT, 'bin', 'styled-vq.js');
const MB = 1024 * 1024;
const TOO_LONG = (file: string, line: number) =>
  `${file} line ${line} is longer than 64 MiB, the longest record styled-vq reads (is the file corrupt?)`;

let tmp: ReturnType<typeof tempDir>;
let record: string; // one real record of the fixture model, one line
let huge: string; // a line of 100 MB between two real records
beforeAll(() => {
  tmp = tempDir('styled-vq-lines-');
  const r = spawnSync(
    process.execPath,
    [BIN, 'encode', join(EXAMPLES, 'pier.jpg'), '--model', FIXTURE_MODEL, '--device', 'cpu'],
    { encoding: 'utf8' },
  );
  record = r.stdout.trim();
  expect(JSON.parse(record).tokens).toHaveLength(36);
  huge = join(tmp.dir, 'huge.jsonl');
  // Written in pieces: the test itself never holds the 100 MB line as one string.
  const fd = openSync(huge, 'w');
  writeSync(fd, `${record}\n{"source": "`);
  const block = Buffer.alloc(MB, 'x');
  for (let i = 0; i < 100; i++) writeSync(fd, block);
  writeSync(fd, `"}\n${record}\n`);
  closeSync(fd);
});
afterAll(() => tmp.cleanup());

test('the record limit is 64 MiB', () => {
  expect(DEFAULTS.maxRecordBytes).toBe(64 * MB);
});

describe('line reader (batch journals and outputs, split inputs)', () => {
  test('a 100 MB line is refused with one line naming the file and line', async () => {
    const seen: string[] = [];
    const read = async () => {
      for await (const l of readLines(huge)) seen.push(l.text);
    };
    await expect(read()).rejects.toThrow(TOO_LONG(huge, 2));
    expect(seen).toEqual([record]);
  });

  test("with tooLong: 'yield' (batch --resume) the long line is skipped, not held, and reading goes on", async () => {
    const lines: Omit<Line, 'text'>[] = [];
    const texts: string[] = [];
    for await (const { text, ...rest } of readLines(huge, { tooLong: 'yield' })) {
      lines.push(rest);
      texts.push(text);
    }
    const a = Buffer.byteLength(record) + 1;
    const b = a + 100 * MB + '{"source": ""}\n'.length;
    expect(lines).toEqual([
      { start: 0, end: a, terminated: true },
      { start: a, end: b, terminated: true, tooLong: true },
      { start: b, end: b + a, terminated: true },
    ]);
    expect(texts).toEqual([record, '', record]);
  });

  test('lines of 5 MB around chunk borders read exactly, as do a last line without "\\n" and a small limit', async () => {
    const p = join(tmp.dir, 'five.txt');
    const five = 'é'.repeat(2.5 * MB); // 5 MB of two-byte characters: chunk borders fall inside characters
    const fd = openSync(p, 'w');
    writeSync(fd, `${five}\nab\n${five}`);
    closeSync(fd);
    const lines: [number, number, number, boolean][] = [];
    for await (const l of readLines(p)) lines.push([l.text.length, l.start, l.end, l.terminated]);
    expect(lines).toEqual([
      [2.5 * MB, 0, 5 * MB + 1, true],
      [2, 5 * MB + 1, 5 * MB + 4, true],
      [2.5 * MB, 5 * MB + 4, 10 * MB + 4, false],
    ]);
    const read = async () => {
      for await (const _ of readLines(p, { maxBytes: 4 * MB })) void _;
    };
    await expect(read()).rejects.toThrow(`${p} line 1 is longer than 4 MiB`);
  });
});

describe('token record reader (decode, dequantize, concat)', () => {
  test('a 5 MB record still reads; a 100 MB one is refused naming the file and line', async () => {
    const rec = JSON.parse(record);
    const five = join(tmp.dir, 'five.jsonl');
    const big = { ...rec, source: 's'.repeat(5 * MB) };
    const fd = openSync(five, 'w');
    writeSync(fd, `${record}\n${JSON.stringify(big)}\n${JSON.stringify(big, null, 2)}\n`);
    closeSync(fd);
    const read = await readTokenFile(five);
    expect(read.map((r) => r.record.source.length)).toEqual([rec.source.length, 5 * MB, 5 * MB]);
    await expect(readTokenFile(huge)).rejects.toThrow(TOO_LONG(huge, 2));
  });

  test('one chunk holding the whole line (stdin) is refused too', () => {
    const splitter = new JsonSplitter('stdin', 1000);
    const line = `{"source": "${'x'.repeat(2000)}"}\n`;
    expect(() => splitter.push(line)).toThrow('stdin line 1 is longer than 1000 bytes');
    expect(() => new JsonSplitter('stdin', 1000).push(`\n\n[${line}]`)).toThrow('stdin line 3 is longer');
  });

  test('decode of a file with a 100 MB line: one line, exit 2', () => {
    const r = spawnSync(process.execPath, [BIN, 'decode', huge, '-o', join(tmp.dir, 'x.png'), '--device', 'cpu'], {
      encoding: 'utf8',
      env: { ...process.env, STYLED_VQ_MODEL: FIXTURE_MODEL },
    });
    expect({ code: r.status, lines: errorLines(r.stderr) }).toEqual({
      code: 2,
      lines: [`styled-vq: error: ${TOO_LONG(huge, 2)}`],
    });
    expect(statSync(huge).size).toBeGreaterThan(100 * MB); // the input is untouched
  });
});
