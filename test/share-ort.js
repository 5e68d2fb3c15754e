// Every test file uses the onnxruntime-node module loaded once by test/ort-environment.js
// (the real module, not a stand-in; see there why).
jest.mock('onnxruntime-node', () => globalThis.__sharedOnnxruntimeNode);
