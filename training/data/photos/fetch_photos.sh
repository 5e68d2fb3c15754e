#!/usr/bin/env bash
# Download the pinned Debian packages that hold the evaluation photos (packages.txt in this
# folder), verify every .deb against packages.sha256, and unpack each with `dpkg -x`
# (no install, no root needed) into
#   $STYLED_VQ_DATA/photos-debs/<file>.deb      (default: $XDG_CACHE_HOME/styled-vq or ~/.cache/styled-vq)
#   $STYLED_VQ_DATA/photos-extract/<pkg>/...    (the package's file tree)
# Same scheme as ../fetch_packages.sh (the training packages; both run ../fetch_debs.sh).
# Usage: training/data/photos/fetch_photos.sh [--write-sha]
#   --write-sha  (re)write packages.sha256 from the downloaded files instead of checking
#                (only for a deliberate version bump; commit the result).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../fetch_debs.sh" "$HERE" photos-debs photos-extract "$@"
