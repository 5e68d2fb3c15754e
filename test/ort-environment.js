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

// onnxruntime-node is loaded once for the whole run, here in the outer realm, and every
// test file gets that same module (test/share-ort.js). Loading its JS once per test file
// calls the native initOrtOnce again on the same binding, and onnxruntime-node 1.29.0 then
// registers a duplicate cleanup hook, which aborts Node ("CleanupQueue::Add ... Assertion
// failed"). One process loads it once, as every real program does.
let ort;

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
    ort ??= require('onnxruntime-node');
    this.global.__sharedOnnxruntimeNode = ort;
  }
}

module.exports = OrtEnvironment;
