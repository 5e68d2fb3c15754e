"""training/ as a package, so that every script runs from the repository root as
`python3 -m training.<script>` (e.g. `python3 -m training.train_v2 --run RUN`) with any
Python that has torch, as well as `python3 training/<script>.py`.

The scripts import the model package as top-level `styled_vq` (and, where they share
code, each other: `from evaluate import load_checkpoint`). Run as a file, Python puts
training/ on sys.path itself; run as `-m training.x`, this file does it: the one place
that touches sys.path. (The tests get it from training/pyproject.toml.)
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
