"""Export round trip: checkpoint -> package -> manifest and graphs that say what they are."""
import hashlib
import json
import os

import onnx
import torch

from styled_vq.checkpoint import load_model
from styled_vq.config import preset
from styled_vq.export import export_package, fingerprint, sha256_file
from styled_vq.model import StyledVQ


def tiny_model():
    torch.manual_seed(1)
    m = StyledVQ(preset("tiny"), codebook_size=32)
    m.codebook.embedding.normal_()
    return m.eval()


def check_graph(path, inputs, outputs):
    g = onnx.load(path, load_external_data=False).graph
    assert [i.name for i in g.input] == inputs
    assert [o.name for o in g.output] == outputs
    for v in list(g.input) + list(g.output):
        assert v.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_export_package_manifest_and_graphs(tmp_path):
    model = tiny_model()
    ckpt = tmp_path / "ours.pt"
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict()}, ckpt)
    loaded = load_model(str(ckpt))  # our checkpoint format loads back
    out = tmp_path / "pkg"
    m = export_package(loaded, str(out), "t", parity_batch=2)
    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk == m
    assert m["format"] == "styled-vq-model" and m["version"] == 1
    assert m["codebook"] == {"size": 32, "dim": 16, "metric": "l2"}
    assert m["config"] == preset("tiny").to_dict()
    for role, entry in m["files"].items():
        assert sha256_file(str(out / entry["path"])) == entry["sha256"], role
        assert os.path.getsize(out / entry["path"]) == entry["bytes"]
        assert onnx.load(str(out / entry["path"])).opset_import[0].version == 17
    assert m["fingerprint"] == fingerprint(m["files"])
    check_graph(out / "encoder.onnx", ["image"], ["latents"])
    check_graph(out / "decoder.onnx", ["latents"], ["image"])
    check_graph(out / "codebook.onnx", ["latents"], ["tokens"])
    check_graph(out / "dequantize.onnx", ["tokens"], ["latents"])
    parity = json.loads((out / "parity.json").read_text())
    assert parity["tokens"]["dtype"] == "int64" and parity["image"]["shape"] == [2, 3, 64, 64]


def test_fingerprint_follows_the_documented_recipe():
    files = {r: {"sha256": r * 2, "data": None} for r in ("codebook", "decoder", "dequantize", "encoder")}
    text = "styled-vq-fingerprint-v1\ncodebook codebookcodebook\ndecoder decoderdecoder\n" \
           "dequantize dequantizedequantize\nencoder encoderencoder\n"
    assert fingerprint(files) == hashlib.sha256(text.encode()).hexdigest()[:16]



def test_prefix_fill_goes_into_the_manifest_and_the_fingerprint(tmp_path):
    """docs/model-package.md, "Prefix fill": the values as [T][D] floats in model.json and one
    more fingerprint line (sha256 of little-endian float32, row-major); without a fill the
    fingerprint text stays v1, so old token files keep matching."""
    import numpy as np
    import pytest
    model = tiny_model()
    t, d = model.cfg.num_tokens, model.cfg.latent_dim
    values = np.linspace(-1, 1, t * d, dtype=np.float32).reshape(t, d)
    m = export_package(model, str(tmp_path / "pkg"), "t", prefix_fill=("mean_latent", values))
    assert m["prefix_fill"]["kind"] == "mean_latent"
    assert np.array_equal(np.asarray(m["prefix_fill"]["values"], dtype=np.float32), values)
    lines = ["styled-vq-fingerprint-v1"]
    for role in ("codebook", "decoder", "dequantize", "encoder"):
        lines.append(f"{role} {m['files'][role]['sha256']}")
    v1 = "\n".join(lines) + "\n"
    fill_line = "prefix_fill " + hashlib.sha256(values.astype("<f4").tobytes()).hexdigest() + "\n"
    assert m["fingerprint"] == hashlib.sha256((v1 + fill_line).encode()).hexdigest()[:16]
    assert fingerprint(m["files"]) == hashlib.sha256(v1.encode()).hexdigest()[:16] != m["fingerprint"]
    with pytest.raises(ValueError):
        export_package(model, str(tmp_path / "bad"), "t", prefix_fill=("mean_latent", values[:-1]))


def test_external_data_is_one_file_per_graph(tmp_path):
    """The > 2 GB path (forced here on a tiny model): one .onnx.data per graph, loadable."""
    out = tmp_path / "pkg"
    m = export_package(tiny_model(), str(out), "t", external_data=True)
    names = sorted(os.listdir(out))
    assert names == sorted(["model.json", "encoder.onnx", "encoder.onnx.data", "decoder.onnx",
                            "decoder.onnx.data", "codebook.onnx", "dequantize.onnx"])
    for role in ("encoder", "decoder"):
        data = m["files"][role]["data"]
        assert data["path"] == f"{role}.onnx.data"
        assert sha256_file(str(out / data["path"])) == data["sha256"]
        proto = onnx.load(str(out / f"{role}.onnx"))  # resolves the external data
        ext = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert ext == []  # all loaded back in
        raw = onnx.load(str(out / f"{role}.onnx"), load_external_data=False)
        locs = {e.value for t in raw.graph.initializer for e in t.external_data if e.key == "location"}
        assert locs == {f"{role}.onnx.data"}
