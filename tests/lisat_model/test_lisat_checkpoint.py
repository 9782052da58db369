"""LISAt checkpoints: sharded save/load round trip, LISA's folder conventions (config.json fields,
no vision tower, derived buffers, .bin shards), and every misfit refused by name before loading."""

from __future__ import annotations

import json

import pytest

from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import torch
from safetensors.torch import load_file, save_file

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.models.lisat_checkpoint import (
    SAFE_INDEX,
    VISION_PREFIX,
    config_from_json,
    config_to_json,
    load_lisat,
    save_lisat,
)
from edgeperc.models.lisat_config import LisatConfig

SHARD = 1_500_000  # bytes: the tiny model (about 6.4 MB in float32) in five shards


@pytest.fixture(scope="module")
def reference(tiny_model, tiny_inputs):
    """The tiny model's outputs on fixed inputs: what a loaded copy must reproduce."""
    clip, sam, ids = tiny_inputs
    with torch.no_grad():
        return tiny_model(clip, sam, ids, (ids != 0).long(), original_size=(64, 64))


def _outputs(model, tiny_inputs):
    clip, sam, ids = tiny_inputs
    with torch.no_grad():
        return model(clip, sam, ids, (ids != 0).long(), original_size=(64, 64))


def _assert_same(out, reference):
    torch.testing.assert_close(out.logits, reference.logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.mask_logits, reference.mask_logits, atol=1e-6, rtol=0)


@pytest.fixture
def sharded(tmp_path, tiny_model, tiny_config):
    folder = save_lisat(tiny_model, tiny_config, tmp_path / "lisat", shard_bytes=SHARD)
    return folder, json.loads((folder / SAFE_INDEX).read_text())["weight_map"]


def test_sharded_round_trip(sharded, tiny_inputs, reference, tiny_config):
    folder, weight_map = sharded
    shards = sorted(set(weight_map.values()))
    assert len(shards) >= 3 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    model, config = load_lisat(folder)
    assert config == tiny_config
    _assert_same(_outputs(model, tiny_inputs), reference)


def test_single_file_and_bin_folder(tmp_path, tiny_model, tiny_config, tiny_inputs, reference):
    single = save_lisat(tiny_model, tiny_config, tmp_path / "one")
    assert (single / "model.safetensors").is_file() and not (single / SAFE_INDEX).exists()
    _assert_same(_outputs(load_lisat(single / "model.safetensors")[0], tiny_inputs), reference)
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "config.json").write_text((single / "config.json").read_text())
    state = dict(tiny_model.state_dict())
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(16)  # older transformers saved it
    torch.save(state, binary / "pytorch_model.bin")
    _assert_same(_outputs(load_lisat(binary)[0], tiny_inputs), reference)


def test_missing_shard_is_named(sharded):
    folder, weight_map = sharded
    gone = sorted(set(weight_map.values()))[1]
    (folder / gone).unlink()
    with pytest.raises(ModelFileError, match=f"shards listed in {SAFE_INDEX} are missing: {gone}"):
        load_lisat(folder)


def _rewrite(folder, weight_map, name, change):
    shard = folder / weight_map[name]
    tensors = load_file(str(shard))
    change(tensors)
    save_file(tensors, str(shard), metadata={"format": "pt"})


def test_mis_shaped_tensor_is_named(sharded):
    folder, weight_map = sharded
    name = "model.visual_model.mask_decoder.iou_token.weight"
    _rewrite(folder, weight_map, name, lambda t: t.update({name: torch.zeros(1, 32)}))
    with pytest.raises(ModelFileError, match=r"1 shape mismatches \(file vs model\): " + name.replace(".", r"\.")
                       + r" \(1, 32\) vs \(1, 64\)"):
        load_lisat(folder)


def test_unexpected_and_missing_tensors_are_named(sharded):
    folder, weight_map = sharded
    name = "model.text_hidden_fcs.0.2.bias"
    _rewrite(folder, weight_map, name, lambda t: (t.pop(name), t.update({"model.extra_head.weight": torch.zeros(2)})))
    with pytest.raises(ModelFileError) as err:
        load_lisat(folder)
    assert f"1 missing tensors: {name}" in str(err.value)
    assert "1 unexpected tensors: model.extra_head.weight" in str(err.value)


def test_tensor_in_two_shards_is_refused(sharded):
    folder, weight_map = sharded
    first, last = min(weight_map.values()), max(weight_map.values())
    name = next(k for k, f in weight_map.items() if f == first)
    copy = load_file(str(folder / first))[name]
    _rewrite(folder, {name: last}, name, lambda t: t.update({name: copy}))
    with pytest.raises(ModelFileError, match=f"1 tensors are in both {first} and {last}: {name}"):
        load_lisat(folder)


def test_truncated_and_corrupt_files(sharded, tmp_path):
    folder, weight_map = sharded
    shard = folder / max(weight_map.values())
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_lisat(folder)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((folder / "config.json").read_text())
    (bad / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not a zip archive")
    with pytest.raises(ModelFileError, match="weights_only=True"):
        load_lisat(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no weights in"):
        load_lisat(tmp_path / "empty")
    with pytest.raises(ModelFileError, match="checkpoint not found"):
        load_lisat(tmp_path / "nowhere")


def test_config_is_required_for_a_bare_file(tmp_path, tiny_model, tiny_config, tiny_inputs, reference):
    bare = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(bare))
    with pytest.raises(ConfigError, match="pass config="):
        load_lisat(bare)
    _assert_same(_outputs(load_lisat(bare, config=tiny_config)[0], tiny_inputs), reference)
    with pytest.raises(ModelFileError, match="shape mismatches"):
        load_lisat(bare, config=LisatConfig.tiny().model_copy(update={"llm": tiny_config.llm.model_copy(
            update={"intermediate_size": 352})}))


def test_lisa_folder_without_vision_tower_takes_clip_separately(tmp_path, tiny_model, tiny_config, tiny_inputs,
                                                                reference):
    """LISA's merge script drops model.vision_tower.*; CLIP comes from its own (CLIPModel) checkpoint."""
    state = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    lisa, clip = tmp_path / "lisa", tmp_path / "clip"
    lisa.mkdir()
    clip.mkdir()
    save_file({k: v for k, v in state.items() if not k.startswith(VISION_PREFIX)}, str(lisa / "model.safetensors"))
    (lisa / "config.json").write_text(json.dumps(config_to_json(tiny_config)))
    clip_state = {k.removeprefix(VISION_PREFIX): v for k, v in state.items() if k.startswith(VISION_PREFIX)}
    clip_state.update({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 8),
                       "logit_scale": torch.zeros(()),
                       "vision_model.embeddings.position_ids": torch.arange(65)[None]})
    save_file(clip_state, str(clip / "model.safetensors"))
    with pytest.raises(ModelFileError, match="pass vision_tower="):
        load_lisat(lisa)
    _assert_same(_outputs(load_lisat(lisa, vision_tower=clip)[0], tiny_inputs), reference)


def test_lisa_config_json_maps_onto_full():
    lisa_7b = {"architectures": ["LISAForCausalLM"], "model_type": "llava", "hidden_size": 4096,
               "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32,
               "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "vocab_size": 32003, "pad_token_id": 0,
               "mm_hidden_size": 1024, "mm_vision_select_layer": -2, "vision_tower": "openai/clip-vit-large-patch14",
               "out_dim": 256, "train_mask_decoder": True, "mm_use_im_start_end": True}
    assert config_from_json(lisa_7b) == LisatConfig.full()
    llava15 = {**lisa_7b, "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_projector_type": "mlp2x_gelu",
               "num_key_value_heads": 8, "max_position_embeddings": 4096}
    mapped = config_from_json(llava15)
    assert (mapped.vision.image_size, mapped.projector.kind, mapped.llm.kv_heads) == (336, "mlp2x_gelu", 8)
    assert config_from_json(config_to_json(LisatConfig.tiny())) == LisatConfig.tiny()
    with pytest.raises(ModelFileError, match="llm: hidden_size 4096 must be divisible by heads 30"):
        config_from_json({**lisa_7b, "num_attention_heads": 30})
