/**
 * The exported graphs, run by onnxruntime-node, against PyTorch's outputs written by the
 * exporter (training/export.py --parity-batch). Proves the Node side computes what the
 * PyTorch reference computes, for every graph of the package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

const PKG = path.join(__dirname, 'fixtures', 'model-tiny');

interface Arr {
  shape: number[];
  dtype: string;
  data: number[];
}
const bundle: Record<string, Arr> = JSON.parse(fs.readFileSync(path.join(PKG, 'parity.json'), 'utf8'));

function tensor(a: Arr): ort.Tensor {
  if (a.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(a.data.map((v) => BigInt(v))), a.shape);
  return new ort.Tensor('float32', Float32Array.from(a.data), a.shape);
}

function maxAbsDiff(got: ArrayLike<number | bigint>, want: number[]): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(Number(got[i]) - want[i]));
  return m;
}

async function run(graph: string, input: string, output: string, feed: ort.Tensor): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(path.join(PKG, `${graph}.onnx`), { executionProviders: ['cpu'] });
  try {
    return (await session.run({ [input]: feed }))[output];
  } finally {
    await session.release();
  }
}

describe('ONNX graphs match PyTorch (parity bundle)', () => {
  test('encoder: max abs diff < 1e-4', async () => {
    const out = await run('encoder', 'image', 'latents', tensor(bundle.image));
    expect(out.dims).toEqual(bundle.latents.shape);
    expect(maxAbsDiff(out.data as Float32Array, bundle.latents.data)).toBeLessThan(1e-4);
  });

  test('decoder: max abs diff < 1e-4', async () => {
    const out = await run('decoder', 'latents', 'image', tensor(bundle.latents));
    expect(out.dims).toEqual(bundle.decoded.shape);
    expect(maxAbsDiff(out.data as Float32Array, bundle.decoded.data)).toBeLessThan(1e-4);
  });

  test('codebook: identical token ids', async () => {
    const out = await run('codebook', 'latents', 'tokens', tensor(bundle.latents));
    expect(out.type).toBe('int64');
    expect(Array.from(out.data as BigInt64Array, Number)).toEqual(bundle.tokens.data);
  });

  test('dequantize: exact codebook rows', async () => {
    const out = await run('dequantize', 'tokens', 'latents', tensor(bundle.tokens));
    expect(maxAbsDiff(out.data as Float32Array, bundle.dequantized.data)).toBe(0);
  });

  test('dynamic batch: batch 1 gives the same rows as batch 2', async () => {
    const [, c, h, w] = bundle.image.shape;
    const first = { ...bundle.image, shape: [1, c, h, w], data: bundle.image.data.slice(0, c * h * w) };
    const out = await run('encoder', 'image', 'latents', tensor(first));
    const n = out.data.length;
    expect(out.dims).toEqual([1, ...bundle.latents.shape.slice(1)]);
    expect(maxAbsDiff(out.data as Float32Array, bundle.latents.data.slice(0, n))).toBeLessThan(1e-4);
  });
});
