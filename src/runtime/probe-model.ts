/**
 * A tiny ONNX graph built in memory (y = x + x over float32 [N]), used to find out whether
 * an execution provider loads on this machine without needing any model package.
 */
import { bytes, modelProto, node, str, valueInfo } from './onnx-proto';

/** ModelProto bytes for y = Add(x, x), IR version 8, opset 17. */
export function probeModelBytes(): Uint8Array {
  const graph = Buffer.concat([
    bytes(1, node(['x', 'x'], ['y'], 'add', 'Add')),
    str(2, 'probe'),
    bytes(11, valueInfo('x', ['N'])),
    bytes(12, valueInfo('y', ['N'])),
  ]);
  return modelProto('styled-vq-probe', graph);
}
