/**
 * A one-node ONNX graph, Y = MatMul(A, W) with A float32 [M, K] fed at run time and W a
 * constant [K, N] initializer (so ONNX Runtime prepacks it, as it does a model's weights),
 * built in memory with src/runtime/onnx-proto.ts, as the provider probe is.
 */
import { bytes, FLOAT, int, modelProto, node, str, valueInfo } from '../src/runtime/onnx-proto';

function initializer(name: string, dims: number[], values: Float32Array): Buffer {
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9
  return Buffer.concat([
    ...dims.map((d) => int(1, d)),
    int(2, FLOAT),
    str(8, name),
    bytes(9, Buffer.from(values.buffer, values.byteOffset, values.byteLength)),
  ]);
}

/** ModelProto bytes for Y[M, N] = A[M, K] x W[K, N], M dynamic. */
export function matmulModelBytes(k: number, n: number, weights: Float32Array): Uint8Array {
  const graph = Buffer.concat([
    bytes(1, node(['A', 'W'], ['Y'], 'mm', 'MatMul')),
    str(2, 'gemm'),
    bytes(5, initializer('W', [k, n], weights)),
    bytes(11, valueInfo('A', ['M', k])),
    bytes(12, valueInfo('Y', ['M', n])),
  ]);
  return modelProto('styled-vq-bench', graph);
}
