"""Names and shapes at the checkpoint boundary equal the research checkpoint's."""
import os

import torch

from styled_vq.checkpoint import from_research, model_from_state_dict, to_research
from styled_vq.config import preset
from styled_vq.meta import meta_device
from styled_vq.model import StyledVQ

REF = os.environ.get("STYLED_VQ_REFERENCE", os.path.join(os.path.dirname(__file__), "reference"))


def read_layout():
    rows = {}
    with open(os.path.join(REF, "seed-checkpoint-layout.tsv")) as f:
        next(f)
        for line in f:
            key, shape, numel = line.rstrip("\n").split("\t")
            rows[key] = (tuple(int(s) for s in shape.split("x")), int(numel))
    return rows


def test_seed_layout_matches_research_checkpoint():
    expected = read_layout()
    with meta_device():
        model = StyledVQ(preset("seed"), codebook_size=194560)
    sd = to_research(model.state_dict())
    assert all(t.device.type == "meta" for t in sd.values())  # nothing allocated
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert sorted(got) == sorted(expected)
    mismatched = [k for k in expected if got[k] != expected[k][0]]
    assert mismatched == []
    assert sum(n for _, n in expected.values()) == 2_365_808_227
    assert sum(v.numel() for v in sd.values()) == 2_365_808_227


def test_round_trip_research_layout_is_lossless():
    torch.manual_seed(0)
    model = StyledVQ(preset("tiny"), codebook_size=64)
    model.codebook.embedding.normal_()
    research = to_research(model.state_dict())
    # A research checkpoint saved from DataParallel carries `module.` prefixes.
    prefixed = {"module." + k: v for k, v in research.items()}
    back = to_research(model_from_state_dict(prefixed, preset("tiny")).state_dict())
    assert sorted(back) == sorted(research)
    for k in research:
        assert torch.equal(back[k], research[k]), k
    ours = from_research(research)
    for k, v in model.state_dict().items():
        assert torch.equal(ours[k], v), k
