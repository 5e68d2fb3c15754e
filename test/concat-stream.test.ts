/**
 * concat's streamed writer: the bytes CombinedLineEncoder writes are exactly
 * JSON.stringify(makeCombined(...)) + "\n", for every layout, special ids and hostile
 * source names (concat writes millions of lines through it).
 */
import { CombinedLineEncoder, makeCombined } from '../src/concat/combined-record';
import { buildLayout, type LayoutKind } from '../src/concat/layout';

const model = { name: 'm', fingerprint: '0123456789abcdef' };
const layoutOf = (kind: LayoutKind, special: { bos?: boolean; sep?: boolean; eos?: boolean }) =>
  buildLayout({
    kind,
    styled: { model, vocab_size: 1024, tokens_per_image: 36 },
    external: {
      tokenizer: 'llamagen-vq16',
      vocab_size: 16384,
      tokens_per_image: 256,
      npy: { shape: [1, 256], dtype: 'int64' },
      aug_index: null,
    },
    special,
  });

test.each([
  ['shared', {}],
  ['shared', { bos: true, sep: true, eos: true }],
  ['separate', { bos: true, eos: true }],
] as const)('%s layout %j: the same bytes as JSON.stringify', async (kind, special) => {
  const layout = layoutOf(kind, special);
  const chunks: Buffer[] = [];
  const enc = new CombinedLineEncoder(layout, async (b) => void chunks.push(Buffer.from(b)));
  const expected: string[] = [];
  const sources = ['a.jpg', 'a":b.jpg', 'é/ü 😀.png', 'back\\slash\n"quote', ''];
  for (let i = 0; i < 3000; i++) {
    const styled = Array.from({ length: 36 }, (_, j) => (i * 31 + j * 7) % 1024);
    const external = Int32Array.from({ length: 256 }, (_, j) => (i * 131 + j * 17) % 16384);
    const fields = {
      source: `${sources[i % sources.length]}${i}`,
      externalSource: `codes.npy row ${i}`,
      styled,
      external,
    };
    expected.push(`${JSON.stringify(makeCombined(layout, fields))}\n`);
    await enc.add(fields);
  }
  await enc.flush();
  expect(chunks.length).toBeGreaterThan(1); // crossed block boundaries
  expect(Buffer.concat(chunks).toString('utf8')).toBe(expected.join(''));
});

test('ids outside the layout (never from checked input) still print as JSON would', async () => {
  const layout = layoutOf('shared', {});
  const out: Buffer[] = [];
  const enc = new CombinedLineEncoder(layout, async (b) => void out.push(Buffer.from(b)));
  const fields = {
    source: 's',
    externalSource: 'e',
    styled: [1.5, ...Array(35).fill(0)],
    external: new Int32Array(256).fill(99999999),
  };
  await enc.add(fields);
  await enc.flush();
  expect(Buffer.concat(out).toString()).toBe(`${JSON.stringify(makeCombined(layout, fields))}\n`);
});
