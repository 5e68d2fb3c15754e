// Jest runs each test file in its own vm realm, so typed arrays created there fail
// onnxruntime-node's `instanceof Float32Array` checks (which use the outer realm's
// constructors), and vice versa. Share the outer realm's typed arrays and Buffer.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Int16Array',
  'Int32Array',
  'BigInt64Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Uint16Array',
  'Uint32Array',
  'BigUint64Array',
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Buffer',
];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
