"""The v3 model (the PCA code with directions allocated to tokens by their variance) and
its pipeline on a real, short run: train_pca_code.py -> export.py -> evaluate.py -> card."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import torch

from styled_vq.allocation import allocate_token_dims, water_filling_distortion
from styled_vq.config import ModelConfig, preset
from styled_vq.model import StyledVQ
from styled_vq.pca_skip import fit_pca
from test_v2 import run, smooth_images, write_pack


def test_water_filling_matches_closed_forms():
    # One Gaussian of variance v at b bits: D = v 2^(-2b).
    assert abs(water_filling_distortion(np.array([4.0]), 3) - 4.0 / 64) < 1e-9
    # Two equal variances share the bits: D = 2 v 2^(-b).
    assert abs(water_filling_distortion(np.array([1.0, 1.0]), 2) - 0.5) < 1e-9
    # A variance under the water level gets no bits and costs itself.
    d = water_filling_distortion(np.array([100.0, 1e-6]), 1)
    assert abs(d - (25.0 + 1e-6)) < 1e-6


def test_allocation_puts_few_directions_in_early_tokens():
    v = 1000.0 * 0.97 ** np.arange(600)  # a smoothly falling spectrum, like images'
    dims = allocate_token_dims(v, 36, 16, 12, min_first=3)
    assert len(dims) == 36 and dims[0] >= 3 and max(dims) <= 16
    assert dims[0] < dims[-1]                                   # bits follow the variance
    gain = lambda ds: sum(v[sum(ds[:j]):sum(ds[:j]) + d].sum()  # noqa: E731
                          - water_filling_distortion(v[sum(ds[:j]):sum(ds[:j]) + d], 12) for j, d in enumerate(ds))
    assert gain(dims) > gain([8] * 36)                           # beats v2's 8 per token on the bound


def test_token_dims_keep_unused_slots_zero_and_round_trip():
    x = torch.from_numpy(smooth_images(300, 4)).permute(0, 3, 1, 2).float() / 127.5 - 1
    dims = tuple([3, 4, 5] + [6] * 33)
    cfg = ModelConfig.from_dict({**preset("skip64").to_dict(), "latent_dim": 8, "token_dims": list(dims),
                                 "residual": False})
    m = StyledVQ(cfg).eval()
    mean, comps, std = fit_pca(x, sum(dims))
    m.skip.init_from(mean, comps, std)
    assert m.skip.enc.shape == (sum(dims), 3 * 64 * 64)          # only used directions stored
    with torch.no_grad():
        z = m.encode(x[:5])
        assert float(z[:, 0, 3:].abs().max()) == 0 and float(z[:, 2, 5:].abs().max()) == 0
        assert torch.allclose(z[:, 1, :4], ((x[:5].reshape(5, -1) - mean) @ comps[3:7].t()), atol=1e-4)
        y = m.decode(z)
    direct = (x[:5].reshape(5, -1) - mean) @ comps.t() @ comps + mean
    assert torch.allclose(y.reshape(5, -1), direct, atol=1e-4)
    assert not hasattr(m, "decoder")                              # residual: false builds no networks


def test_short_run_exports_evaluates_and_writes_a_card(tmp_path):
    pack, rundir, pkg, ev = (str(tmp_path / n) for n in ("pack", "run", "pkg", "eval"))
    os.makedirs(pack)
    write_pack(pack, "train", smooth_images(400, 2))
    write_pack(pack, "val", smooth_images(24, 3))
    run("train_pca_code.py", "--run", rundir, "--data", f"pack:{pack}", "--threads", "1", "--max-dim", "8",
        "--aug-rounds", "0", "--codebook-size", "16", "--kmeans-iters", "2")
    log = [json.loads(line) for line in open(os.path.join(rundir, "log.jsonl"))]
    alloc = next(r for r in log if r["kind"] == "allocation")
    assert len(alloc["token_dims"]) == 36 and alloc["token_dims"][0] >= 3
    assert alloc["variance_removed_bound"]["chosen"] >= alloc["variance_removed_bound"]["uniform"]
    final = os.path.join(rundir, "final.pt")
    ck = torch.load(final)
    assert ck["config"]["residual"] is False and list(ck["config"]["token_dims"]) == alloc["token_dims"]
    cb = ck["model"]["codebook.embedding"]
    assert cb.shape == (36, 16, max(alloc["token_dims"]))  # latent_dim: the widest token
    j = min(range(36), key=lambda j: alloc["token_dims"][j])
    assert alloc["token_dims"][j] < cb.shape[2]
    assert float(cb[j, :, alloc["token_dims"][j]:].abs().max()) == 0  # codes are 0 in unused slots

    run("export.py", "--checkpoint", final, "--out", pkg, "--name", "v3-test")
    manifest = json.load(open(os.path.join(pkg, "model.json")))
    assert manifest["config"]["token_dims"] == alloc["token_dims"] and manifest["config"]["latent_dim"] == max(alloc["token_dims"])
    # The encoder stores one row per used direction (plus the mean and the 0/1 placement).
    n = sum(alloc["token_dims"])
    inits = onnx.load(os.path.join(pkg, "encoder.onnx")).graph.initializer
    assert sum(int(np.prod(t.dims)) for t in inits) <= n * 12288 + 12288 + n * 36 * max(alloc["token_dims"])
    # The bench's PyTorch side rebuilds the model from the package's own weights.
    from bench_torch import load_from_package, smooth_images as image_like
    back, x = load_from_package(pkg), image_like(2, 64)
    ref = StyledVQ(ModelConfig.from_dict(ck["config"]), codebook_size=16, codebook_per_position=True).eval()
    ref.load_state_dict(ck["model"])
    with torch.no_grad():
        assert torch.allclose(back.decode(back.encode(x)), ref.decode(ref.encode(x)), atol=1e-5)
    assert torch.equal(back.codebook.embedding, ref.codebook.embedding)

    run("evaluate.py", "--final", final, "--set", "photos", "--ks", "1,8", "--limit", "6", "--grid", "4",
        "--threads", "1", "--out", ev)
    e = json.load(open(os.path.join(ev, "evaluation.json")))
    assert e["prefix_curve"]["k"] == [0, 1, 8, 36]
    q = e["quality"]
    assert q["quantized"]["psnr"] > q["mean_colour"]["psnr"] - 3    # a working code, not noise

    run("make_model_card_v2.py", "--package", pkg, "--log", os.path.join(rundir, "log.jsonl"), "--eval", f"photos={ev}")
    card = open(os.path.join(pkg, "MODEL_CARD.md")).read()
    assert "Design (v3" in card and "train_pca_code.py" in card and manifest["fingerprint"] in card
