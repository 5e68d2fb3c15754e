/**
 * A tiny ONNX graph built in memory (y = x + x over float32 [N]), used to find out whether
 * an execution provider loads on this machine without needing any model package.
 * Protobuf is written by hand: the graph is five messages, not worth a dependency.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, value: number) => [...key(field, 0), ...varint(value)];
const bytes = (field: number, body: number[]) => [...key(field, 2), ...varint(body.length), ...body];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

const FLOAT = 1; // TensorProto.DataType.FLOAT

function tensorValueInfo(name: string): number[] {
  const dim = bytes(1, str(2, 'N')); // Dimension { dim_param: "N" }
  const shape = bytes(2, dim); // TypeProto.Tensor.shape
  const tensorType = bytes(1, [...int(1, FLOAT), ...shape]); // TypeProto.tensor_type
  return [...str(1, name), ...bytes(2, tensorType)]; // ValueInfoProto
}

/** ModelProto bytes for y = Add(x, x), IR version 8, opset 17. */
export function probeModelBytes(): Uint8Array {
  const node = [...str(1, 'x'), ...str(1, 'x'), ...str(2, 'y'), ...str(3, 'add'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'probe'), ...bytes(11, tensorValueInfo('x')), ...bytes(12, tensorValueInfo('y'))];
  const opset = [...str(1, ''), ...int(2, 17)];
  const model = [...int(1, 8), ...str(2, 'styled-vq-probe'), ...bytes(7, graph), ...bytes(8, opset)];
  return Uint8Array.from(model);
}
