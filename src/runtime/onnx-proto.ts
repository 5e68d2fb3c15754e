/**
 * Just enough protobuf to write small ONNX graphs in memory (the provider probe, the GEMM
 * benchmark): a handful of messages are not worth a protobuf dependency. Field numbers
 * are onnx.proto's.
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
/** A varint field. */
export const int = (field: number, value: number) => Buffer.concat([key(field, 0), varint(value)]);
/** A length-delimited field (a sub-message or raw bytes). */
export const bytes = (field: number, body: Uint8Array) => Buffer.concat([key(field, 2), varint(body.length), body]);
/** A string field. */
export const str = (field: number, s: string) => bytes(field, Buffer.from(s, 'utf8'));

/** TensorProto.DataType.FLOAT */
export const FLOAT = 1;

/** ValueInfoProto of a float32 tensor; a string dim is symbolic (dim_param). */
export function valueInfo(name: string, dims: (number | string)[]): Buffer {
  const dim = (d: number | string) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d));
  const shape = bytes(2, Buffer.concat(dims.map(dim)));
  const tensorType = bytes(1, Buffer.concat([int(1, FLOAT), shape]));
  return Buffer.concat([str(1, name), bytes(2, tensorType)]);
}

/** NodeProto: inputs, outputs, name, op_type. */
export function node(inputs: string[], outputs: string[], name: string, op: string): Buffer {
  return Buffer.concat([...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(3, name), str(4, op)]);
}

/** ModelProto, IR version 8, default opset 17, around a GraphProto's bytes. */
export function modelProto(producer: string, graph: Buffer): Uint8Array {
  const opset = Buffer.concat([str(1, ''), int(2, 17)]);
  return new Uint8Array(Buffer.concat([int(1, 8), str(2, producer), bytes(7, graph), bytes(8, opset)]));
}
