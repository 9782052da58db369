"""Chunk queue: checks, anchoring deltas to the observation's q, latency compensation and ACT-style
temporal ensembling, each against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.runtime.policy.chunks import (
    Chunk,
    ChunkQueue,
    ChunkVerdict,
    absolute_targets,
    check_actions,
    chunk_age_s,
    ensemble_weights,
    make_chunk,
)

from .support import READY

H, A = 16, 8


def _actions(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 0.1, (H, A))


def test_check_actions_accepts_a_copy_of_the_right_shape():
    raw = np.ones((H, A), np.float32)
    actions, verdict = check_actions(raw, H, A)
    assert verdict is ChunkVerdict.ACCEPTED and actions.dtype == np.float64
    raw[0, 0] = 5.0
    assert actions[0, 0] == 1.0  # a copy: the policy may reuse its buffer


@pytest.mark.parametrize(
    ("raw", "verdict"),
    [
        (np.zeros((H, 7)), ChunkVerdict.MALFORMED),
        (np.zeros((H - 1, A)), ChunkVerdict.MALFORMED),
        (np.zeros((1, H, A)), ChunkVerdict.MALFORMED),
        ("sixteen", ChunkVerdict.MALFORMED),
        (None, ChunkVerdict.MALFORMED),
        ([[1, 2], [3]], ChunkVerdict.MALFORMED),
        (np.full((H, A), np.nan), ChunkVerdict.NON_FINITE),
        (np.where(np.eye(H, A) > 0, np.inf, 0.0), ChunkVerdict.NON_FINITE),
    ],
)
def test_check_actions_refuses(raw, verdict):
    actions, got = check_actions(raw, H, A)
    assert actions is None and got is verdict


def test_one_nan_anywhere_refuses_the_whole_chunk():
    raw = np.zeros((H, A))
    raw[H - 1, A - 1] = np.nan  # even the gripper of the last action
    assert check_actions(raw, H, A) == (None, ChunkVerdict.NON_FINITE)


def test_absolute_targets_anchor_joints_to_the_observation_q_and_keep_the_width():
    rng = np.random.default_rng(0)
    actions = _actions(rng)
    q_obs = READY + 0.1
    targets = absolute_targets(actions, q_obs)
    np.testing.assert_array_equal(targets[:, :7], actions[:, :7] + q_obs[None])
    np.testing.assert_array_equal(targets[:, 7], actions[:, 7])
    assert not np.shares_memory(targets, actions)


@pytest.mark.parametrize("delay", [0, 1, 3, 15])
def test_make_chunk_drops_the_elapsed_actions(delay):
    targets = np.arange(H * A, dtype=np.float64).reshape(H, A)
    chunk = make_chunk(targets, obs_step=10, arrival_step=10 + delay)
    assert chunk.obs_step == 10 and chunk.start_step == 10 + delay and chunk.end_step == 10 + H
    np.testing.assert_array_equal(chunk.targets, targets[delay:])
    assert not chunk.targets.flags.writeable


def test_make_chunk_with_nothing_left_is_none():
    assert make_chunk(np.zeros((H, A)), 10, 10 + H) is None
    assert make_chunk(np.zeros((H, A)), 10, 10 + H + 5) is None


def test_latency_compensation_picks_the_action_meant_for_now():
    """Observed at step 10, usable at 13: step 13 gets action 3 (+ q_obs), not action 0."""
    rng = np.random.default_rng(1)
    actions = _actions(rng)
    q_obs = READY.copy()
    queue = ChunkQueue().add(make_chunk(absolute_targets(actions, q_obs), 10, 13))
    assert queue.target_at(12, 2.0) is None  # before it arrived
    for step in range(13, 10 + H):
        np.testing.assert_array_equal(queue.target_at(step, 2.0)[:7], actions[step - 10, :7] + q_obs)
    assert queue.target_at(10 + H, 2.0) is None  # ran dry: no guess


def test_ensemble_weights_reference():
    ages = np.array([4.0, 2.0, 0.0])
    want = np.exp(-ages / 2.0)
    np.testing.assert_allclose(ensemble_weights(ages, 2.0), want / want.sum(), rtol=1e-12)
    np.testing.assert_array_equal(ensemble_weights(ages, 0.0), [0.0, 0.0, 1.0])  # newest only
    np.testing.assert_allclose(ensemble_weights(ages, 1e9), np.full(3, 1 / 3), rtol=1e-6)  # ~ uniform (ACT m=0)
    assert ensemble_weights(np.array([7.0]), 0.0).tolist() == [1.0]


def _reference_target(chunks: list[tuple[int, int, np.ndarray]], step: int, tau: float) -> np.ndarray | None:
    """Brute force: every (obs_step, arrival, targets) covering ``step``, weighted exp(-age/tau)."""
    rows, ages = [], []
    covering = [(o, a, t) for o, a, t in chunks if max(a, o) <= step < o + len(t)]
    if not covering:
        return None
    newest = max(o for o, _, _ in covering)
    for obs, _, targets in covering:
        rows.append(targets[step - obs])
        ages.append(newest - obs)
    ages = np.array(ages, dtype=np.float64)
    if tau == 0:
        weights = (ages == 0).astype(float)
    else:
        weights = np.exp(-ages / tau)
    return (weights / weights.sum()) @ np.array(rows)


@pytest.mark.parametrize("tau", [0.0, 0.5, 2.0, 50.0])
def test_queue_target_matches_the_brute_force_reference(tau):
    rng = np.random.default_rng(2)
    chunks, queue = [], ChunkQueue()
    obs = 0
    for _ in range(12):
        obs += int(rng.integers(1, 4))
        arrival = obs + int(rng.integers(1, 5))
        targets = absolute_targets(_actions(rng), READY + rng.normal(0, 0.05, 7))
        chunks.append((obs, arrival, targets))
        queue = queue.add(make_chunk(targets, obs, arrival))
    for step in range(obs + H + 2):
        want = _reference_target(chunks, step, tau)
        got = queue.target_at(step, tau)
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_ensembling_shrinks_the_splice_jump_of_a_disagreeing_chunk():
    """Old chunk says 0, a new one says 0.07 rad (axol's 20-70 mrad yank): newest-only jumps the whole
    way, ensembling with tau = 2 steps moves part of it."""
    old = make_chunk(np.zeros((H, A)), 0, 1)
    new = make_chunk(np.full((H, A), 0.07), 2, 3)
    queue = ChunkQueue().add(old).add(new)
    assert queue.target_at(3, 0.0)[0] == pytest.approx(0.07)
    mixed = queue.target_at(3, 2.0)[0]
    assert 0.0 < mixed < 0.07
    assert mixed == pytest.approx(0.07 / (1 + np.exp(-1.0)))


def test_prune_and_age():
    queue = ChunkQueue().add(make_chunk(np.zeros((H, A)), 5, 6)).add(make_chunk(np.zeros((H, A)), 0, 2))
    assert [c.obs_step for c in queue.chunks] == [0, 5]  # kept in observation order
    assert queue.newest_obs_step() == 5
    assert chunk_age_s(queue, 8, 0.1) == pytest.approx(0.3)
    pruned = queue.prune(H)  # the chunk observed at 0 covers steps < 16
    assert [c.obs_step for c in pruned.chunks] == [5]
    assert pruned.prune(H) is pruned
    assert chunk_age_s(ChunkQueue(), 3, 0.1) == np.inf
    assert isinstance(queue.chunks[0], Chunk)
