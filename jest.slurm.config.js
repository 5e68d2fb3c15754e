/**
 * The real-engine test: a Slurm job array over the built CLI. Needs a running single-node
 * Slurm (`.ci/slurm/up.sh DIR`, then SLURM_CONF=DIR/slurm.conf): `.ci/run` starts one.
 * Not part of `npm test`, which must run anywhere; run with `npm run test:slurm`.
 */
const base = require('./jest.config.js');
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/slurm/**/*.test.ts'],
  testPathIgnorePatterns: [],
  testTimeout: 600000,
};
