"""LisatConfig: presets, validation errors that name the field, SAM's resize rule (torch-free)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgeperc.errors import ConfigError
from edgeperc.models.lisat_config import LisatConfig, make_lisat_config, sam_resize_hw


def test_full_preset_is_lisa_7b_layout():
    full = LisatConfig.full()
    assert (full.vision.image_size, full.vision.patch_size, full.vision.hidden_size, full.vision.layers) == (224, 14, 1024, 24)
    assert full.vision.select_layer == -2 and full.vision.tokens == 256  # LISA's "255" offset: 256 tokens for 1
    assert (full.llm.hidden_size, full.llm.layers, full.llm.heads, full.llm.intermediate_size) == (4096, 32, 32, 11008)
    assert full.llm.vocab_size == 32003 and full.seg_token_id == 32000  # [SEG], <im_start>, <im_end> added
    assert (full.sam.encoder_embed_dim, full.sam.encoder_depth, full.sam.encoder_heads) == (1280, 32, 16)
    assert full.sam.global_attn_indexes == (7, 15, 23, 31) and full.sam.embedding_size == 64
    assert full.sam.prompt_embed_dim == 256 and full.image_token_id == -200


def test_tiny_preset_is_small_and_frozen():
    tiny = LisatConfig.tiny()
    assert tiny.vision.tokens == 64 and tiny.sam.embedding_size == 16
    with pytest.raises(ValidationError, match="frozen"):
        tiny.seg_token_id = 7


@pytest.mark.parametrize("overrides, field", [
    ({"sam": {"global_attn_indexes": [5]}}, "sam"),
    ({"sam": {"prompt_embed_dim": 60}}, "sam"),
    ({"vision": {"patch_size": 15}}, "vision"),
    ({"vision": {"select_layer": -9}}, "vision"),
    ({"llm": {"heads": 3}}, "llm"),
    ({"llm": {"kv_heads": 3}}, "llm"),
    ({"llm": {"hidden_size": 4}}, "llm.hidden_size"),
    ({"seg_token_id": 600}, "seg_token_id"),
    ({"image_token_id": 5}, "image_token_id"),
    ({"projector": {"kind": "qformer"}}, "projector.kind"),
    ({"sam": {"windw_size": 4}}, "sam.windw_size"),
])
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        make_lisat_config(overrides, preset="tiny")
    message = str(err.value)
    assert message.startswith("invalid lisat config:") and f"{field}" in message
    for value in overrides.values():  # the offending sub-field is named too
        if isinstance(value, dict):
            assert any(sub in message for sub in value) or "indexes" in message or "divisible" in message


def test_overrides_merge_into_the_preset():
    config = make_lisat_config({"sam": {"window_size": 0}, "llm": {"layers": 1}}, preset="tiny")
    assert config.sam.window_size == 0 and config.llm.layers == 1 and config.llm.hidden_size == 128
    with pytest.raises(ConfigError, match="unknown LISAt preset"):
        make_lisat_config({}, preset="huge")


def test_sam_resize_is_longest_side():
    assert sam_resize_hw((512, 512), 1024) == (1024, 1024)
    assert sam_resize_hw((300, 600), 1024) == (512, 1024)
    assert sam_resize_hw((333, 1000), 1024) == (341, 1024)  # int(h * scale + 0.5), as ResizeLongestSide
    with pytest.raises(ConfigError):
        sam_resize_hw((0, 10), 1024)
