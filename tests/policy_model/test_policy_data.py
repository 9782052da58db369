"""Demo -> samples: chunk targets, padding, past-action windows, statistics, against loop references."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperc.errors import InvalidInputError
from edgeperc.models.policy_training import (
    _augment,
    chunk_targets,
    cube_targets,
    evaluate_chunks,
    past_action_windows,
    policy_stats,
    proprio_of,
)
from edgeperc.models.registry import get_family


def _demo(seed=0, lengths=(5, 3)):
    rng = np.random.default_rng(seed)
    steps = sum(lengths)
    q = rng.normal(size=(steps, 7)).astype(np.float32)
    q_target = (q + rng.normal(scale=0.1, size=(steps, 7))).astype(np.float32)
    grip = rng.choice([0.0, 0.08], size=steps).astype(np.float32)
    width = rng.uniform(0, 0.08, steps).astype(np.float32)
    actions = np.concatenate([q_target - q, grip[:, None]], axis=1)
    return q, q_target, grip, width, actions, np.cumsum(lengths)


def test_chunk_targets_match_a_loop_reference():
    q, q_target, grip, _, _, ends = _demo()
    chunk = 4
    targets, padded = chunk_targets(q, q_target, grip, ends, chunk)
    assert targets.shape == (8, chunk, 8) and padded.shape == (8, chunk)
    begin = 0
    for end in ends:
        for t in range(begin, end):
            for h in range(chunk):
                src = min(t + h, end - 1)
                np.testing.assert_allclose(targets[t, h, :7], q_target[src] - q[t], atol=1e-6)
                assert targets[t, h, 7] == grip[src]
                assert padded[t, h] == (t + h > end - 1)
        begin = end


def test_past_action_windows_hold_before_the_episode_start():
    _, _, _, width, actions, ends = _demo(lengths=(3, 4))
    windows = past_action_windows(actions, width, ends, 2)
    assert windows.shape == (7, 2, 8)
    hold_first = np.r_[np.zeros(7), width[0]]
    hold_second = np.r_[np.zeros(7), width[3]]
    np.testing.assert_allclose(windows[0], [hold_first, hold_first])
    np.testing.assert_allclose(windows[1], [hold_first, actions[0]])
    np.testing.assert_allclose(windows[2], [actions[0], actions[1]])
    np.testing.assert_allclose(windows[3], [hold_second, hold_second])  # no leak from episode 1
    np.testing.assert_allclose(windows[5], [actions[3], actions[4]])


def test_episode_ends_must_cover_the_steps():
    _, _, _, width, actions, _ = _demo()
    with pytest.raises(InvalidInputError, match="episode_ends"):
        past_action_windows(actions, width, np.array([5, 7]), 2)


def test_stats_ignore_padding_and_floor_the_std():
    q, q_target, grip, width, actions, ends = _demo()
    targets, padded = chunk_targets(q, q_target, grip, ends, 4)
    samples = {"proprio": proprio_of(q, width), "past_actions": past_action_windows(actions, width, ends, 2),
               "chunk": targets, "padded": padded}
    stats = policy_stats(samples)
    np.testing.assert_allclose(stats["chunk_stats"]["mean"], targets[~padded].mean(0), atol=1e-5)
    samples["proprio"][:, 3] = 1.0  # a joint that never moves
    assert policy_stats(samples)["proprio_stats"]["std"][3] == pytest.approx(1e-3)
    get_family("rpt-policy").make_config(stats)  # valid config overrides


def test_evaluate_chunks_weighs_padding():
    config = get_family("rpt-policy").make_config({"chunk_length": 4})
    q, q_target, grip, _, _, ends = _demo()
    targets, padded = chunk_targets(q, q_target, grip, ends, 4)
    predicted = targets.copy()
    predicted[padded] += 1.0  # errors only where the chunk is padding
    metrics = evaluate_chunks(config, predicted, {"chunk": targets, "padded": padded})
    assert metrics["joint_l1_rad"] == 0 and metrics["chunk_l1"] == 0
    assert evaluate_chunks(config, predicted, {"chunk": targets, "padded": padded}, pad_weight=1.0)["chunk_l1"] > 0


def test_cube_targets_are_blind_to_quarter_turns():
    pos = np.array([[[0.5, -0.1, 0.02], [0.45, 0.1, 0.02]]])
    yaw = np.array([[0.3, -0.7]])
    targets = cube_targets(pos, yaw)
    assert targets.shape == (1, 8) and targets.dtype == np.float32
    np.testing.assert_allclose(targets[0, [0, 1, 4, 5]], [0.5, -0.1, 0.45, 0.1], atol=1e-6)
    np.testing.assert_allclose(cube_targets(pos, yaw + np.pi / 2), targets, atol=1e-5)  # a cube looks the same
    assert not np.allclose(cube_targets(pos, yaw + 0.2), targets)


def test_augment_shifts_and_jitters_within_bounds():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_augment(images, 0, rng, 0.0), images)
    out = _augment(images, 2, rng, 0.1)
    assert out.shape == images.shape and out.dtype == np.uint8
    flat = np.full((2, 8, 8, 3), 100, np.uint8)
    jittered = _augment(flat, 0, rng, 0.1).astype(int)
    assert jittered.min() >= 100 * 0.9 * 0.95 - 1 and jittered.max() <= 100 * 1.1 * 1.05 + 1
    assert len(np.unique(jittered)) > 1
