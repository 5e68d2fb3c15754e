#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI is TypeScript compiled to dist/ by `npm run build` in a checkout;
// the package made by `npm pack` ships dist/ already built (users run no build).
let cli;
try {
  cli = require('../dist/bin/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]bin[\\/]cli\.js/.test(err.message)) {
    process.stderr.write('styled-vq: not built yet; run `npm run build` in the styled-vq directory\n');
    process.exit(1);
  }
  throw err;
}
// A closed pipe (`styled-vq encode ... | head`) is the reader's choice, not an error.
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  throw err;
});
cli.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
