"""The native 1 kHz sender (runtime/policy/native): its C++ hold tick against the Python limiter
bit for bit, the take-over protocol with a starved sender, and whole wall-clock runs through it.
Assertions are on structure and exact values, never on timing figures (those are in
benchmarks/bench_policy_loop.py --sender native)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.runtime.policy import adversaries as adv
from edgeperc.runtime.policy import native_ticker
from edgeperc.runtime.policy.guard import LimiterState, limit_tick
from edgeperc.runtime.policy.limits import DT_S
from edgeperc.runtime.policy.loop import _FLAG_BIT, run_policy
from edgeperc.runtime.policy.native_ticker import (
    JointStreamError,
    NativeTicker,
    native_hold_tick,
)
from edgeperc.runtime.policy.plants import KinematicPlant
from edgeperc.runtime.policy.ticker import Row

from tests.kernels.helpers import ensure_cmake_target

from .support import READY, assert_at_rest, assert_clean, shipped_limits

LIMITS = shipped_limits()


@pytest.fixture(scope="module", autouse=True)
def _library():
    lib = native_ticker.joint_stream_library
    return ensure_cmake_target("edgeperc_joint_stream", lib, lib.cache_clear)


def _states(seed: int, count: int) -> list[LimiterState]:
    """Limiter states the Python limiter reaches chasing random references (some beyond the
    bounds, some stops): moving, braking, saturated and at rest."""
    rng = np.random.default_rng(seed)
    state, out = LimiterState.at_rest(READY), []
    lo, hi = LIMITS.q_min, LIMITS.q_max
    ref = READY
    for k in range(count):
        if k % 40 == 0:
            pick = rng.integers(4)
            ref = (None if pick == 0 else READY + rng.normal(0, 0.05, 7) if pick == 1
                   else rng.uniform(lo - 0.2, hi + 0.2) if pick == 2 else READY + rng.normal(0, 1.0, 7))
        _, state, _ = limit_tick(state, ref, LIMITS)
        out.append(state)
    return out


def test_the_cpp_hold_tick_equals_the_python_limiter_bit_for_bit():
    rng = np.random.default_rng(3)
    states = _states(1, 4000)
    for i, state in enumerate(states):
        ref = None if i % 7 == 0 else (state.q + rng.normal(0, 0.3 if i % 3 else 0.0005, 7))
        if i % 11 == 0 and ref is not None:
            ref = ref + 5.0  # beyond every bound: clipped
        _, expected, expected_flags = limit_tick(state, ref, LIMITS)
        got, flags = native_hold_tick(state, ref, LIMITS)
        for name in ("q", "dq", "ddq"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=f"state {i}: {name}")
        assert set(flags) == set(expected_flags), i


def test_the_cpp_hold_tick_refuses_a_non_finite_reference():
    with pytest.raises(JointStreamError, match="bad argument"):
        native_hold_tick(LimiterState.at_rest(READY), np.full(7, np.nan), LIMITS)


def test_a_held_tick_continues_the_planner_chain_toward_its_last_reference():
    """Starve the sender after the planner queued a moving ramp: the held ticks are the C++ limiter
    tracking the last row's reference, i.e. exactly what the Python limiter would have sent."""
    plant = KinematicPlant(READY)
    start = LimiterState.at_rest(READY)
    ticker = NativeTicker(plant, LIMITS, start, 0.04, max_ticks=60, bits=_FLAG_BIT)
    goal = READY + 0.05
    state, rows = start, []
    for index in range(20):
        command, state, flags = limit_tick(state, goal, LIMITS)
        rows.append(Row(index, command, 0.04, state, goal, 0))
        assert ticker.push(rows[-1])
    ticker.start(delay_s=DT_S)
    ticker.wait_sent(60)
    ticker.finish(timeout_s=1.0)
    assert ticker.sent == 60 and ticker.held[20:].all() and not ticker.held[:20].any()
    expected = state
    for index in range(20, 60):
        command, expected, _ = limit_tick(expected, goal, LIMITS)
        np.testing.assert_array_equal(ticker.q_c[index], command)
    np.testing.assert_array_equal(ticker.last_state.dq, expected.dq)


def test_a_wall_clock_run_through_the_native_sender_is_clean_and_ends_at_rest():
    plant = KinematicPlant(READY)
    result = run_policy(adv.SinePolicy(), plant, LIMITS, 10, {"timing": "wall", "tick_sender": "native"})
    timing = result.timing
    assert timing is not None and len(timing.lateness_s) == len(result.q_c) == plant.ticks
    np.testing.assert_array_equal(plant.q_rad, result.q_c[-1])
    assert_clean(result.q_c, LIMITS, READY)
    assert_at_rest(result.q_c)
    assert result.ended_at_rest


def test_a_planner_behind_its_lead_makes_the_native_sender_hold_not_skip():
    from .test_wall_timing import SlowCameraPlant

    plant = SlowCameraPlant(observe_s=0.03)
    result = run_policy(adv.SinePolicy(), plant, LIMITS, 10, {"timing": "wall", "tick_sender": "native"})
    timing = result.timing
    assert timing is not None and timing.held > 0
    assert len(result.q_c) == len(timing.lateness_s) == len(result.gripper_c) == len(result.tick_flags)
    assert_clean(result.q_c, LIMITS, READY)
    assert_at_rest(result.q_c)
    assert result.ended_at_rest


def test_adversaries_through_the_native_sender_stay_clean():
    for policy in (adv.HugePolicy(seed=0), adv.NanBurstPolicy()):
        result = run_policy(policy, KinematicPlant(READY), LIMITS, 12, {"timing": "wall", "tick_sender": "native"})
        assert_clean(result.q_c, LIMITS, READY)
        assert_at_rest(result.q_c)


def test_pinning_to_a_cpu_the_process_may_not_use_is_refused_before_motion():
    from edgeperc.errors import ConfigError

    plant = KinematicPlant(READY)
    with pytest.raises(ConfigError, match="tick_cpu"):
        run_policy(adv.SinePolicy(), plant, LIMITS, 5, {"timing": "wall", "tick_sender": "native", "tick_cpu": 1023})
    assert plant.ticks == 0


def test_a_run_pinned_to_a_tick_cpu_restores_the_callers_cpus():
    import os

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs (one for the ticks, one for the rest)")
    before = os.sched_getaffinity(0)
    result = run_policy(adv.SinePolicy(), KinematicPlant(READY), LIMITS, 5,
                        {"timing": "wall", "tick_sender": "native", "tick_cpu": cpus[-1]})
    assert os.sched_getaffinity(0) == before
    assert_clean(result.q_c, LIMITS, READY)
