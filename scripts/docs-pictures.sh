#!/bin/sh
# The README pictures ("What the tokens carry"), made by the CLI itself with the default
# model (models/DEFAULT). Rerun whenever the default model changes:
#   npm run docs:pictures
# explain needs a model with a prefix fill (docs/model-package.md); without one its strip
# is skipped, with a message, and the other pictures are still made.
set -eu
cd "$(dirname "$0")/.."
OUT=docs/pictures
mkdir -p "$OUT"
cli() { node bin/styled-vq.js "$@" --device cpu --overwrite; }

cli mix examples/pier.jpg examples/glacier.jpg --grid -o "$OUT/mix-grid.webp"
cli reconstruct examples/glacier.jpg --compare -o "$OUT/reconstruct-compare.png"
if [ "$(node bin/styled-vq.js info --json | node -e 'process.stdin.on("data",(d)=>process.stdout.write(String(JSON.parse(d).prefixFill)))')" = null ]; then
  echo "docs:pictures: the default model has no prefix fill; $OUT/explain-pier.png not made" >&2
else
  cli explain examples/pier.jpg -o "$OUT/explain-pier.png"
fi
