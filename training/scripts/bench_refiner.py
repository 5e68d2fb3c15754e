#!/usr/bin/env python3
"""Training throughput of the refiner (styled_vq/refiner.py) on CPU, fp32 against bf16
autocast: forward, MSE, backward and an Adam step on random [batch, 3, 64, 64] inputs,
images/s over --steps steps after 2 warm-up steps (the numbers in the default model's card).

  /usr/bin/python3 -m training.scripts.bench_refiner --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from styled_vq.refiner import Refiner  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--sizes", default="64x4,48x4", help="channels x blocks, comma separated")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = torch.randn(a.batch, 3, 64, 64), torch.randn(a.batch, 3, 64, 64)
    for size in a.sizes.split(","):
        ch, blocks = (int(v) for v in size.split("x"))
        for bf16 in (False, True):
            m = Refiner(ch, blocks)
            opt = torch.optim.Adam(m.parameters(), 1e-3)
            for i in range(a.steps + 2):
                if i == 2:
                    t = time.time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = m(x)
                loss = ((out.float() - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            rate = a.steps * a.batch / (time.time() - t)
            print(f"{ch} channels x {blocks} blocks, {'bf16' if bf16 else 'fp32'}: {rate:.1f} img/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
