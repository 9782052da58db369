"""PolicyConfig / BCConfig validation and the LeRobot config.json mapping (torch-free)."""

from __future__ import annotations

import pytest

from edgeperc.errors import ConfigError
from edgeperc.models.policy_config import (
    ACTION_DIM,
    CHUNK_LENGTH,
    lerobot_overrides,
    make_bc_config,
)
from edgeperc.models.registry import get_family

FAMILY = get_family("rpt-policy")


def test_defaults_describe_a_16x8_chunk_policy():
    config = FAMILY.make_config()
    assert (config.chunk_length, config.action_dim) == (CHUNK_LENGTH, ACTION_DIM) == (16, 8)
    assert config.tokens == config.image_tokens + 1 + config.past_steps + config.chunk_length
    assert FAMILY.input_names == ("image", "proprio", "past_actions")
    assert FAMILY.output_names(config) == ("actions",)
    assert not FAMILY.higher_is_better


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"action_dim": 7}, "action dimension 7"),
        ({"d_model": 100, "heads": 3}, "divisible by heads"),
        ({"image_hw": (90, 96)}, "image_hw"),
        ({"chunk_stats": {"mean": [0.0] * 8, "std": [0.1] * 7 + [0.0]}}, "std must be > 0"),
        ({"proprio_stats": {"mean": [0.0] * 7, "std": [1.0] * 7}}, "proprio_stats must have 8"),
        ({"layers": 0}, "layers"),
    ],
)
def test_invalid_configs_name_the_field(overrides, names):
    with pytest.raises(ConfigError, match=names):
        FAMILY.make_config(overrides)


def test_config_round_trips_through_json():
    config = FAMILY.make_config({"layers": 2})
    assert FAMILY.make_config(config.model_dump(mode="json")) == config


def test_bc_options_are_validated_with_field_names():
    assert make_bc_config({"steps": 5}).steps == 5
    with pytest.raises(ConfigError, match="steps"):
        make_bc_config({"steps": 0})
    with pytest.raises(ConfigError, match="drop_image"):
        make_bc_config({"drop_image": 1.5})


def test_example_inputs_are_deterministic_and_shaped():
    config = FAMILY.make_config()
    a, b = FAMILY.example_inputs(config, 3, 7), FAMILY.example_inputs(config, 3, 7)
    assert {k: v.shape for k, v in a.items()} == {"image": (3, 3, 96, 96), "proprio": (3, 8), "past_actions": (3, 2, 8)}
    assert all((a[k] == b[k]).all() for k in a)
    assert a["image"].min() >= -1 and a["image"].max() <= 1


def test_lerobot_config_maps_act_names():
    overrides = lerobot_overrides({
        "type": "act", "chunk_size": 16, "dim_model": 64, "n_heads": 2, "n_encoder_layers": 2, "dim_feedforward": 128,
        "n_action_steps": 8, "output_features": {"action": {"type": "ACTION", "shape": [8]}},
        "input_features": {"observation.state": {"type": "STATE", "shape": [8]}},
    })
    assert overrides == {"chunk_length": 16, "d_model": 64, "heads": 2, "layers": 2, "ff_dim": 128}
    with_camera = lerobot_overrides({"input_features": {"observation.images.front": {"type": "VISUAL", "shape": [3, 128, 96]}}})
    assert with_camera == {"in_channels": 3, "image_hw": (128, 96)}


def test_lerobot_config_with_wrong_action_dim_is_refused():
    with pytest.raises(ConfigError, match=r"action dimension \[14\].*needs 8"):
        lerobot_overrides({"chunk_size": 16, "output_features": {"action": {"shape": [14]}}})


def test_lerobot_config_with_wrong_state_dim_is_refused():
    with pytest.raises(ConfigError, match=r"observation.state dimension \[6\]"):
        lerobot_overrides({"input_features": {"observation.state": {"shape": [6]}}})


def test_lerobot_config_with_wrong_chunk_is_refused():
    with pytest.raises(ConfigError, match="chunk length 100 does not fit.*16-step"):
        lerobot_overrides({"chunk_size": 100, "output_features": {"action": {"shape": [8]}}})
