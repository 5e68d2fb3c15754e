"""Every default path of training/, and how generated commands name our scripts.

- Data cache (crops, .deb downloads, runs): `$STYLED_VQ_DATA`, else
  `$XDG_CACHE_HOME/styled-vq`, else `~/.cache/styled-vq`. The shell scripts in
  training/data/ spell the same rule (`${STYLED_VQ_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/styled-vq}`).
- Commands written into evaluation.json and model cards say `python3 -m training.<script>`,
  run from the repository root: no interpreter path, no machine's folders.
"""
from __future__ import annotations

import os
import shlex
from typing import Iterable

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TRAINING)


def data_root() -> str:
    env = os.environ.get("STYLED_VQ_DATA")
    if env:
        return env
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "styled-vq")


DATA_ROOT = data_root()


def default_package() -> str:
    """The shipped default model package, models/<name in models/DEFAULT> (as the CLI)."""
    models = os.path.join(REPO, "models")
    with open(os.path.join(models, "DEFAULT")) as f:
        return os.path.join(models, f.read().strip())


def command(script: str, args: Iterable[str] = ()) -> str:
    """'python3 -m training.<script> ARGS' (script: 'evaluate', 'data.build_crops', ...)."""
    return " ".join(["python3", "-m", f"training.{script}"] + [shlex.quote(str(a)) for a in args])
