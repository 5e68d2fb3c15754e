#!/usr/bin/env bash
# Carry the GPU check (bench/gpu/check.ts) to a lent GPU machine and run it there; see
# bench/gpu/README.md for the calls. Not checked on a GPU yet.
#
#   bash bench/gpu/carry.sh pack [PART_MB]   # here: build .gpu/part-NN (PART_MB each, default 45)
#   bash bench/gpu/carry.sh stash            # there, each call but the last: keep the carried part
#   bash bench/gpu/carry.sh run [ARGS...]    # there, last call: unpack, set up CUDA, run check.js --out $OUT
#
# What travels: Node itself (the GPU image has none), dist/ (library + bench, built here),
# the production node_modules (onnxruntime-node for linux-x64 only), the shipped model, and
# the CUDA provider libraries from `styled-vq setup cuda`'s cache: about 300 MB xz-compressed,
# in parts small enough that each call stays under the device tool's 64 MiB working tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE=.gpu
THERE=/tmp/styled-vq-gpu

pack() {
  local part_mb=${1:-45}
  local cache=${STYLED_VQ_CACHE:+$STYLED_VQ_CACHE/cuda}
  cache=${cache:-${XDG_CACHE_HOME:-$HOME/.cache}/styled-vq/cuda}
  local libs
  libs=$(ls -d "$cache"/com.github.asus4.onnxruntime.linux-x64-gpu-*/ 2>/dev/null | tail -1 || true)
  if [ -z "$libs" ] || [ ! -f "$libs/libonnxruntime_providers_cuda.so" ]; then
    echo "carry.sh: no CUDA provider libraries in $cache: run \`node bin/styled-vq.js setup cuda\` first" >&2
    exit 2
  fi
  local exclude
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
  npm run build >/dev/null
  npx tsc -p bench/tsconfig.json
  local root
  root=$(mktemp -d)
  mkdir -p "$root/app/node_modules" "$root/bin" "$root/cuda"
  cp "$(command -v node)" "$root/bin/node"
  cp -r dist bin package.json "$root/app/"
  # node_modules less what only development needs and onnxruntime-node's other platforms
  # (`npm ls --omit=dev` still lists dev packages under npm 11).
  cp -rL node_modules/. "$root/app/node_modules/"
  rm -rf "$root"/app/node_modules/{@biomejs,typescript,@types,.cache}
  find "$root/app/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  rm -rf "$root/app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64"
  mkdir -p "$root/app/models"
  cp -r models/DEFAULT "models/$(cat models/DEFAULT)" "$root/app/models/"
  cp "$libs"/libonnxruntime_providers_*.so "$libs/package.json" "$root/cuda/"
  rm -rf "$STAGE" && mkdir -p "$STAGE"
  echo "carry.sh: compressing (xz -${XZ_LEVEL:-6}, several minutes)" >&2
  tar -C "$root" -cf - . | xz -"${XZ_LEVEL:-6}" -T0 | split -b "${part_mb}M" -d -a 2 - "$STAGE/part-"
  rm -rf "$root"
  ls -l "$STAGE"
  echo "carry.sh: $(ls "$STAGE" | wc -l) parts; the tree that travels besides them: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes tracked (remove models/ and training/tests/reference/ for the calls, README)" >&2
}

stash() {
  mkdir -p "$THERE/parts"
  cp -v "$STAGE"/part-* "$THERE/parts/"
  ls -l "$THERE/parts"
}

run() {
  stash
  local root=$THERE/root
  rm -rf "$root" && mkdir -p "$root"
  cat "$THERE"/parts/part-* | xz -d | tar -C "$root" -xf -
  local app=$root/app
  local ortdir=$app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  cp "$root"/cuda/libonnxruntime_providers_*.so "$ortdir/"
  # cuDNN 9, cuBLAS 13, cuRAND and the CUDA 13 runtime from PyTorch's wheels (issue 12).
  local nvidia
  nvidia=$(python3 -c 'import glob, site; print(":".join(d for p in site.getsitepackages() for d in sorted(glob.glob(p + "/nvidia/*/lib"))))' || true)
  LD_LIBRARY_PATH=${nvidia:+$nvidia:}${LD_LIBRARY_PATH:-}
  export LD_LIBRARY_PATH PATH=$root/bin:$PATH
  # The tree's own training/ and test/fixtures/ (tracked, so they travelled) beside the app.
  cp -r training test examples "$app/"
  cd "$app"
  node --version
  nvidia-smi -L || true
  node bin/styled-vq.js doctor || true
  node dist/bench/bench/gpu/check.js --python python3 --out "${OUT:-/tmp/out}" "$@"
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  stash) stash ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash bench/gpu/carry.sh pack [PART_MB] | stash | run [check.js options]" >&2; exit 1 ;;
esac
