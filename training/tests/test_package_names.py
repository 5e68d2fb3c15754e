"""bench_torch.load_from_package maps ONNX initializers back to parameters by name and scope:
packages exported before issue 14.5 (test/fixtures/model-tiny; the retired v2 default
styled-vq-skip64 too) name them by the research names (checkpoint.RENAMES), packages
exported now by ours. Both must load."""
import os

import onnx
import torch
from onnx.numpy_helper import to_array

from bench_torch import UNUSED, load_from_package, smooth_images
from styled_vq.config import preset
from styled_vq.export import export_package
from styled_vq.model import StyledVQ

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OLD_NAMES = os.path.join(REPO, "test", "fixtures", "model-tiny")


def initializers(path):
    return {t.name: t for t in onnx.load(path).graph.initializer}


def test_package_with_research_names_loads():
    enc = initializers(os.path.join(OLD_NAMES, "encoder.onnx"))
    dec = initializers(os.path.join(OLD_NAMES, "decoder.onnx"))
    assert "m.ln_ecoder_1.weight" in enc and "m.afer_progject.bias" in dec  # the old names
    model = load_from_package(OLD_NAMES)  # raises if any weight is not found
    assert torch.equal(model.encoder.ln_pre.weight, torch.from_numpy(to_array(enc["m.ln_ecoder_1.weight"]).copy()))
    assert torch.equal(model.decoder_in.bias, torch.from_numpy(to_array(dec["m.afer_progject.bias"]).copy()))
    # Weights found by scope only (`/progject_mean/MatMul`, `/afer_progject/MatMul`) are set too.
    assert model.encoder.to_latent.weight.abs().sum() > 0 and model.decoder_in.weight.abs().sum() > 0


def test_package_exported_with_our_names_loads_back(tmp_path):
    torch.manual_seed(1)
    model = StyledVQ(preset("tiny"), codebook_size=32)
    model.codebook.embedding.normal_()
    model.eval()
    export_package(model, str(tmp_path / "pkg"), "t", parity_batch=1)
    dec = initializers(str(tmp_path / "pkg" / "decoder.onnx"))
    assert not [n for n in dec if "afer_progject" in n]
    back = load_from_package(str(tmp_path / "pkg"))
    for k, v in model.state_dict().items():
        if not any(u in k for u in UNUSED):
            assert torch.equal(back.state_dict()[k], v), k
    x = smooth_images(2, model.cfg.image_size)
    with torch.no_grad():
        assert torch.equal(back.decode(back.encode(x)), model.decode(model.encode(x)))
