"""The scripted expert and its IK: succeeds on pick/stack, keeps targets inside the Panda's limits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

if not HAVE_MUJOCO:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from edgeperc.sim.env import HOME_Q_RAD
from edgeperc.sim.expert import (
    PANDA_DQ_MAX_RAD_S,
    ExpertConfig,
    limited_velocity,
    move_toward,
    quarter_turn_yaw,
    run_expert_episode,
)
from edgeperc.sim.ik import dls_step, rotation_error


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_rotation_error_is_the_rotation_vector():
    np.testing.assert_allclose(rotation_error(np.eye(3), np.eye(3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(rotation_error(_rot_z(0.3), np.eye(3)), [0, 0, 0.3], atol=1e-9)
    np.testing.assert_allclose(rotation_error(_rot_z(2.0), _rot_z(0.5)), [0, 0, 1.5], atol=1e-9)
    err = rotation_error(_rot_z(np.pi - 1e-5), np.eye(3))
    assert np.linalg.norm(err) == pytest.approx(np.pi, abs=1e-4)


def test_dls_step_approaches_the_inverse_for_small_damping():
    jac = np.random.default_rng(0).standard_normal((6, 6)) + 3 * np.eye(6)
    e = np.arange(6.0)
    np.testing.assert_allclose(dls_step(jac, e, 1e-6), np.linalg.solve(jac, e), atol=1e-6)


def test_limited_velocity_against_a_numpy_reference():
    rng = np.random.default_rng(3)
    v_max, a_max, dt = np.full(7, 0.8), 1.8, 0.1
    for _ in range(200):
        error, velocity = rng.normal(0, 0.3, 7), rng.uniform(-0.8, 0.8, 7)
        got = limited_velocity(error, velocity, v_max, a_max, dt)
        want = np.empty(7)
        for j in range(7):
            d = abs(error[j])
            wanted = np.sign(error[j]) * min(v_max[j], (2 * a_max * d) ** 0.5, d / dt)
            want[j] = velocity[j] + min(max(wanted - velocity[j], -a_max * dt), a_max * dt)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # From rest toward a far goal: accelerates at a_max, cruises at v_max, stops on the goal.
    q, v = 0.0, np.zeros(1)
    for _ in range(60):
        v = limited_velocity(np.array([1.0 - q]), v, np.array([0.8]), a_max, dt)
        q += float(v[0]) * dt
    assert q == pytest.approx(1.0, abs=1e-3) and abs(v[0]) < 0.05


def test_waypoint_helpers():
    assert quarter_turn_yaw(np.pi / 2 + 0.1) == pytest.approx(0.1)
    assert quarter_turn_yaw(-0.2) == pytest.approx(-0.2)
    np.testing.assert_allclose(move_toward(np.zeros(3), np.array([1.0, 0, 0]), 0.25), [0.25, 0, 0])
    np.testing.assert_allclose(move_toward(np.zeros(3), np.array([0.1, 0, 0]), 0.25), [0.1, 0, 0])


@pytest.mark.parametrize("seed", [0, 1])
def test_expert_picks(env, seed):
    ep = run_expert_episode(env, "pick", seed, render=False)
    assert ep.success
    assert env.cube_position("cube_red")[2] > 0.07
    # Privileged cube state per step: the red cube rises with the hand, the blue one stays put.
    assert ep.cube_pos.shape == (len(ep.q_rad), 2, 3) and ep.cube_yaw_rad.shape == (len(ep.q_rad), 2)
    assert ep.cube_pos[0, 0, 2] == pytest.approx(0.02, abs=2e-3) and ep.cube_pos[-1, 0, 2] > 0.06
    np.testing.assert_allclose(ep.cube_pos[-1, 1], ep.cube_pos[0, 1], atol=1e-3)
    # Targets stay inside the joint ranges, move at most joint_speed_fraction * dq_max per step and
    # change that speed by at most joint_accel_rad_s2 * dt per step: motions the runtime can follow.
    assert np.all(ep.q_target_rad >= env.q_min_rad) and np.all(ep.q_target_rad <= env.q_max_rad)
    dt = 1.0 / env.config.control_hz
    velocity = np.diff(np.vstack([HOME_Q_RAD, ep.q_target_rad]), axis=0) / dt  # reset() starts at home, at rest
    cap = ExpertConfig().joint_speed_fraction * PANDA_DQ_MAX_RAD_S
    assert np.all(np.abs(velocity) <= cap + 1e-9)
    assert np.abs(np.diff(np.vstack([np.zeros(7), velocity]), axis=0)).max() <= ExpertConfig().joint_accel_rad_s2 * dt + 1e-9


def test_expert_stacks(env):
    ep = run_expert_episode(env, "stack", 0, render=False)
    assert ep.success


def test_dart_noise_perturbs_the_arm_but_records_the_experts_targets(env):
    clean = run_expert_episode(env, "pick", 2, render=False)
    noisy = run_expert_episode(env, "pick", 2, ExpertConfig(dart_noise_rad=0.01), render=False)
    assert noisy.success  # the grasp itself is executed as planned
    n = min(len(clean.q_rad), len(noisy.q_rad))
    assert np.abs(noisy.q_rad[:n] - clean.q_rad[:n]).max() > 0.01  # the arm was pushed off the clean path
    # Recorded targets stay the expert's: smooth, inside the limits, and they lead back (the last ones agree).
    cap = ExpertConfig().joint_speed_fraction * PANDA_DQ_MAX_RAD_S / env.config.control_hz
    assert np.all(np.abs(np.diff(noisy.q_target_rad, axis=0)) <= cap + 1e-9)
    np.testing.assert_allclose(noisy.q_target_rad[-1], clean.q_target_rad[-1], atol=0.02)
    off = run_expert_episode(env, "pick", 2, ExpertConfig(dart_noise_rad=0.01, dart_fraction=0.0), render=False)
    np.testing.assert_array_equal(off.q_rad, clean.q_rad)
