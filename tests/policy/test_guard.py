"""Guard unit behaviour: 10 Hz target checks (hold, clip, step cap, workspace/floor via FK, gripper)
and the 1 kHz limiter (tracks, stops, flags, never raises)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from edgeperc.runtime.policy import guard
from edgeperc.runtime.policy.guard import (
    Flag,
    GuardedTarget,
    LimiterState,
    cartesian_ok,
    guard_target,
    limit_tick,
    run_targets,
    stop_profile,
    workspace_excursion_m,
)
from edgeperc.runtime.policy.kinematics import frame_origins, tcp_position
from edgeperc.runtime.policy.limits import DT_S
from edgeperc.runtime.policy.stream_check import check_stream

from edgeperc.errors import InvalidInputError

from .support import (
    READY,
    assert_at_rest,
    assert_clean,
    joint_only_limits,
    shipped_limits,
)

LIMITS = shipped_limits()
OPEN = joint_only_limits()


def _ticks(state, target, limits, n):
    rows, flags = [], set()
    for _ in range(n):
        command, state, raised = limit_tick(state, target, limits)
        rows.append(command)
        flags |= set(raised)
    return np.array(rows), state, flags


# --- guard_target -------------------------------------------------------------------------------


def test_ready_pose_is_inside_the_shipped_workspace():
    in_box, above = cartesian_ok(READY, LIMITS)
    assert in_box and above


def test_a_small_valid_target_passes_untouched():
    last = GuardedTarget.hold(READY, 0.04, 20.0)
    proposed = READY + 0.05
    result, flags = guard_target(proposed, last, READY, LIMITS, gripper_width_m=0.03, gripper_force_n=10.0)
    assert flags == ()
    np.testing.assert_array_equal(result.q_rad, proposed)
    assert (result.gripper_width_m, result.gripper_force_n) == (0.03, 10.0)
    assert not result.q_rad.flags.writeable


@pytest.mark.parametrize(
    "bad", [np.full(7, np.nan), READY + np.array([0, 0, np.inf, 0, 0, 0, 0]), np.zeros(6), "seven", None, [[1] * 7] * 2]
)
def test_non_finite_or_malformed_target_holds_the_last_good(bad, caplog):
    last = GuardedTarget.hold(READY + 0.01, 0.05, 30.0)
    with caplog.at_level(logging.WARNING, logger="edgeperc.runtime.policy.guard"):
        result, flags = guard_target(bad, last, READY, LIMITS)
    assert flags == (Flag.NON_FINITE_TARGET,)
    assert result is not None and np.array_equal(result.q_rad, last.q_rad)
    assert "non_finite_target" in caplog.text


def test_joint_limits_with_margin_clip():
    start = READY.copy()
    start[3] = OPEN.q_hi[3] - 0.05
    proposed = start.copy()
    proposed[3] = 1.0  # joint 4's q_max is -0.0698
    result, flags = guard_target(proposed, GuardedTarget.hold(start), start, OPEN)
    assert flags == (Flag.POSITION_CLIPPED,)
    assert result.q_rad[3] == OPEN.q_hi[3] == OPEN.q_max[3] - OPEN.position_margin_rad


def test_step_per_target_is_capped_from_the_current_command():
    proposed = READY + np.array([0.5, 0, 0, 0, 0, 0, -0.05])
    result, flags = guard_target(proposed, GuardedTarget.hold(READY), READY, LIMITS)
    assert flags == (Flag.STEP_CLIPPED,)
    np.testing.assert_allclose(result.q_rad - READY, [0.2, 0, 0, 0, 0, 0, -0.05])


def test_workspace_box_cuts_the_move_where_the_tcp_would_leave():
    tight = LIMITS.model_copy(update={"workspace_min_m": [0.25, -0.05, 0.40], "workspace_max_m": [0.35, 0.05, 0.55]})
    proposed = READY.copy()
    proposed[0] = 0.2  # turns the TCP to y = 0.307 sin(0.2) = 0.061 > 0.05
    result, flags = guard_target(proposed, GuardedTarget.hold(READY), READY, tight)
    assert flags == (Flag.WORKSPACE_CLIPPED,)
    y = tcp_position(result.q_rad)[1]
    assert 0.0495 < y <= 0.05  # cut within 1/512 of the move, on the safe side
    assert cartesian_ok(result.q_rad, tight)[0]


def test_table_floor_cuts_a_move_that_would_sink_a_frame():
    # A table 0.30 m up (the shoulder frames sit at 0.333 m); leaning forward lowers the TCP.
    high_table = LIMITS.model_copy(update={"floor_z_m": 0.30, "link_clearance_m": 0.0, "workspace_min_m": [0.15, -0.5, 0.30]})
    start = READY.copy()
    start[1] += 0.4  # TCP at z = 0.355
    proposed = start.copy()
    proposed[1] += 0.2  # TCP would reach z = 0.287
    assert tcp_position(proposed)[2] < 0.30 < tcp_position(start)[2]
    result, flags = guard_target(proposed, GuardedTarget.hold(start), start, high_table)
    assert Flag.FLOOR_CLIPPED in flags
    assert 0.30 <= frame_origins(result.q_rad)[:, 2].min() < 0.301
    assert start[1] < result.q_rad[1] < proposed[1]  # moved as far as it safely could


def test_whole_arm_not_only_the_tcp_is_kept_above_the_table():
    # Folded: the J3 frame is at z = 0.288 m while the TCP is up at 0.622 m.
    q = np.array([0.0, 1.71, 2.39, -0.95, 2.24, 2.4, -2.53])
    points = frame_origins(q)
    assert points[2, 2] < 0.30 < points[-1, 2]
    limits = OPEN.model_copy(update={"floor_z_m": 0.25, "link_clearance_m": 0.05})
    assert not cartesian_ok(q, limits)[1]
    assert cartesian_ok(q, limits.model_copy(update={"link_clearance_m": 0.0}))[1]


def test_workspace_excursion_measures_the_distance_outside():
    assert workspace_excursion_m(READY, LIMITS) == 0.0
    tight = LIMITS.model_copy(update={"workspace_max_m": [0.30, 0.5, 0.9]})  # ready TCP x = 0.3069
    assert workspace_excursion_m(READY, tight) == pytest.approx(0.00689, abs=1e-5)
    low = LIMITS.model_copy(update={"floor_z_m": 0.3, "link_clearance_m": 0.1, "workspace_min_m": [0.15, -0.5, 0.3]})
    assert workspace_excursion_m(np.stack([READY, READY]), low) == pytest.approx([0.4 - 0.333] * 2)


def test_start_outside_the_box_only_accepts_targets_inside():
    outside = READY.copy()
    outside[0] = 1.0  # TCP y = 0.26, outside a +-0.05 box
    tight = OPEN.model_copy(update={"workspace_min_m": [-1, -0.05, -1], "workspace_max_m": [1, 0.05, 1], "max_target_step_rad": 1.5})
    last = GuardedTarget.hold(outside)
    held, flags = guard_target(outside + np.array([0.1, 0, 0, 0, 0, 0, 0]), last, outside, tight)
    assert flags == (Flag.WORKSPACE_CLIPPED,) and np.array_equal(held.q_rad, outside)
    back, flags = guard_target(READY, last, outside, tight)
    assert flags == () and np.array_equal(back.q_rad, READY)


def test_gripper_clamps_and_holds():
    last = GuardedTarget.hold(READY, 0.04, 20.0)
    cases = [
        ({"gripper_width_m": 0.2}, (0.08, 20.0), (Flag.GRIPPER_WIDTH_CLAMPED,)),
        ({"gripper_width_m": -0.01}, (0.0, 20.0), (Flag.GRIPPER_WIDTH_CLAMPED,)),
        ({"gripper_force_n": 500.0}, (0.04, 60.0), (Flag.GRIPPER_FORCE_CLAMPED,)),
        ({"gripper_force_n": -1.0}, (0.04, 0.0), (Flag.GRIPPER_FORCE_CLAMPED,)),
        ({"gripper_width_m": float("nan"), "gripper_force_n": "x"}, (0.04, 20.0), (Flag.NON_FINITE_GRIPPER,) * 2),
        ({}, (0.04, 20.0), ()),
    ]
    for kwargs, expected, expected_flags in cases:
        result, flags = guard_target(READY, last, READY, LIMITS, **kwargs)
        assert (result.gripper_width_m, result.gripper_force_n) == expected, kwargs
        assert flags == expected_flags, kwargs


def test_guard_target_never_raises():
    last = GuardedTarget.hold(READY)
    result, flags = guard_target(READY, last, None, LIMITS)  # a broken caller: q_now missing
    assert flags == (Flag.INTERNAL_ERROR,) and result is last


def test_hold_validates_before_motion():
    with pytest.raises(InvalidInputError):
        GuardedTarget.hold(np.full(7, np.nan))
    with pytest.raises(InvalidInputError):
        GuardedTarget.hold(READY, gripper_width_m=float("inf"))
    with pytest.raises(InvalidInputError):
        LimiterState.at_rest(np.zeros(5))


# --- limit_tick ---------------------------------------------------------------------------------


def test_at_rest_on_target_holds_bit_for_bit_without_flags():
    rows, state, flags = _ticks(LimiterState.at_rest(READY), READY, LIMITS, 50)
    assert flags == set() and (rows == READY).all() and state.at_rest_now()


def test_a_step_target_is_reached_exactly_within_the_caps():
    goal = READY + np.array([0.15, -0.1, 0.1, 0.12, -0.2, 0.1, 0.2])
    rows, state, flags = _ticks(LimiterState.at_rest(READY), goal, LIMITS, 2500)
    assert_clean(rows, LIMITS, READY)
    assert np.array_equal(rows[-1], goal) and state.at_rest_now()
    assert_at_rest(rows)
    assert Flag.JERK_LIMITED in flags
    # monotone approach: the critically damped tracker does not overshoot a step from rest
    progress = (rows - READY) / (goal - READY)
    assert progress.max() <= 1.0 + 1e-12


def test_a_big_step_cruises_at_the_velocity_cap():
    goal = READY.copy()
    goal[0] += 1.5
    rows, _, flags = _ticks(LimiterState.at_rest(READY), goal, LIMITS, 3500)
    assert {Flag.VELOCITY_LIMITED, Flag.ACCELERATION_LIMITED, Flag.JERK_LIMITED} <= flags
    speed = np.abs(np.diff(rows[:, 0])) / 1e-3
    assert speed.max() == pytest.approx(LIMITS.dq_cap[0], rel=1e-6)  # 1 mrad/tick cap, minus kLimitEps
    assert_clean(rows, LIMITS, READY)
    assert rows[-1, 0] == goal[0]


def test_non_finite_target_at_a_tick_stops():
    rows, state, _ = _ticks(LimiterState.at_rest(READY), READY + 0.3, LIMITS, 200)  # moving
    command, state, flags = limit_tick(state, np.full(7, np.nan), LIMITS)
    assert flags[:2] == (Flag.NON_FINITE_TARGET, Flag.STOPPING)
    more, state, flags = _ticks(state, "garbage", LIMITS, 1500)
    assert {Flag.NON_FINITE_TARGET, Flag.STOPPING} <= flags
    assert_clean(np.vstack([rows, command, more]), LIMITS, READY)
    assert state.at_rest_now()
    assert_at_rest(more)


def test_target_beyond_the_joint_bounds_is_clipped_and_reached_exactly():
    goal = READY.copy()
    goal[5] = 9.0
    rows, state, flags = _ticks(LimiterState.at_rest(READY), goal, OPEN, 4500)
    assert Flag.POSITION_CLIPPED in flags
    assert rows[-1, 5] == OPEN.q_hi[5] and state.at_rest_now()
    assert_clean(rows, OPEN, READY)


def test_a_start_inside_the_margin_moves_out_without_violations():
    start = READY.copy()
    start[5] = OPEN.q_min[5] + 0.005  # joint 6 parked 5 mrad from its stop, inside the 50 mrad margin
    rows, state, _ = _ticks(LimiterState.at_rest(start), READY, OPEN, 3500)
    assert check_stream(rows, OPEN, q_start=start) == []
    assert rows[:, 5].min() >= start[5]  # never toward the stop
    assert np.array_equal(rows[-1], READY) and state.at_rest_now()


def test_position_braking_near_a_bound():
    # Joint 2 at its cruise cap, 0.1 rad short of q_hi: the braking curve must take over from the
    # stop's gentle velocity loop. It stops inside the margin (below q_max), at rest.
    q = READY.copy()
    q[1] = OPEN.q_hi[1] - 0.1
    dq = np.zeros(7)
    dq[1] = OPEN.dq_cap[1]
    rows, state, flags = _ticks(LimiterState.moving(q, dq, np.zeros(7)), None, OPEN, 800)
    assert {Flag.POSITION_BRAKING, Flag.STOPPING} <= flags
    assert check_stream(rows, OPEN, q_start=q, dq_start=dq) == []
    assert rows[:, 1].max() < OPEN.q_max[1] and state.at_rest_now()


def test_limit_tick_falls_back_to_stopping_on_an_internal_error(monkeypatch, caplog):
    real = guard._joint_step

    def broken(q, v, a, goal, *caps):
        if goal is not None:
            raise RuntimeError("boom")
        return real(q, v, a, goal, *caps)

    monkeypatch.setattr(guard, "_joint_step", broken)
    state = LimiterState.moving(READY, np.full(7, 0.2), np.zeros(7))
    command, new_state, flags = limit_tick(state, READY + 0.1, LIMITS)
    assert flags[0] == Flag.STOPPING and flags[-1] == Flag.INTERNAL_ERROR
    assert (new_state.dq < state.dq).all()  # decelerating
    assert "unexpected error" in caplog.text
    monkeypatch.setattr(guard, "_joint_step", lambda *args: 1 / 0)
    command, same, flags = limit_tick(new_state, READY, LIMITS)
    assert flags == (Flag.INTERNAL_ERROR,) and same is new_state and command is new_state.q


# --- stop_profile -------------------------------------------------------------------------------


def test_stop_profile_from_a_state_taken_mid_motion():
    run = run_targets(READY, [READY + np.array([0.2, -0.2, 0.2, 0.2, 0.2, 0.2, 0.2])] * 3, LIMITS, ticks_per_target=120)
    state = run.final
    assert not state.at_rest_now() and np.abs(state.dq).max() > 0.3
    stop = stop_profile(state.q, state.dq, state.ddq, LIMITS)
    assert check_stream(stop, LIMITS, q_start=state.q, dq_start=state.dq, ddq_start=state.ddq) == []
    assert_clean(np.vstack([run.q_c, stop]), LIMITS, READY)
    assert_at_rest(stop, 2)
    assert len(stop) < 1000  # from ~1 rad/s: a few hundred ms


def test_stop_profile_at_rest_is_one_row_and_validates():
    stop = stop_profile(READY, np.zeros(7), np.zeros(7), LIMITS)
    assert stop.shape == (1, 7) and np.array_equal(stop[0], READY)
    with pytest.raises(InvalidInputError):
        stop_profile(READY, np.full(7, np.nan), np.zeros(7), LIMITS)


# --- velocity feed-forward ------------------------------------------------------------------------


def _track_ramp(speed_rad_s, velocity):
    state = LimiterState.at_rest(READY)
    lags = []
    for k in range(1, 1001):
        reference = READY + speed_rad_s * k * DT_S * np.eye(7)[0]
        _, state, _ = limit_tick(state, reference, OPEN, speed_rad_s * np.eye(7)[0] if velocity else None)
        lags.append(reference[0] - state.q[0])
    return np.array(lags)


def test_feed_forward_removes_the_position_loops_lag():
    plain, fed = _track_ramp(0.5, False), _track_ramp(0.5, True)
    assert plain[-1] == pytest.approx(0.5 / guard.K_P_PER_S, rel=0.02)  # v / K_P: 5 cm of joint angle
    # Fed forward: the start-up transient decays at K_P to within one tick of motion (0.5 mrad),
    # against 50 mrad without.
    assert abs(fed[-1]) <= 0.5 * DT_S * 1.01 and np.abs(fed[500:]).max() < 0.002


def test_non_finite_feed_forward_stops():
    state = LimiterState.moving(READY, np.full(7, 0.1), np.zeros(7))
    _, _, flags = limit_tick(state, READY + 0.1, OPEN, np.array([np.nan] * 7))
    assert Flag.NON_FINITE_TARGET in flags and Flag.STOPPING in flags
    _, _, flags = limit_tick(state, READY + 0.1, OPEN, np.zeros(3))
    assert Flag.STOPPING in flags


def test_feed_forward_fades_toward_a_bound_and_stops_on_it():
    state = LimiterState.at_rest(READY)
    bound = OPEN.q_hi[0]
    speed = 0.6
    rows = []
    for k in range(1, 8001):
        reference = min(READY[0] + speed * k * DT_S, bound + 0.3)  # runs on past the bound
        goal = READY.copy()
        goal[0] = reference
        velocity = np.zeros(7)
        velocity[0] = speed if reference < bound + 0.3 else 0.0
        command, state, _ = limit_tick(state, goal, OPEN, velocity)
        rows.append(command[0])
    assert max(rows) <= bound + 1e-12 and rows[-1] == bound and state.at_rest_now()
