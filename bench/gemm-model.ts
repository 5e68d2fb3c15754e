/**
 * A one-node ONNX graph, Y = MatMul(A, W) with A float32 [M, K] fed at run time and W a
 * constant [K, N] initializer (so ONNX Runtime prepacks it, as it does a model's weights),
 * built in memory: hand-written protobuf, as src/runtime/probe-model.ts does.
 */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, value: number) => Buffer.concat([key(field, 0), varint(value)]);
const bytes = (field: number, body: Buffer) => Buffer.concat([key(field, 2), varint(body.length), body]);
const str = (field: number, s: string) => bytes(field, Buffer.from(s, 'utf8'));

function valueInfo(name: string, dims: (number | string)[]): Buffer {
  const dim = (d: number | string) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d));
  const shape = bytes(2, Buffer.concat(dims.map(dim)));
  const tensorType = bytes(1, Buffer.concat([int(1, 1 /* FLOAT */), shape]));
  return Buffer.concat([str(1, name), bytes(2, tensorType)]);
}

function initializer(name: string, dims: number[], values: Float32Array): Buffer {
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9
  return Buffer.concat([
    ...dims.map((d) => int(1, d)),
    int(2, 1),
    str(8, name),
    bytes(9, Buffer.from(values.buffer, values.byteOffset, values.byteLength)),
  ]);
}

/** ModelProto bytes for Y[M, N] = A[M, K] x W[K, N], M dynamic. */
export function matmulModelBytes(k: number, n: number, weights: Float32Array): Uint8Array {
  const node = Buffer.concat([str(1, 'A'), str(1, 'W'), str(2, 'Y'), str(3, 'mm'), str(4, 'MatMul')]);
  const graph = Buffer.concat([
    bytes(1, node),
    str(2, 'gemm'),
    bytes(5, initializer('W', [k, n], weights)),
    bytes(11, valueInfo('A', ['M', k])),
    bytes(12, valueInfo('Y', ['M', n])),
  ]);
  const opset = Buffer.concat([str(1, ''), int(2, 17)]);
  return new Uint8Array(Buffer.concat([int(1, 8), str(2, 'styled-vq-bench'), bytes(7, graph), bytes(8, opset)]));
}
