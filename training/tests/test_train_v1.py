"""The v1 trainer on a real, short run and the model card written from its JSON log:
train.py stage1 (run twice: the second run resumes) and stage2 -> evaluate.py ->
make_model_card.py. Crops are made here and found through STYLED_VQ_DATA."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from make_model_card import read_train_log
from styled_vq.paths import REPO
from test_v2 import run, smooth_images


def test_short_run_log_and_card(tmp_path, monkeypatch):
    data, rundir, ev, pkg = (str(tmp_path / n) for n in ("data", "run", "eval", "pkg"))
    os.makedirs(os.path.join(data, "crops64"))
    np.save(os.path.join(data, "crops64", "train.npy"), smooth_images(64, 2))
    np.save(os.path.join(data, "crops64", "val.npy"), smooth_images(12, 3))
    monkeypatch.setenv("STYLED_VQ_DATA", data)
    stage1 = ["stage1", "--run", rundir, "--preset", "tiny", "--steps", "3", "--batch", "4", "--threads", "1",
              "--log-every", "1", "--save-every", "1"]
    for _ in range(2):  # as a file, the way it ran before training/ was a package
        r = subprocess.run([sys.executable, "training/train.py", *stage1], capture_output=True, text=True, cwd=REPO,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr[-2000:]
    run("train.py", "stage2", "--run", rundir, "--codebook-size", "8", "--steps", "2", "--batch", "4",
        "--kmeans-iters", "2", "--threads", "1", "--log-every", "1", "--save-every", "1")

    records = [json.loads(line) for line in open(os.path.join(rundir, "log.jsonl"))]
    kinds = {r["kind"] for r in records}
    assert {"start", "session", "step", "val", "encoded", "kmeans", "before_finetune", "done"} <= kinds
    step = next(r for r in records if r["kind"] == "step")
    assert {"loss", "mse", "psnr", "gnorm", "lr", "img_per_s", "time"} <= set(step)
    assert next(r for r in records if r["kind"] == "start")["args"]["preset"] == "tiny"

    log = read_train_log(os.path.join(rundir, "log.jsonl"))
    s1, s2 = log["stage1"], log["stage2"]
    assert (s1["step"], s1["total_steps"], s1["batch"], s1["images_seen"], s1["train_crops"]) == (3, 3, 4, 12, 64)
    assert s1["n_sessions"] == 2 and s1["done"] and s1["val"][-1]["step"] == 3
    assert s2["n_sessions"] == 1 and s2["done"] and s2["images_seen"] == 8
    assert s2["kmeans"]["codebook_size"] == 8 and s2["encode"]["latents"] == 64 * 36
    assert log["model"]["parameters_m"] > 0

    run("evaluate.py", "--stage1", os.path.join(rundir, "stage1.pt"), "--stage2", os.path.join(rundir, "stage2.pt"),
        "--limit", "6", "--grid", "4", "--threads", "1", "--neutral-crops", "32", "--out", ev)
    run("make_model_card.py", "--package", pkg, "--evaluation", os.path.join(ev, "evaluation.json"), "--run", rundir)
    card = open(os.path.join(pkg, "MODEL_CARD.md")).read()
    assert "| stage1 | 3/3 | 4 | 12 | 0.2 |" in card and "| 2 | yes |" in card
    assert "| stage2 | 2/2 | 4 | 8 |" in card
    assert "k-means: K = 8 over 2,304 training latents" in card
    assert f"python3 -m training.train stage1 --run {rundir} --preset tiny --steps 3 --batch 4" in card
    assert "python3 -m training.evaluate --stage1 " in card
    assert "/usr/bin/python3" not in card
    meta = json.load(open(os.path.join(ev, "meta.json")))
    assert meta["training"]["stage1"]["step"] == 3 and meta["training"]["stage2"]["n_sessions"] == 1
