/**
 * Token records and files: structure, count, range and model checks with messages that
 * name the file (and line), JSON / JSONL formatting, float32-exact latents.
 */
import { StyledVqError } from '../src/errors';
import { checkRecordForModel, makeErrorRecord, makeRecord, parseRecord, type TokenRecord } from '../src/tokens/record';
import {
  float32Text,
  formatPretty,
  formatRecordJson,
  formatRecordsJsonl,
  formatTokenFile,
  parseTokenText,
} from '../src/tokens/token-file';
import { cliMessage } from '../src/cli/flags';

const MODEL = {
  name: 'fixture-tiny',
  fingerprint: '0123456789abcdef',
  numTokens: 36,
  codebookSize: 1024,
  latentDim: 4,
};
const tokens = Array.from({ length: 36 }, (_, i) => (i * 37) % 1024);
const record = (over: Partial<TokenRecord> = {}): TokenRecord => ({
  ...makeRecord(MODEL, { source: 'cat.jpg', tokens, originalSize: [640, 480] }),
  ...over,
});

function inputErrorOf(fn: () => unknown): StyledVqError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StyledVqError);
    expect((err as StyledVqError).kind).toBe('input');
    return err as StyledVqError;
  }
  throw new Error('expected an input error');
}

describe('token records', () => {
  test('a good record passes', () => {
    const rec = parseRecord(JSON.parse(JSON.stringify(record())), 'tokens.json') as TokenRecord;
    expect(() => checkRecordForModel(rec, MODEL, 'tokens.json')).not.toThrow();
    expect(Object.keys(rec)).toEqual(['format', 'version', 'model', 'source', 'original_size', 'tokens']);
  });

  test('35 tokens', () => {
    const e = inputErrorOf(() => checkRecordForModel(record({ tokens: tokens.slice(1) }), MODEL, 'tokens.json'));
    expect(e.message).toBe('tokens.json: expected 36 tokens, found 35');
  });

  test('token id >= codebook size, and negative', () => {
    const high = [...tokens];
    high[7] = 1024;
    expect(inputErrorOf(() => checkRecordForModel(record({ tokens: high }), MODEL, 't.json')).message).toBe(
      't.json: token 1024 at position 7 is outside the codebook [0, 1024)',
    );
    const low = [...tokens];
    low[0] = -1;
    expect(inputErrorOf(() => checkRecordForModel(record({ tokens: low }), MODEL, 't.json')).message).toMatch(
      /token -1 at position 0/,
    );
  });

  test('tokens from another model name both fingerprints, unless forced', () => {
    const other = record({ model: { name: 'other', fingerprint: 'fedcba9876543210' } });
    const e = inputErrorOf(() => checkRecordForModel(other, MODEL, 'tokens.json'));
    expect(e.message).toContain('fedcba9876543210');
    expect(e.message).toContain('0123456789abcdef');
    expect(e.message).toContain('use the matching model, or force: true to use it anyway');
    expect(cliMessage(e)).toContain('use the matching --model, or --force to use it anyway');
    expect(() => checkRecordForModel(other, MODEL, 'tokens.json', { force: true })).not.toThrow();
  });

  test('non-integer tokens, wrong format, missing model', () => {
    expect(inputErrorOf(() => parseRecord({ ...record(), tokens: [1.5] }, 'x')).message).toMatch(
      /tokens\[0\] is 1.5, expected an integer/,
    );
    expect(inputErrorOf(() => parseRecord({ ...record(), format: 'nope' }, 'x')).message).toMatch(/format is "nope"/);
    expect(inputErrorOf(() => parseRecord({ ...record(), model: undefined }, 'x')).message).toMatch(
      /model must be an object/,
    );
    expect(inputErrorOf(() => parseRecord([1, 2, 3], 'x')).message).toMatch(/expected a JSON object/);
  });
});

describe('token files', () => {
  test('malformed JSON names the file; JSONL names the line', () => {
    expect(inputErrorOf(() => parseTokenText('{"format": "styled-vq-tokens", ', 'tokens.json')).message).toMatch(
      /^tokens\.json line 1 is not valid JSON: the input ends inside a value/,
    );
    const text = `${JSON.stringify(record())}\n{oops\n`;
    expect(inputErrorOf(() => parseTokenText(text, 'tokens.jsonl')).message).toMatch(
      /^tokens\.jsonl line 2 is not valid JSON/,
    );
    expect(inputErrorOf(() => parseTokenText('  \n', 'empty.json')).message).toMatch(/empty\.json is empty/);
  });

  test('a .json file of one record -> pretty JSON; stdout and several -> JSONL; error records survive', () => {
    expect(formatTokenFile([record()]).trim().split('\n')).toHaveLength(1); // stdout: one compact line
    const one = formatTokenFile([record()], 'tokens.json');
    expect(one.split('\n').length).toBeGreaterThan(5);
    expect(one).toContain(`"tokens": [${tokens.join(', ')}]`);
    expect(parseTokenText(one, 'tokens.json')[0].record).toEqual(record());
    const many = formatTokenFile([record(), makeErrorRecord(MODEL, 'bad.png', 'bad.png: file is empty (0 bytes)')]);
    expect(many.trim().split('\n')).toHaveLength(2);
    const back = parseTokenText(many, 'tokens.jsonl');
    expect(back[1].where).toBe('tokens.jsonl line 2');
    expect(back[1].record).toEqual({
      format: 'styled-vq-tokens',
      version: 1,
      model: { name: 'fixture-tiny', fingerprint: '0123456789abcdef' },
      source: 'bad.png',
      error: 'bad.png: file is empty (0 bytes)',
    });
    expect(formatTokenFile([record()], 'x.jsonl').trim().split('\n')).toHaveLength(1);
  });

  test('pretty records and JSONL lines one after another read as one list (encode a >> t; encode --pretty b >> t)', () => {
    const text =
      formatRecordJson(record()) +
      formatRecordsJsonl([record({ source: 'b.png' })]) +
      formatRecordJson(record({ source: 'c.png' }));
    const back = parseTokenText(text, 't.jsonl');
    expect(back.map((r) => r.record.source)).toEqual(['cat.jpg', 'b.png', 'c.png']);
    expect(back.map((r) => r.where)).toEqual([
      't.jsonl line 1',
      `t.jsonl line ${formatRecordJson(record()).split('\n').length}`,
      expect.stringMatching(/^t\.jsonl line \d+$/),
    ]);
    expect(inputErrorOf(() => parseTokenText(`${text}42\n`, 't.jsonl')).message).toMatch(
      /line \d+ is not valid JSON: unexpected "4" \(expected a JSON record\)/,
    );
  });

  test('the pretty printer never edits strings: hostile sources read back unchanged', () => {
    const hostile = ['a":b.jpg', 'a,"b', '{"x": 1}', 'back\\slash\n"', '":,', 'é ü 😀', '\u2028'];
    for (const source of hostile) {
      const rec = record({ source });
      expect(JSON.parse(formatRecordJson(rec))).toEqual(rec);
      expect(JSON.parse(formatPretty({ nested: { source, list: [source, 1] } }, ''))).toEqual({
        nested: { source, list: [source, 1] },
      });
      expect(parseTokenText(formatRecordJson(rec), 'h.json')[0].record.source).toBe(source);
    }
  });

  test('latents are written with the fewest digits that read back as the same float32', () => {
    const values = Float32Array.from([0.1, -1 / 3, 1e-7, 123.456, 0]);
    for (const v of values) expect(Math.fround(float32Text(v))).toBe(v);
    expect(float32Text(Math.fround(0.1))).toBe(0.1);
    const rec = record({ latents: [Array.from(values, float32Text)] });
    expect(formatRecordJson(rec)).toContain('[0.1, -0.33333334, 1e-7, 123.456, 0]');
  });
});
