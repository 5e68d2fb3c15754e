#!/usr/bin/env bash
# Shared by fetch_packages.sh (training packages) and photos/fetch_photos.sh (evaluation
# photos): download the pinned Debian packages of LIST_DIR/packages.txt, verify every .deb
# against LIST_DIR/packages.sha256, and unpack each with `dpkg -x` (no install, no root) into
#   $STYLED_VQ_DATA/DEBS_NAME/<file>.deb      (default: $XDG_CACHE_HOME/styled-vq or ~/.cache/styled-vq)
#   $STYLED_VQ_DATA/EXTRACT_NAME/<pkg>/...    (the package's file tree)
# Usage: fetch_debs.sh LIST_DIR DEBS_NAME EXTRACT_NAME [--write-sha]
#   --write-sha  (re)write packages.sha256 from the downloaded files instead of checking
#                (only for a deliberate version bump; commit the result).
set -euo pipefail
HERE="$1"; shift
CACHE="${STYLED_VQ_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/styled-vq}"  # the rule of training/styled_vq/paths.py
DEBS="$CACHE/$1"; EXTRACT="$CACHE/$2"; shift 2
WRITE_SHA=0; [[ "${1:-}" == "--write-sha" ]] && WRITE_SHA=1
mkdir -p "$DEBS" "$EXTRACT"
mapfile -t PINS < <(grep -v '^\s*#' "$HERE/packages.txt" | grep -v '^\s*$')

cd "$DEBS"
missing=()
for pin in "${PINS[@]}"; do
  pkg="${pin%%=*}"; ver="${pin#*=}"
  f="$(ls "${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
  if [[ -n "$f" ]] && [[ "$(dpkg-deb -f "$f" Version)" == "$ver" ]]; then continue; fi
  missing+=("$pin")
done
if ((${#missing[@]})); then
  echo "downloading ${#missing[@]} package(s): ${missing[*]}"
  apt-get download "${missing[@]}"
fi

# The .deb file name for each pin (apt writes an epoch ':' as '%3a').
files=()
for pin in "${PINS[@]}"; do
  pkg="${pin%%=*}"; ver="${pin#*=}"
  f="${pkg}_${ver//:/%3a}_all.deb"
  [[ -f "$f" ]] || { echo "missing $f" >&2; exit 1; }
  files+=("$f")
done

if ((WRITE_SHA)); then
  sha256sum "${files[@]}" > "$HERE/packages.sha256"
  echo "wrote $HERE/packages.sha256"
else
  [[ -f "$HERE/packages.sha256" ]] || { echo "no packages.sha256; run with --write-sha once" >&2; exit 1; }
  # every pinned file must be listed, and every listed hash must match
  for f in "${files[@]}"; do grep -q "  $f\$" "$HERE/packages.sha256" || { echo "$f not in packages.sha256" >&2; exit 1; }; done
  sha256sum --quiet -c "$HERE/packages.sha256"
  echo "sha256 OK for ${#files[@]} packages"
fi

for f in "${files[@]}"; do
  pkg="${f%%_*}"
  stamp="$EXTRACT/.$pkg.done"
  if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$f" ]]; then continue; fi
  rm -rf "${EXTRACT:?}/$pkg"
  dpkg -x "$f" "$EXTRACT/$pkg"
  echo "$f" > "$stamp"
  echo "extracted $pkg"
done
echo "done: $EXTRACT"
