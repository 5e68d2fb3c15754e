"""The training log: one JSON object per line, appended to a file and echoed to stdout, read
back by the model-card writers (make_model_card.py, make_model_card_v2.py) without any
parsing of prose."""
from __future__ import annotations

import json
import time


class JsonLog:
    """log(kind, **fields) writes {"kind", "t": seconds since this log was opened, [
    "time": Unix time if wall_clock], **fields}. wall_clock lets a reader join the sessions
    of a run that was stopped and resumed (train.py)."""

    def __init__(self, path: str, wall_clock: bool = False):
        self.f = open(path, "a")
        self.t0 = time.time()
        self.wall_clock = wall_clock

    def __call__(self, kind: str, **rec) -> None:
        now = time.time()
        head = {"kind": kind, "t": round(now - self.t0, 2)}
        if self.wall_clock:
            head["time"] = round(now, 3)
        line = json.dumps({**head, **rec})
        self.f.write(line + "\n")
        self.f.flush()
        print(line, flush=True)
