"""Loading rpt-policy checkpoints: edgeperc, plain state dicts, LeRobot folders; misfits refused by name."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="checkpoint tests need the [export] extra (torch)")

from safetensors.torch import save_file

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.models.checkpoints import read_state, save_checkpoint
from edgeperc.models.policy import config_from_state, convert_checkpoint, load_policy
from edgeperc.models.registry import get_family
from tests.policy_model.conftest import TINY

FAMILY = get_family("rpt-policy")
STATE_STATS = {"mean": [0.0, -0.8, 0.0, -2.4, 0.0, 1.6, 0.8, 0.04], "std": [0.25] * 7 + [0.03]}
ACTION_STATS = {"mean": [0.0] * 7 + [0.04], "std": [0.12] * 7 + [0.04]}


def _module(overrides=None):
    torch.manual_seed(2)
    module = FAMILY.build(FAMILY.make_config({**TINY, **(overrides or {})})).eval()
    torch.nn.init.normal_(module.head.weight, std=0.3)
    return module


def _run(module):
    feeds = FAMILY.example_inputs(module.config, 2, seed=9)
    with torch.no_grad():
        return module(**{k: torch.from_numpy(v) for k, v in feeds.items()})[0]


def _lerobot_folder(tmp_path, module, config_json, legacy_stats=False):
    """A LeRobot-style pretrained_model folder: the network under ``model.``, stats beside it."""
    folder = tmp_path / "pretrained_model"
    folder.mkdir()
    state = {f"model.{k}": v.contiguous() for k, v in module.state_dict().items()}
    if legacy_stats:  # LeRobot < 0.4: normaliser buffers inside model.safetensors
        for prefix, stats in (("normalize_inputs.buffer_observation_state", STATE_STATS),
                              ("unnormalize_outputs.buffer_action", ACTION_STATS)):
            state[f"{prefix}.mean"], state[f"{prefix}.std"] = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
    else:
        save_file({"observation.state.mean": torch.tensor(STATE_STATS["mean"]), "observation.state.std": torch.tensor(STATE_STATS["std"]),
                   "action.mean": torch.tensor(ACTION_STATS["mean"]), "action.std": torch.tensor(ACTION_STATS["std"])},
                  str(folder / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config_json))
    return folder


def _act_config(module, **changes):
    c = module.config
    return {"type": "act", "chunk_size": c.chunk_length, "n_action_steps": 8, "dim_model": c.d_model, "n_heads": c.heads,
            "n_encoder_layers": c.layers, "dim_feedforward": c.ff_dim, "base_width": c.base_width,
            "image_tokens": c.image_tokens, "dropout": 0.0,
            "input_features": {"observation.state": {"type": "STATE", "shape": [8]},
                               "observation.images.front": {"type": "VISUAL", "shape": [3, 96, 96]}},
            "output_features": {"action": {"type": "ACTION", "shape": [8]}}, **changes}


def test_edgeperc_checkpoint_round_trips(tmp_path):
    module = _module({"chunk_stats": ACTION_STATS})
    path = save_checkpoint(module, tmp_path / "p.safetensors", FAMILY.name, module.config.model_dump(mode="json"))
    loaded, config = load_policy(path)
    assert config == module.config and not loaded.training
    torch.testing.assert_close(_run(loaded), _run(module))


@pytest.mark.parametrize("legacy", [False, True])
def test_lerobot_folder_loads_with_its_statistics(tmp_path, legacy):
    module = _module()
    folder = _lerobot_folder(tmp_path, module, _act_config(module), legacy_stats=legacy)
    loaded, config = load_policy(folder)
    assert list(config.proprio_stats.mean) == pytest.approx(STATE_STATS["mean"])
    assert list(config.chunk_stats.std) == pytest.approx(ACTION_STATS["std"])
    reference = FAMILY.build(config).eval()
    reference.load_state_dict(module.state_dict())
    torch.testing.assert_close(_run(loaded), _run(reference))
    converted = convert_checkpoint(folder, tmp_path / "converted.safetensors")
    _, again_config = load_policy(converted)
    assert again_config == config


def test_plain_state_dict_infers_its_sizes(tmp_path):
    module = _module({"past_steps": 3})
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    inferred = config_from_state(read_state(tmp_path / "plain.safetensors")[0])
    assert inferred["past_steps"] == 3 and inferred["d_model"] == TINY["d_model"] and inferred["layers"] == 1
    loaded, config = load_policy(tmp_path / "plain.safetensors", config_overrides={"heads": TINY["heads"]})
    assert config.past_steps == 3
    torch.testing.assert_close(_run(loaded), _run(module))


def test_lerobot_folder_with_wrong_action_dim_is_refused(tmp_path):
    module = _module()
    folder = _lerobot_folder(tmp_path, module, _act_config(module, output_features={"action": {"shape": [14]}}))
    with pytest.raises(ConfigError, match=r"action dimension \[14\]"):
        load_policy(folder)


def test_lerobot_folder_with_wrong_chunk_is_refused(tmp_path):
    module = _module()
    folder = _lerobot_folder(tmp_path, module, _act_config(module, chunk_size=100))
    with pytest.raises(ConfigError, match="chunk length 100"):
        load_policy(folder)


def test_weights_with_another_chunk_length_are_refused(tmp_path):
    module = _module({"chunk_length": 32})
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "c32.safetensors"))
    with pytest.raises(ModelFileError, match="32-step chunks; this runtime executes 16-step"):
        load_policy(tmp_path / "c32.safetensors")
    edgeperc_file = save_checkpoint(module, tmp_path / "c32e.safetensors", FAMILY.name, module.config.model_dump(mode="json"))
    with pytest.raises(ConfigError, match="chunk length 32"):
        load_policy(edgeperc_file)


def test_weights_with_another_action_dim_are_refused(tmp_path):
    state = {k: v.contiguous() for k, v in _module().state_dict().items()}
    state["head.weight"], state["head.bias"] = torch.zeros(14, TINY["d_model"]), torch.zeros(14)
    save_file({f"model.{k}": v for k, v in state.items()}, str(tmp_path / "a14.safetensors"))
    with pytest.raises(ModelFileError, match="14-D actions; rpt-policy needs 8"):
        load_policy(tmp_path / "a14.safetensors")


def test_corrupt_and_incomplete_files_are_refused(tmp_path):
    good = save_checkpoint(_module(), tmp_path / "good.safetensors", FAMILY.name, _module().config.model_dump(mode="json"))
    (tmp_path / "cut.safetensors").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_policy(tmp_path / "cut.safetensors")
    with pytest.raises(ModelFileError, match="not found"):
        load_policy(tmp_path / "absent.safetensors")
    folder = tmp_path / "lerobot"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(good.read_bytes())
    with pytest.raises(ModelFileError, match="lacks config.json"):
        load_policy(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_policy(folder)
    state = {k: v.contiguous() for k, v in _module().state_dict().items() if not k.startswith("blocks.0.ff")}
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ModelFileError, match="blocks.0.ff"):
        load_policy(tmp_path / "partial.safetensors")


def test_checkpoint_of_another_family_is_refused(tmp_path):
    ynet = get_family("ynet-barcode")
    config = ynet.make_config({"base_width": 4})
    path = save_checkpoint(ynet.build(config), tmp_path / "y.safetensors", "ynet-barcode", config.model_dump(mode="json"))
    with pytest.raises(ModelFileError, match="'ynet-barcode' checkpoint, not 'rpt-policy'"):
        load_policy(path)
