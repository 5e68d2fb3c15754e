"""Unit tests of the evaluation helpers (styled_vq/evaluation.py) and of evaluate.py's
per-batch loop on a tiny random model. No data files, no checkpoints: runs in seconds."""
import math

import numpy as np
import pytest
import torch

from styled_vq.config import preset
from styled_vq.evaluation import (Meter, bit_budget, code_usage, draw_grid, draw_line_plot, keep_prefix,
                                  mean_colour, perplexity, pick_grid_indices, requirements, thumbnail,
                                  thumbnail_side, uint8_to_unit)
from styled_vq.model import StyledVQ


def test_bit_budget_and_thumbnail_side():
    assert bit_budget(36, 4096) == pytest.approx(432.0)
    assert thumbnail_side(432) == 4      # 4*4*24 = 384 <= 432 < 5*5*24
    assert thumbnail_side(360) == 3      # K = 1024
    assert thumbnail_side(600) == 5      # exactly 5*5*24
    assert thumbnail_side(599) == 4
    assert thumbnail_side(10) == 1       # never below 1x1 (= the mean colour)


def test_mean_colour_rounds_to_8_bit():
    arr = np.zeros((2, 4, 4, 3), np.uint8)
    arr[0, :2] = 255           # half white, half black: mean 127.5 -> 128 (round half to even gives 128)
    arr[1] = [10, 20, 30]
    out = mean_colour(arr)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    assert (out[0] == 128).all()
    assert (out[1] == [10, 20, 30]).all()


def test_thumbnail_is_pil_box_then_bicubic():
    flat = np.full((1, 16, 16, 3), 77, np.uint8)
    assert (thumbnail(flat, 2) == 77).all()          # a flat image survives any resampling
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(thumbnail(arr, 16), arr)   # n = S: BOX and BICUBIC are identities
    t = thumbnail(arr, 4)
    assert t.shape == arr.shape and t.dtype == np.uint8
    # A left/right split keeps its sides after a 2x2 round trip.
    half = np.zeros((1, 16, 16, 3), np.uint8)
    half[:, :, 8:] = 200
    t = thumbnail(half, 2)
    assert t[0, :, 0].max() < 20 and t[0, :, -1].min() > 180


def test_perplexity_and_code_usage():
    assert perplexity(torch.tensor([5, 5, 5, 5, 0, 0])) == pytest.approx(4.0)
    assert perplexity(torch.tensor([7, 0, 0])) == pytest.approx(1.0)
    ids = torch.tensor([[0, 1], [2, 1], [3, 1], [0, 1]])   # 4 images, 2 positions, K = 8
    u = code_usage(ids, 8)
    assert u["tokens"] == 8 and u["used"] == 4 and u["used_fraction"] == pytest.approx(0.5)
    p = torch.tensor([2, 4, 1, 1]) / 8.0
    assert u["perplexity"] == pytest.approx(math.exp(-(p * p.log()).sum().item()))
    assert u["per_position"]["used"] == [3, 1]
    assert u["per_position"]["perplexity"][1] == pytest.approx(1.0)
    assert u["per_position"]["max_possible"] == 4


def test_keep_prefix():
    z = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    neutral = -torch.ones(4, 3)
    assert torch.equal(keep_prefix(z, 4, neutral), z)
    assert torch.equal(keep_prefix(z, 0, neutral), neutral.expand(2, 4, 3))
    k2 = keep_prefix(z, 2, neutral)
    assert torch.equal(k2[:, :2], z[:, :2]) and (k2[:, 2:] == -1).all()
    assert torch.equal(z, torch.arange(24, dtype=torch.float32).reshape(2, 4, 3))  # input untouched


def test_meter_identity_and_noise():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    x = uint8_to_unit(arr)
    m = Meter()
    m.add("same", x, x)
    noisy = (x + 0.1).clamp(0, 1)
    m.add("noisy", noisy, x)
    s = m.summary("same")
    assert s["ssim"] == pytest.approx(1.0) and s["psnr"] > 100 and s["images"] == 3
    mse = ((noisy - x) ** 2).flatten(1).mean(1)
    assert m.summary("noisy")["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)


def test_requirements_are_computed_from_numbers():
    q = {"quantized": {"psnr": 20.0, "ssim": 0.55}, "continuous": {"psnr": 20.2, "ssim": 0.56},
         "mean_colour": {"psnr": 15.0, "ssim": 0.3}, "thumbnail": {"psnr": 19.5, "ssim": 0.43}}
    curve = {"k": [0, 1, 8, 36], "quantized": {"psnr": [12.0, 16.0, 18.5, 20.0]}}
    r = requirements(q, {"used_fraction": 0.95}, curve)
    assert len(r) == 7 and all(it["passed"] for it in r), r
    q["continuous"]["psnr"] = 20.6                       # quantization cost 0.6 dB
    q["thumbnail"]["psnr"] = 20.5                        # thumbnail wins
    curve["quantized"]["psnr"] = [12.0, 14.0, 13.5, 17.0]  # k=1 below mean colour, k=8 short, not monotone
    r = {it["name"]: it["passed"] for it in requirements(q, {"used_fraction": 0.5}, curve)}
    assert [name for name, ok in r.items() if ok] == ["quantized SSIM above the thumbnail's"]
    # Per-position codebooks: usage is judged on the training crops when measured there.
    r = requirements(q, {"used_fraction": 0.3, "train": {"used_fraction": 0.97}}, curve)
    assert r[-1]["passed"] is True
    r = requirements({"mean_colour": {"psnr": 14.0}}, None)
    assert [it["passed"] for it in r] == [None, None, None]


def test_pick_grid_indices_varied_and_deterministic():
    sources = []
    for g, n_files, crops in (("a", 5, 10), ("b", 3, 4), ("c", 1, 7)):
        for f in range(n_files):
            sources += [{"group": g, "package": "p", "path": f"{g}{f}"}] * crops
    idx = pick_grid_indices(sources, 6, len(sources))
    assert idx == pick_grid_indices(sources, 6, len(sources)) and idx == sorted(idx)
    assert len(idx) == 6
    paths = [sources[i]["path"] for i in idx]
    assert len(set(paths)) == 6                          # one crop per source file
    assert {sources[i]["group"] for i in idx} == {"a", "b", "c"}
    assert pick_grid_indices(None, 4, 100) == [0, 33, 66, 99]
    assert len(pick_grid_indices(sources[:3], 10, 3)) == 1   # only one source: one pick


def test_drawings_have_the_expected_size():
    rows = [("original", np.zeros((3, 8, 8, 3), np.uint8)), ("quantized", np.full((3, 8, 8, 3), 255, np.uint8))]
    g = draw_grid(rows, scale=3, captions=["#1", "#2", "#3"])
    assert g.height > 2 * 24 and g.width > 3 * 24
    p = draw_line_plot([0, 1, 2, 4], [("a", [10.0, 11.0, 12.5, 13.0])], [("ref", 12.0), ("missing", None)],
                       title="t", xlabel="k", ylabel="PSNR (dB)", size=(400, 300))
    assert p.size == (400, 300)


def test_evaluate_loop_on_a_tiny_random_model():
    """The per-batch loop of evaluate.py: prefix k = 36 is the full quantized model, the
    metrics and token ids cover every image, the grid holds the picked crops."""
    import evaluate

    torch.manual_seed(0)
    cfg = preset("tiny")
    s1 = StyledVQ(cfg).eval()
    rng = np.random.default_rng(0)
    val = rng.integers(0, 256, (5, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    train = rng.integers(0, 256, (6, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    lat = evaluate.encode_all(s1, train)
    qm = evaluate.with_codebook(s1, lat.reshape(-1, cfg.latent_dim)[:16], "l2")
    roles = {"continuous": s1, "quantized": qm, "stage2": None}
    neutral = evaluate.neutral_latents(roles, {"continuous": lat, "quantized": lat})
    assert neutral["quantized_ids"].shape == (cfg.num_tokens,)
    res = evaluate.evaluate_val(roles, val, neutral, 2, [1, 3], lambda s: None)
    m = res["meter"]
    assert res["ids"].shape == (5, cfg.num_tokens)
    assert m.summary("prefix_quantized_36")["psnr"] == pytest.approx(m.summary("quantized")["psnr"])
    assert m.summary("prefix_continuous_36")["psnr"] == pytest.approx(m.summary("continuous")["psnr"])
    assert set(res["grid"]) == {"original", "continuous", "quantized", "thumbnail"}
    assert np.array_equal(res["grid"]["original"], val[[1, 3]])
    q = evaluate.quality_table(m)
    assert q["quantization_cost_db"] == pytest.approx(q["continuous"]["psnr"] - q["quantized"]["psnr"])
    assert q["mean_colour"]["images"] == 5


def test_markdown_helpers():
    from make_model_card import first_code_block, first_table, markdown_section

    md = "# T\n\n## A\n\ntext\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter\n\n### A.1\n\n```sh\nrun x\n```\n\n## B\n\n| z |\n"
    sec = markdown_section(md, "A")
    assert "## B" not in sec and "### A.1" in sec
    assert first_table(sec) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert first_code_block(sec) == ["run x"]
    assert markdown_section(md, "missing") == ""


def test_budget_info():
    import evaluate

    b = evaluate.budget_info(36, 4096)
    assert (b["bits"], b["thumbnail_side"], b["thumbnail_bits"], b["mean_colour_bits"]) == (432.0, 4, 384, 24)
    assert "note" not in b
    b = evaluate.budget_info(36, None)
    assert b["codebook_size"] == 4096 and "note" in b
