#!/usr/bin/env bash
# Download the pinned Debian data packages (packages.txt), verify every .deb against
# packages.sha256, and unpack each with `dpkg -x` (no install, no root needed) into
#   $STYLED_VQ_DATA/debs/<file>.deb      (default: $XDG_CACHE_HOME/styled-vq or ~/.cache/styled-vq)
#   $STYLED_VQ_DATA/extract/<pkg>/...    (the package's file tree)
# Usage: training/data/fetch_packages.sh [--write-sha]
#   --write-sha  (re)write packages.sha256 from the downloaded files instead of checking
#                (only for a deliberate version bump; commit the result).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/fetch_debs.sh" "$HERE" debs extract "$@"
