"""Our PyTorch model against the research code's outputs (shared/reference/parity)."""
import os

import pytest
import torch

from styled_vq.checkpoint import model_from_state_dict
from styled_vq.config import preset

REF = os.environ.get("STYLED_VQ_REFERENCE", os.path.join(os.path.dirname(__file__), "reference"))
PARITY = os.path.join(REF, "parity")


@pytest.fixture(scope="module")
def parity():
    if not os.path.exists(os.path.join(PARITY, "parity_state_dict.pt")):
        pytest.fail(f"parity fixture not found under {PARITY} (set STYLED_VQ_REFERENCE)")
    sd = torch.load(os.path.join(PARITY, "parity_state_dict.pt"), map_location="cpu")
    io = torch.load(os.path.join(PARITY, "parity_io.pt"), map_location="cpu")
    model = model_from_state_dict(sd, preset("parity")).eval()
    return model, io


def test_encoder_parity(parity):
    model, io = parity
    with torch.no_grad():
        lat = model.encode(io["image"])
    ref = io["latents_seq_first"].transpose(0, 1)
    err = (lat - ref).abs().max().item()
    assert err < 5e-6, err


def test_decoder_parity(parity):
    model, io = parity
    with torch.no_grad():
        out = model.decode(io["latents_seq_first"].transpose(0, 1))
    err = (out - io["decoded"]).abs().max().item()
    assert err < 5e-6, err
