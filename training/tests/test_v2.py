"""The v2 model (PCA skip path, per-position codebooks) and its pipeline on a real, short
run: train_v2.py -> export.py -> evaluate.py --final -> make_model_card_v2.py."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
from PIL import Image

from styled_vq.codebook import Codebook, QuantizeGraph
from styled_vq.config import preset
from styled_vq.model import StyledVQ
from styled_vq.pca_skip import fit_pca
from styled_vq.paths import REPO


def smooth_images(n: int, seed: int) -> np.ndarray:
    """uint8 [n,64,64,3]: bilinear-upsampled random 4x4 fields plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
    x = (x + 0.03 * torch.randn(n, 3, 64, 64, generator=g)).clamp(0, 1)
    return (x * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_per_position_codebook_graph_matches_quantize():
    torch.manual_seed(0)
    cb = Codebook(64, 8, positions=36)
    cb.embedding.copy_(torch.randn(36, 64, 8) * torch.linspace(5, 0.2, 36)[:, None, None])
    z = cb.embedding[torch.arange(36), torch.randint(0, 64, (36,))] + 0.01 * torch.randn(3, 36, 8)
    ids = cb.quantize(z)
    assert ids.shape == (3, 36) and int(ids.max()) < 64
    assert torch.equal(QuantizeGraph(cb)(z), ids)
    # dequantize picks each position's own row
    back = cb.dequantize(ids)
    assert torch.equal(back[1, 5], cb.embedding[5, ids[1, 5]])
    assert torch.equal(cb.quantize(back), ids)


def test_pca_skip_starts_at_the_pca_code():
    x = torch.from_numpy(smooth_images(400, 1)).permute(0, 3, 1, 2).float() / 127.5 - 1
    mean, comps, std = fit_pca(x, 288)
    assert torch.allclose(comps @ comps.t(), torch.eye(288), atol=1e-3)   # orthonormal directions
    assert bool((std[:-1] >= std[1:] - 1e-4).all())                        # ordered by variance
    m = StyledVQ(preset("skip64")).eval()
    m.skip.init_from(mean, comps, std)
    with torch.no_grad():
        z = m.skip.encode(x[:4])
        y = m.skip.decode(z)
        y8 = m.skip.decode(torch.cat([z[:, :8], torch.zeros_like(z[:, 8:])], 1))
    mse = lambda a: float(((a - x[:4]) ** 2).mean())  # noqa: E731
    assert mse(y) < mse(y8) < float(((mean.reshape(1, 3, 64, 64) - x[:4]) ** 2).mean())


def write_pack(folder: str, split: str, arr: np.ndarray) -> None:
    offs, blobs = [0], []
    for img in arr:
        b = io.BytesIO()
        Image.fromarray(img).save(b, "JPEG", quality=95)
        blobs.append(b.getvalue())
        offs.append(offs[-1] + len(blobs[-1]))
    with open(os.path.join(folder, f"{split}.bin"), "wb") as f:
        f.write(b"".join(blobs))
    np.save(os.path.join(folder, f"{split}.idx.npy"), np.asarray(offs, dtype=np.int64))


def run_unchecked(script: str, *args: str) -> subprocess.CompletedProcess:
    """`python3 -m training.<script> ARGS` from the repository root, as training/README.md says."""
    module = "training." + script.removesuffix(".py")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def run(script: str, *args: str) -> str:
    """run_unchecked, which must succeed; its stdout."""
    r = run_unchecked(script, *args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_short_run_exports_evaluates_and_writes_a_card(tmp_path):
    pack, rundir, pkg, ev = (str(tmp_path / n) for n in ("pack", "run", "pkg", "eval"))
    os.makedirs(pack)
    write_pack(pack, "train", smooth_images(400, 2))
    write_pack(pack, "val", smooth_images(24, 3))
    run("train_v2.py", "--run", rundir, "--data", f"pack:{pack}", "--device", "cpu", "--threads", "1",
        "--stage1-steps", "2", "--stage2-steps", "2", "--batch", "8", "--codebook-size", "16",
        "--kmeans-iters", "2", "--refine-iters", "1", "--log-every", "1", "--eval-every", "2")
    log = [json.loads(line) for line in open(os.path.join(rundir, "log.jsonl"))]
    kinds = [r["kind"] for r in log]
    for k in ("args", "model", "pca_only", "stage1", "stage1_done", "kmeans_done", "stage2", "stage2_done", "saved"):
        assert k in kinds, k
    final = os.path.join(rundir, "final.pt")
    ck = torch.load(final)
    assert ck["model"]["codebook.embedding"].shape == (36, 16, 8)
    assert ck["prefix_fill"]["values"].shape == (36, 8)

    out = json.loads(run("export.py", "--checkpoint", final, "--out", pkg, "--name", "v2-test").strip().splitlines()[-1])
    manifest = json.load(open(os.path.join(pkg, "model.json")))
    assert manifest["codebook"] == {"size": 16, "dim": 8, "metric": "l2", "per_position": True}
    assert out["fingerprint"] == manifest["fingerprint"]
    # The quantize graph stores the codebook once (as the augmented [T, D+1, K] table).
    inits = onnx.load(os.path.join(pkg, "codebook.onnx")).graph.initializer
    assert sum(int(np.prod(t.dims)) for t in inits) == 36 * 9 * 16

    run("evaluate.py", "--final", final, "--set", "photos", "--ks", "1,8", "--limit", "6", "--grid", "4", "--threads", "1", "--out", ev)
    e = json.load(open(os.path.join(ev, "evaluation.json")))
    assert e["command"].startswith("python3 -m training.evaluate --final ")
    assert e["data"]["split"] == "photos" and e["data"]["images"] == 6 and e["data"]["of"] >= 30
    assert e["prefix_curve"]["k"] == [0, 1, 8, 36]
    names = [r["name"] for r in e["requirements"]]
    assert "k = 8 holds at least half of the k = 36 gain over the mean colour" in names

    run("make_model_card_v2.py", "--package", pkg, "--log", os.path.join(rundir, "log.jsonl"), "--eval", f"photos={ev}")
    card = open(os.path.join(pkg, "MODEL_CARD.md")).read()
    assert "## Quality: real photos" in card and manifest["fingerprint"] in card
    assert os.path.exists(os.path.join(pkg, "photos_prefix_curve.png"))
