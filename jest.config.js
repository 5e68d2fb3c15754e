/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: '<rootDir>/test/ort-environment.js',
  setupFiles: ['<rootDir>/test/share-ort.js'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The Slurm job-array test needs a running Slurm: jest.slurm.config.js, run by .ci/run.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/slurm/'],
  testTimeout: 120000,
  // ONNX Runtime sessions use all cores; parallel workers would only fight over them.
  maxWorkers: 1,
};
