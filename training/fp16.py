#!/usr/bin/env python3
"""Add the fp16 variant to an exported model package (docs/model-package.md, "fp16 variant"):
`encoder.fp16.onnx` and `decoder.fp16.onnx` beside the float32 graphs, listed in model.json
under `variants.fp16` with their own fingerprint. `styled-vq ... --dtype fp16` runs them.

  python3 -m training.fp16 /tmp/my-package
  python3 -m training.fp16 /tmp/my-package --keep-fp32 LayerNormalization

The shipped package (models/DEFAULT) does not carry them: the fp32 graphs are what the
model card measures, and fp16 copies would grow the npm tarball. Needs only the onnx package.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from styled_vq.fp16 import add_fp16_variant  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="model package directory (holding model.json)")
    ap.add_argument("--keep-fp32", default="", help="comma-separated ONNX op types to run in float32 inside the "
                                                    "fp16 graphs (e.g. LayerNormalization)")
    a = ap.parse_args(argv)
    if not os.path.isfile(os.path.join(a.package, "model.json")):
        ap.error(f"{a.package} holds no model.json (expected a model package directory)")
    t0 = time.time()
    keep = tuple(op for op in a.keep_fp32.split(",") if op)
    variant = add_fp16_variant(a.package, keep)
    print(json.dumps({"package": a.package, "fingerprint": variant["fingerprint"],
                      "bytes": {k: v["bytes"] for k, v in variant["files"].items()},
                      "seconds": round(time.time() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
