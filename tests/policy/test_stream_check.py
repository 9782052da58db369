"""The offline checker replays streams as Franka Control does (backward Euler at 1 ms) and names
each violation with libfranka's error names; the .npz loader refuses bad files clearly."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.runtime.policy.limits import DT_S
from edgeperc.runtime.policy.stream_check import (
    STREAM_KEYS,
    CommandStream,
    Violation,
    ViolationName,
    check_stream,
    load_stream,
    replay_derivatives,
    save_stream,
    summarize_violations,
)

from edgeperc.errors import InvalidInputError

from .support import READY, shipped_limits

LIMITS = shipped_limits()


def _min_jerk(q0, q1, seconds):
    s = np.arange(1, round(seconds / DT_S) + 1)[:, None] * DT_S / seconds
    return q0 + (q1 - q0) * (10 * s**3 - 15 * s**4 + 6 * s**5)


def _integrate_jerk(jerk, q_start=READY, dq_start=None, ddq_start=None):
    """(T, 7) jerk -> (T, 7) positions by the inverse of Control's backward differences."""
    q, dq = q_start.copy(), np.zeros(7) if dq_start is None else dq_start.copy()
    ddq = np.zeros(7) if ddq_start is None else ddq_start.copy()
    rows = []
    for j in jerk:
        ddq = ddq + j * DT_S
        dq = dq + ddq * DT_S
        q = q + dq * DT_S
        rows.append(q)
    return np.array(rows)


def test_replay_derivatives_match_a_loop():
    rng = np.random.default_rng(0)
    q = READY + np.cumsum(rng.normal(0, 1e-4, (50, 7)), axis=0)
    q_start, dq_start, ddq_start = READY - 1e-4, rng.normal(0, 0.1, 7), rng.normal(0, 1, 7)
    dq, ddq, dddq = replay_derivatives(q, q_start, dq_start, ddq_start)
    prev_q, prev_dq, prev_ddq = q_start, dq_start, ddq_start
    for k in range(50):
        v = (q[k] - prev_q) / DT_S
        a = (v - prev_dq) / DT_S
        j = (a - prev_ddq) / DT_S
        np.testing.assert_allclose([dq[k], ddq[k], dddq[k]], [v, a, j], rtol=1e-12, atol=1e-6)
        prev_q, prev_dq, prev_ddq = q[k], v, a


def test_replay_defaults_start_at_rest_on_the_first_command():
    dq, ddq, dddq = replay_derivatives(np.tile(READY, (3, 1)))
    assert not dq.any() and not ddq.any() and not dddq.any()


def test_smooth_minimum_jerk_stream_is_accepted():
    goal = READY + np.array([0.3, -0.2, 0.25, 0.3, -0.3, 0.2, 0.4])
    q = np.vstack([_min_jerk(READY, goal, 2.0), np.tile(goal, (200, 1))])
    assert check_stream(q, LIMITS, q_start=READY) == []
    assert summarize_violations([]) == {}


def test_joint_position_limits():
    q = np.tile(READY, (20, 1))
    q[:, 0] = LIMITS.q_max[0] + 0.01  # parked just past the limit: nothing else is wrong
    found = check_stream(q, LIMITS)
    assert summarize_violations(found) == {"joint_motion_generator_position_limits_violation": 20}
    assert found[0] == Violation(ViolationName.POSITION_LIMITS, 0, 0, q[0, 0], 2.8973)
    q[:, 0] = LIMITS.q_max[0]  # the condition is strict: q_c < q_max
    assert len(check_stream(q, LIMITS)) == 20
    q[:, 0] = LIMITS.q_max[0] - 1e-9
    assert check_stream(q, LIMITS) == []


def test_velocity_limits():
    dq_start = np.zeros(7)
    dq_start[2] = 3.0  # joint 3 cruising at 3 rad/s > 2.175, steadily: no acceleration, no jerk
    q = READY + np.outer(np.arange(1, 41) * DT_S, dq_start)
    found = check_stream(q, LIMITS, q_start=READY, dq_start=dq_start)
    assert summarize_violations(found) == {"joint_motion_generator_velocity_limits_violation": 40}
    assert {(v.joint, round(v.value, 6), v.limit) for v in found} == {(2, 3.0, 2.175)}


def test_velocity_discontinuity_is_acceleration_over_the_limit():
    ddq_start = np.zeros(7)
    ddq_start[0] = 16.0  # 16 > 15 rad/s^2 on joint 1, constant (no jerk), 30 ticks (0.48 rad/s)
    q = _integrate_jerk(np.zeros((30, 7)), ddq_start=ddq_start)
    found = check_stream(q, LIMITS, q_start=READY, ddq_start=ddq_start)
    assert summarize_violations(found) == {"joint_motion_generator_velocity_discontinuity": 30}
    assert found[0].joint == 0 and found[0].limit == 15.0 and abs(found[0].value - 16.0) < 1e-6


def test_acceleration_discontinuity_is_jerk_over_the_limit():
    jerk = np.zeros((20, 7))
    jerk[0, 1], jerk[1, 1] = 3800.0, -3800.0  # joint 2: 3800 > 3750 rad/s^3, acceleration only 3.8
    found = check_stream(_integrate_jerk(jerk), LIMITS, q_start=READY)
    assert summarize_violations(found) == {"joint_motion_generator_acceleration_discontinuity": 2}
    assert [(v.tick, v.joint) for v in found] == [(0, 1), (1, 1)]
    jerk[0, 1], jerk[1, 1] = 3700.0, -3700.0
    assert check_stream(_integrate_jerk(jerk), LIMITS, q_start=READY) == []


def test_start_pose_invalid():
    q = np.tile(READY, (10, 1))
    q[:, 4] += 0.01  # 10 mrad away from where the robot stands: one tick at 2.61 rad/s reaches 2.6 mrad
    found = check_stream(q, LIMITS, q_start=READY)
    names = summarize_violations(found)
    assert names["joint_position_motion_generator_start_pose_invalid"] == 1
    start = next(v for v in found if v.name is ViolationName.START_POSE_INVALID)
    assert (start.tick, start.joint, start.limit) == (0, 4, pytest.approx(2.61e-3))
    # the same jump also implies velocity, acceleration and jerk violations at its tick
    assert {"joint_motion_generator_velocity_limits_violation", "joint_motion_generator_acceleration_discontinuity"} <= set(names)


def test_non_finite_reported_once_per_value():
    q = np.tile(READY, (30, 1))
    q[5, 0] = np.nan
    q[7, 3] = np.inf
    found = check_stream(q, LIMITS)
    assert summarize_violations(found) == {"non_finite_command": 2}
    assert [(v.tick, v.joint) for v in found] == [(5, 0), (7, 3)]


def test_measured_signals():
    q = np.tile(READY, (20, 1))
    measured = q.copy()
    measured[10:, 1] += 0.01  # a 10 mrad jump between two 1 ms samples: 10 rad/s measured
    measured[15:, 5] = LIMITS.q_min[5] - 0.001
    found = check_stream(q, LIMITS, q_start=READY, q_measured=measured)
    names = summarize_violations(found)
    assert names["joint_velocity_violation"] == 2  # the jump, and the drop below joint 6's limit
    assert names["joint_position_limits_violation"] == 5
    assert "joint_motion_generator_position_limits_violation" not in names  # commands were fine


def test_every_violation_name_is_reachable():
    """Each name appears at least once across the hand-made streams above (one stream here)."""
    q = np.tile(READY, (12, 1))
    q[:, 4] += 0.01  # start pose, velocity, acceleration, jerk
    q[6:, 0] = LIMITS.q_max[0] + 0.02  # position (and another jump)
    q[11, 2] = np.nan
    measured = np.tile(READY, (12, 1))
    measured[3:, 6] = LIMITS.q_max[6] + 0.01
    found = check_stream(q, LIMITS, q_start=READY, q_measured=measured)
    assert set(summarize_violations(found)) == {name.value for name in ViolationName}
    assert [v.tick for v in found] == sorted(v.tick for v in found)
    assert "at tick" in str(found[0]) and "joint" in str(found[0])


def test_summary_is_ordered_and_counts():
    found = [
        Violation(ViolationName.VELOCITY_LIMITS, 3, 0, 3.0, 2.175),
        Violation(ViolationName.NON_FINITE, 1, 0, np.nan, np.nan),
        Violation(ViolationName.VELOCITY_LIMITS, 4, 0, 3.0, 2.175),
    ]
    assert list(summarize_violations(found).items()) == [
        ("non_finite_command", 1),
        ("joint_motion_generator_velocity_limits_violation", 2),
    ]


@pytest.mark.parametrize("bad", [np.zeros((10, 6)), np.zeros(7), np.zeros((0, 7)), np.array([["a"] * 7])])
def test_check_stream_rejects_bad_shapes(bad):
    with pytest.raises(InvalidInputError, match="must be"):
        check_stream(bad, LIMITS)


# --- .npz ---------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    stream = CommandStream(
        q_c=READY + rng.normal(0, 1e-3, (25, 7)), q_start=READY, dq_start=np.zeros(7), ddq_start=np.ones(7),
        q_measured=np.tile(READY, (25, 1)),
    )
    path = save_stream(tmp_path / "run.stream", stream)
    assert path.name == "run.stream"  # no .npz appended behind the caller's back
    loaded = load_stream(path)
    for key in ("q_c", "q_start", "dq_start", "ddq_start", "q_measured"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(stream, key))
    assert loaded.check(LIMITS) == stream.check(LIMITS)
    minimal = save_stream(tmp_path / "min.npz", CommandStream(q_c=np.tile(READY, (3, 1))))
    assert load_stream(minimal).q_start is None


def _write(tmp_path, **arrays):
    path = tmp_path / "s.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"q_start": READY}, "missing key 'q_c'"),
        ({"q": np.zeros((5, 7))}, "unknown key.*q; allowed keys: q_c"),
        ({"q_c": np.zeros((5, 6))}, r"q_c must be \(T, 7\).*\(5, 6\)"),
        ({"q_c": np.zeros(7)}, r"q_c must be \(T, 7\)"),
        ({"q_c": np.zeros((5, 7)), "q_start": np.zeros(6)}, r"q_start must be \(7,\)"),
        ({"q_c": np.zeros((5, 7)), "q_measured": np.zeros((4, 7))}, "q_measured must match"),
        ({"q_c": np.array([[np.nan] + [0.0] * 6])}, r"q_c contains NaN/Inf \(1 values, first at index \(0, 0\)\)"),
        ({"q_c": np.zeros((5, 7)), "dq_start": np.full(7, np.inf)}, "dq_start contains NaN/Inf"),
        ({"q_c": np.zeros((5, 7)), "dt_s": np.float64(0.002)}, "dt_s must be the scalar 0.001"),
        ({"q_c": np.zeros((5, 7), dtype=bool)}, "must be numeric"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    with pytest.raises(InvalidInputError, match=match):
        load_stream(_write(tmp_path, **arrays))


def test_npz_non_finite_can_be_let_through_to_the_checker(tmp_path):
    q = np.tile(READY, (4, 1))
    q[2, 1] = np.nan
    stream = load_stream(_write(tmp_path, q_c=q), allow_non_finite=True)
    assert summarize_violations(stream.check(LIMITS)) == {"non_finite_command": 1}


def test_npz_unreadable_files(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        load_stream(tmp_path / "none.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match="not a readable .npz"):
        load_stream(junk)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, q_c=np.array([object()] * 7, dtype=object))
    with pytest.raises(InvalidInputError, match="not a readable .npz"):
        load_stream(pickled)


def test_stream_keys_are_documented():
    assert set(STREAM_KEYS) == {"q_c", "q_start", "dq_start", "ddq_start", "q_measured", "dt_s"}
