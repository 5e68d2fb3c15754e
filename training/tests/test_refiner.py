"""The refiner after the PCA decode (styled_vq/refiner.py) and its trainer, train_refiner.py,
on a real short run: train_pca_code.py -> train_refiner.py (and a resume) -> export.py ->
the bench's rebuild from the package -> evaluate.py."""
from __future__ import annotations

import json
import os

import pytest
import torch

from styled_vq.config import ModelConfig, preset
from styled_vq.model import StyledVQ
from styled_vq.refiner import Refiner, depth_to_space, grow_refiner, refiner_shape, space_to_depth
from test_v2 import run, run_unchecked, smooth_images, write_pack


def test_space_to_depth_round_trips_and_an_untrained_refiner_is_the_identity():
    x = torch.randn(2, 3, 8, 8)
    y = space_to_depth(x)
    assert y.shape == (2, 12, 4, 4)
    assert torch.equal(y[:, 0], x[:, 0, 0::2, 0::2])        # channel 0: the top-left pixels
    assert torch.equal(depth_to_space(y), x)
    assert torch.equal(Refiner(8, 1)(x), x)                  # zero last conv: PCA decode unchanged


def test_a_grown_refiner_computes_what_the_small_one_did_and_learns_in_its_new_parts():
    torch.manual_seed(0)
    small = Refiner(8, 2)
    for p in small.parameters():
        p.data.normal_(0, 0.1)                               # a trained refiner: nothing at zero
    x = torch.randn(2, 3, 16, 16)
    for channels, blocks in ((12, 2), (8, 4), (12, 3)):
        big = Refiner(channels, blocks)
        big.load_state_dict(grow_refiner(small.state_dict(), channels, blocks))
        assert refiner_shape(big.state_dict()) == (channels, blocks)
        assert torch.allclose(big(x), small(x), atol=1e-6)
        big(x).square().mean().backward()
        assert big.body[-1].b.weight.grad.abs().sum() > 0     # a new block starts at the identity, not frozen
        if channels > 8:
            assert big.out.weight.grad[:, 8:].abs().sum() > 0  # new channels get a way to the image
    with pytest.raises(ValueError, match="cannot shrink"):
        grow_refiner(small.state_dict(), 4, 2)


def test_the_refiner_needs_the_pca_code_alone():
    base = {**preset("skip64").to_dict(), "refiner_blocks": 2}
    with pytest.raises(ValueError, match="residual: false"):
        ModelConfig.from_dict(base)
    cfg = ModelConfig.from_dict({**base, "residual": False})
    m = StyledVQ(cfg)
    # model.json lists only the PCA code's fields; they load back without the network sizes.
    slim = cfg.manifest_dict()
    assert "enc_width" not in slim and ModelConfig.from_dict(slim).refiner_blocks == 2
    assert isinstance(m.refiner, Refiner) and len(m.refiner.body) == 2


def test_short_refiner_run_resumes_exports_and_evaluates(tmp_path):
    pack, v3, rundir, pkg, ev = (str(tmp_path / n) for n in ("pack", "v3", "ref", "pkg", "eval"))
    os.makedirs(pack)
    write_pack(pack, "train", smooth_images(300, 2))
    write_pack(pack, "val", smooth_images(24, 3))
    run("train_pca_code.py", "--run", v3, "--data", f"pack:{pack}", "--threads", "1", "--max-dim", "8",
        "--total-dims", "100", "--aug-rounds", "0", "--codebook-size", "16", "--kmeans-iters", "2")
    common = ["--final", os.path.join(v3, "final.pt"), "--run", rundir, "--data", f"pack:{pack}", "--aug-rounds", "0",
              "--channels", "8", "--blocks", "1", "--batch", "16", "--threads", "1", "--eval-every", "1"]
    run("train_refiner.py", *common, "--seconds", "2")
    run("train_refiner.py", *common, "--seconds", "4")      # a second sitting resumes the first
    log = [json.loads(line) for line in open(os.path.join(rundir, "log.jsonl"))]
    kinds = [r["kind"] for r in log]
    assert kinds.count("baseline") == 1 and kinds.count("resumed") == 1 and kinds.count("saved") == 2
    resumed = next(r for r in log if r["kind"] == "resumed")
    saved = [r for r in log if r["kind"] == "saved"]
    assert resumed["step"] == saved[0]["step"] < saved[1]["step"]
    assert set(log[kinds.index("baseline")]["val"]) == {"1", "4", "8", "16", "36"}

    final = os.path.join(rundir, "final.pt")
    ck = torch.load(final)
    assert ck["config"]["refiner_blocks"] == 1 and ck["config"]["residual"] is False
    assert sum(ck["config"]["token_dims"]) == 100
    # The tokens do not change: the PCA code and codebooks are the base model's.
    base = torch.load(os.path.join(v3, "final.pt"))
    for k in ("skip.enc", "skip.dec", "skip.mean", "codebook.embedding"):
        assert torch.equal(ck["model"][k], base["model"][k])

    run("export.py", "--checkpoint", final, "--out", pkg, "--name", "refiner-test")
    from bench_torch import load_from_package, smooth_images as image_like
    back, x = load_from_package(pkg), image_like(2, 64)
    ref = StyledVQ(ModelConfig.from_dict(ck["config"]), codebook_size=16, codebook_per_position=True).eval()
    ref.load_state_dict(ck["model"])
    with torch.no_grad():
        assert float(ref.refiner.out.weight.abs().max()) > 0          # it trained
        assert torch.allclose(back.decode(back.encode(x)), ref.decode(ref.encode(x)), atol=1e-5)

    run("evaluate.py", "--final", final, "--set", "photos", "--ks", "1,8", "--limit", "6", "--grid", "4",
        "--threads", "1", "--out", ev)
    q = json.load(open(os.path.join(ev, "evaluation.json")))["quality"]
    assert q["quantized"]["psnr"] > q["mean_colour"]["psnr"] - 3

    run("make_model_card_v2.py", "--package", pkg, "--log", os.path.join(v3, "log.jsonl"), "--refiner-log",
        os.path.join(rundir, "log.jsonl"), "--eval", f"photos={ev}")
    card = open(os.path.join(pkg, "MODEL_CARD.md")).read()
    assert "and a learned refiner" in card and "### Refiner (`training/train_refiner.py`)" in card
    assert "| 0 (PCA decode) |" in card and "train_pca_code.py" in card

    # A refiner trained on a package keeps that package's tokens; its card names the package.
    # A larger refiner continues from the package's one only when asked (--grow), and starts
    # from what it computed: the first run's last validation figures, to the log's precision.
    run2, pkg2 = str(tmp_path / "ref2"), str(tmp_path / "pkg2")
    cont = ["--final", pkg, "--run", run2, "--data", f"pack:{pack}", "--aug-rounds", "0",
            "--channels", "12", "--blocks", "2", "--batch", "16", "--threads", "1", "--seconds", "1"]
    refused = run_unchecked("train_refiner.py", *cont)
    assert refused.returncode != 0 and "8 channels x 1 blocks" in refused.stderr and "--grow" in refused.stderr
    assert not os.path.exists(run2)                          # refused before the run directory
    run("train_refiner.py", *cont, "--grow")
    log2 = [json.loads(line) for line in open(os.path.join(run2, "log.jsonl"))]
    init = [r for r in log2 if r["kind"] == "init_refiner"]
    assert len(init) == 1 and init[0]["grown_from"] == [8, 1]  # it went on from the package's refiner
    assert init[0]["val"] == [r for r in log if r["kind"] == "eval"][-1]["val"]
    ck2 = torch.load(os.path.join(run2, "final.pt"))
    assert torch.equal(ck2["model"]["codebook.embedding"], ck["model"]["codebook.embedding"])
    # Its tokens are the package's: export checks that and lists it, so old token files decode.
    tiny = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "model-tiny")
    other = run_unchecked("export.py", "--checkpoint", os.path.join(run2, "final.pt"), "--out", pkg2,
                          "--name", "refiner-test-2", "--same-tokens-as", tiny)
    assert other.returncode != 0 and "its tokens are not this model's" in other.stderr and not os.path.exists(pkg2)
    run("export.py", "--checkpoint", os.path.join(run2, "final.pt"), "--out", pkg2, "--name", "refiner-test-2",
        "--same-tokens-as", pkg)
    run("make_model_card_v2.py", "--package", pkg2, "--refiner-log", os.path.join(run2, "log.jsonl"),
        "--eval", f"photos={ev}")
    card2 = open(os.path.join(pkg2, "MODEL_CARD.md")).read()
    manifest = json.load(open(os.path.join(pkg, "model.json")))
    manifest2 = json.load(open(os.path.join(pkg2, "model.json")))
    assert manifest2["same_tokens_as"] == [{"name": "refiner-test", "fingerprint": manifest["fingerprint"]}]
    assert f"codebooks of `refiner-test` (fingerprint `{manifest['fingerprint']}`)" in card2
    assert "grown from 8 x 1 (same output)" in card2 and "| continuous | cost |" in card2
    # model.json of the PCA code lists only the fields it uses (no network sizes for `info`).
    assert "enc_width" not in manifest["config"] and manifest["config"]["refiner_blocks"] == 1
    n = sum(ck["config"]["token_dims"])
    refiner_params = sum(v.numel() for k, v in ck["model"].items() if k.startswith("refiner."))
    assert manifest["parameters"]["decoder"] == n * 12288 + refiner_params   # P^T and the refiner

    # model.json's training block: the tokens' package and the refiner's budget, adding up.
    meta = str(tmp_path / "meta.json")
    run("package_meta.py", "--log", os.path.join(run2, "log.jsonl"), "--hardware", "test", "--out", meta)
    t = json.load(open(meta))["training"]
    assert t["script"] == "training/train_refiner.py" and t["tokens"]["fingerprint"] == manifest["fingerprint"]
    assert t["refiner"]["images_total"] == t["refiner"]["images"] > 0 and t["refiner"]["grown_from"] == [8, 1]
