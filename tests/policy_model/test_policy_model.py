"""RPTPolicy: shapes, physical-unit outputs, mask tokens for missing or dropped modalities, size."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="model tests need the [export] extra (torch)")

from edgeperc.models.policy import RPTPolicy, parameter_count
from edgeperc.models.registry import get_family
from tests.policy_model.conftest import TINY

FAMILY = get_family("rpt-policy")


def _model(overrides=None, seed=0):
    torch.manual_seed(seed)
    model = FAMILY.build(FAMILY.make_config({**TINY, **(overrides or {})})).eval()
    torch.nn.init.normal_(model.head.weight, std=0.3)  # the zero-initialised head would hide every difference
    return model


def _feeds(config, batch=3, seed=0):
    return {k: torch.from_numpy(v) for k, v in FAMILY.example_inputs(config, batch, seed).items()}


@pytest.mark.parametrize("batch", [1, 3])
def test_output_is_a_16x8_chunk(batch):
    model = _model()
    (actions,) = model(**_feeds(model.config, batch))
    assert actions.shape == (batch, 16, 8) and actions.dtype == torch.float32


def test_fresh_model_predicts_the_mean_chunk_in_physical_units():
    config = FAMILY.make_config({**TINY, "chunk_stats": {"mean": [0.1] * 7 + [0.05], "std": [0.2] * 7 + [0.04]}})
    (actions,) = RPTPolicy(config).eval()(**_feeds(config))
    torch.testing.assert_close(actions, torch.tensor([0.1] * 7 + [0.05]).expand(3, 16, 8))


def test_missing_modality_uses_its_mask_token():
    model = _model()
    feeds = _feeds(model.config)
    with torch.no_grad():
        (full,) = model(**feeds)
        (no_image,) = model(proprio=feeds["proprio"], past_actions=feeds["past_actions"])
        dropped = torch.tensor([[False, True, True]] * 3)
        (masked,) = model(**feeds, keep=dropped)
        (kept,) = model(**feeds, keep=torch.ones(3, 3, dtype=torch.bool))
        model.mask_tokens[0] += 1.0
        (other_token,) = model(proprio=feeds["proprio"], past_actions=feeds["past_actions"])
        (full_again,) = model(**feeds)
    torch.testing.assert_close(masked, no_image)  # keep=False for a sample == the input absent
    torch.testing.assert_close(kept, full)
    assert not torch.allclose(no_image, full)
    assert not torch.allclose(other_token, no_image)  # the mask token is what stands in
    torch.testing.assert_close(full_again, full)  # and it is unused when the image is there


def test_keep_is_per_sample():
    model = _model()
    feeds = _feeds(model.config)
    keep = torch.tensor([[True, True, True], [True, False, True], [True, True, False]])
    with torch.no_grad():
        (mixed,) = model(**feeds, keep=keep)
        (full,) = model(**feeds)
        (no_past,) = model(image=feeds["image"], proprio=feeds["proprio"])
    torch.testing.assert_close(mixed[0], full[0])
    torch.testing.assert_close(mixed[2], no_past[2])


def test_no_input_at_all_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        _model()()


def test_default_size_fits_the_edge_budget():
    model = FAMILY.build(FAMILY.make_config())
    assert 2e5 < parameter_count(model) < 2e6  # a few MB of fp32 safetensors
    assert set(model.state_dict()) == {k for k, _ in model.named_parameters()}  # statistics live in the config


def test_camera_tokens_for_auxiliary_heads_leave_the_actions_alone():
    model = _model()
    feeds = _feeds(model.config)
    with torch.no_grad():
        (actions,) = model(**feeds)
        same, tokens = model.actions_and_camera_tokens(**feeds)
        _, none = model.actions_and_camera_tokens(proprio=feeds["proprio"])
    torch.testing.assert_close(same, actions)
    assert tokens.shape == (3, model.config.image_tokens, model.config.d_model) and none is None
