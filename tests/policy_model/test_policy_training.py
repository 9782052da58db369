"""Behaviour cloning end to end on two generated pick episodes: the loss falls, files are written."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the [export] extra (torch)")

from edgeperc.cli import main
from edgeperc.errors import ConfigError
from edgeperc.models.policy import load_policy
from edgeperc.models.policy_config import make_bc_config
from edgeperc.models.policy_training import (
    demo_samples,
    rollout,
    torch_predict,
    train_policy,
)
from edgeperc.models.registry import get_family
from tests.policy_model.conftest import TINY


def test_samples_from_demos_are_consistent(pick_demos):
    from edgeperc.sim.demos import load_demos

    data = load_demos(pick_demos)
    samples = demo_samples(data, past_steps=2, chunk=16)
    first_end = int(data["episode_ends"][0])
    # Step 0 of a chunk is exactly the demo's action; the first padding appears 15 steps before the end.
    np.testing.assert_allclose(samples["chunk"][:, 0], data["actions"], atol=1e-6)
    assert not samples["padded"][first_end - 16].any() and samples["padded"][first_end - 15, -1]
    np.testing.assert_allclose(samples["past_actions"][5, -1], data["actions"][4])


def test_a_few_steps_lower_the_loss_and_write_a_record(pick_demos, tmp_path):
    # Low modality dropout: 60 steps of the tiny model show the loss falling; the shipped recipe's
    # high dropout (BCConfig defaults) slows the first steps on purpose.
    bc = make_bc_config({"steps": 60, "batch": 16, "lr": 2e-3, "warmup_steps": 5, "holdout_fraction": 0.5,
                         "drop_proprio": 0.15, "drop_past_actions": 0.3})
    record = train_policy(tmp_path / "bc.safetensors", pick_demos, bc, TINY, command="test", progress=False)
    assert record["final_loss"] < 0.8 * record["first_loss"], (record["first_loss"], record["final_loss"])
    assert record["train_episodes"] == [0] and record["held_out_episodes"] == [1]
    assert {"joint_l1_rad", "gripper_l1_m", "chunk_l1"} <= set(record["held_out_metrics"])
    # The auxiliary cube head trained on the demos' cube_pos and is scored on the held-out episode.
    assert record["aux_cube_head"] and record["final_aux_loss"] is not None
    assert {"cube0_xy_error_m", "cube0_yaw_error_rad", "cube1_xy_error_m"} <= set(record["held_out_aux"])
    assert record["held_out_first_frame"]["episodes"] == 1
    assert record["config"]["camera"] == record["demos_meta"]["camera"] == "workspace"
    on_disk = json.loads((tmp_path / "bc.json").read_text())
    assert on_disk["command"] == "test" and on_disk["bc"]["seed"] == 0
    model, config = load_policy(tmp_path / "bc.safetensors")  # the training-only head is not in the weights
    assert config.chunk_stats.std != get_family("rpt-policy").make_config().chunk_stats.std  # from the demos
    assert torch.get_num_threads() >= 1
    result = rollout(torch_predict(model, get_family("rpt-policy")), "pick", 99, config, max_steps=10)
    assert result["steps"] == 10 and result["success"] is False


def test_cli_trains_and_refuses_bad_options(pick_demos, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    argv = ["train", "rpt-policy", "--demos", str(pick_demos), "--out", str(out), "--steps", "3", "--batch", "4",
            "--config", json.dumps({k: v for k, v in TINY.items() if k != "base_width"}), "--width", "4"]
    assert main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["base_width"] == 4 and record["bc"]["steps"] == 3
    assert main(["train", "rpt-policy", "--demos", str(pick_demos), "--out", str(out), "--steps", "0"]) == 3
    assert "steps" in capsys.readouterr().err
    assert main(["train", "rpt-policy", "--demos", str(tmp_path / "none.npz"), "--out", str(out)]) == 3


def test_demos_without_privileged_keys_train_without_the_auxiliary_head(pick_demos, tmp_path):
    from edgeperc.sim.demos import PRIVILEGED_KEYS

    with np.load(pick_demos) as npz:
        old = {k: npz[k] for k in npz.files if k not in PRIVILEGED_KEYS}
    np.savez(tmp_path / "old.npz", **old)
    bc = make_bc_config({"steps": 2, "batch": 4, "holdout_fraction": 0.5})
    record = train_policy(tmp_path / "old.safetensors", tmp_path / "old.npz", bc, TINY, progress=False)
    assert record["aux_cube_head"] is False and "held_out_aux" not in record


def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_config(pick_demos, tmp_path):
    bc = make_bc_config({"steps": 60, "batch": 16, "lr": 2e-3, "warmup_steps": 5, "holdout_fraction": 0.5})
    first = train_policy(tmp_path / "a.safetensors", pick_demos, bc, TINY, command="test", progress=False)
    tuned = train_policy(tmp_path / "b.safetensors", pick_demos, make_bc_config({**bc.model_dump(), "steps": 5, "seed": 1}),
                         command="test", progress=False, init=tmp_path / "a.safetensors")
    assert tuned["init"] == str(tmp_path / "a.safetensors") and tuned["config"] == first["config"]
    # It continues from the trained weights: its first losses are the first run's last, not a fresh start's.
    assert tuned["first_loss"] < 0.9 * first["first_loss"]
    with pytest.raises(ConfigError, match="--init keeps the checkpoint's config"):
        train_policy(tmp_path / "c.safetensors", pick_demos, bc, {"layers": 2}, progress=False, init=tmp_path / "a.safetensors")
