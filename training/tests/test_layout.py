"""Names and shapes at the checkpoint boundary equal the research checkpoint's."""
import os

import torch

from styled_vq.checkpoint import RENAMES, from_research, legacy_name, model_from_state_dict, ours_names, to_research
from styled_vq.config import preset
from styled_vq.encoder import Encoder
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


def test_model_names_are_ours_and_research_names_only_at_the_boundary():
    model = StyledVQ(preset("tiny"), codebook_size=64)
    ours = model.state_dict()
    research_names = [r for _, r in RENAMES]
    assert not [k for k in ours if any(k == r or k.startswith(r + ".") for r in research_names)]
    assert isinstance(model.encoder, Encoder)
    research = to_research(ours)
    assert "afer_progject.weight" in research and "ln_ecoder_1.weight" in research
    assert "progject_mean.bias" in research and "decoder.cov.weight" in research
    assert not [k for k in research if k.startswith("encoder.") or k.startswith("decoder_in.")]


def test_checkpoint_saved_with_pre_rename_names_loads():
    """final.pt / stage*.pt / *.ckpt written before issue 14.5 carry the research names in our
    layout (stacked experts, `head.`, `codebook.embedding`)."""
    torch.manual_seed(0)
    model = StyledVQ(preset("tiny"), codebook_size=64)
    old = {legacy_name(k): v for k, v in model.state_dict().items()}
    assert "afer_progject.weight" in old and "resblocks_exper.0.experts_fc_weight" in old
    assert ours_names(old).keys() == model.state_dict().keys()
    loaded = model_from_state_dict(old, preset("tiny"))
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert ours_names(model.state_dict()).keys() == model.state_dict().keys()  # today's names pass unchanged
