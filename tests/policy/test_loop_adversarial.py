"""The whole control loop against policies that go wrong, on the perfect-tracking plant.

Each case runs 100 control steps (10,000 ticks at 1 kHz, plus the end-of-run stop) in simulated
time and asserts: zero violations when check_stream replays the 1 kHz command stream (and every
command within the guard's own scaled caps), no NaN in any command, the arm ends bit-for-bit at
rest, holding; and the flags and watchdog reasons that case must raise. Latency is fixed (50 ms:
deterministic) except for the stalling worker, whose sleep must be measured to be seen.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from edgeperc.runtime.policy import adversaries as adv
from edgeperc.runtime.policy.chunks import ChunkVerdict
from edgeperc.runtime.policy.guard import Flag
from edgeperc.runtime.policy.limits import DT_S
from edgeperc.runtime.policy.loop import (
    FLAG_ORDER,
    LIMITING_FLAGS,
    RunResult,
    run_policy,
)
from edgeperc.runtime.policy.plants import KinematicPlant, PlantObservation
from edgeperc.runtime.policy.watchdog import Mode, Reason

from edgeperc.errors import ConfigError

from .support import READY, assert_at_rest, assert_clean, shipped_limits

LIMITS = shipped_limits()
STEPS = 100
FIXED = {"sim_latency_s": 0.05}
ROUNDING_FLAGS = {Flag.ACCELERATION_LIMITED, Flag.JERK_LIMITED}  # the limiter rounding a velocity corner


class FrozenClockPlant(KinematicPlant):
    """A camera that freezes: between ticks [start, end) observations keep the timestamp of ``start``."""

    def __init__(self, start_tick: int, end_tick: int) -> None:
        super().__init__(READY)
        self.start_tick, self.end_tick = start_tick, end_tick

    def observe(self) -> PlantObservation:
        obs = super().observe()
        if self.start_tick <= self.ticks < self.end_tick:
            return obs._replace(time_s=self.start_tick * DT_S)
        return obs


CASES = {
    "benign_sine": lambda: (adv.SinePolicy(), KinematicPlant(READY), FIXED),
    "random": lambda: (adv.RandomPolicy(seed=1), KinematicPlant(READY), FIXED),
    "huge": lambda: (adv.HugePolicy(seed=2), KinematicPlant(READY), FIXED),
    "nan_burst": lambda: (adv.NanBurstPolicy(every=40, burst=8, start=20), KinematicPlant(READY), FIXED),
    "nan_intermittent": lambda: (adv.NanBurstPolicy(every=2, burst=1, start=10), KinematicPlant(READY), FIXED),
    "drift_joint_limit": lambda: (adv.DriftPolicy(joint=6, rate_rad_per_step=0.05), KinematicPlant(READY), FIXED),
    "drift_workspace": lambda: (adv.DriftPolicy(joint=0, rate_rad_per_step=0.05), KinematicPlant(READY), FIXED),
    "oscillation_nyquist": lambda: (adv.OscillationPolicy(joint=1, amp_rad=0.05), KinematicPlant(READY), FIXED),
    "stall": lambda: (adv.StallPolicy(stall_call=20, stall_s=1.3), KinematicPlant(READY), {}),
    "dies": lambda: (adv.DyingPolicy(die_call=30), KinematicPlant(READY), FIXED),
    "stale_observation": lambda: (adv.SinePolicy(), FrozenClockPlant(3000, 4000), FIXED),
}


@cache
def _run(name: str, **overrides) -> RunResult:
    policy, plant, config = CASES[name]()
    return run_policy(policy, plant, LIMITS, STEPS, {**config, **overrides})


def _tick_flags(result: RunResult, steps: slice | None = None) -> set[Flag]:
    masks = result.tick_flags if steps is None else result.tick_flags[steps.start * 100 : steps.stop * 100]
    return {flag for i, flag in enumerate(FLAG_ORDER) if np.any(masks & (1 << i))}


def _target_flags(result: RunResult) -> set[Flag]:
    return {flag for flags in result.step_flags for flag in flags}


def _reasons(result: RunResult, after: Mode) -> list[Reason]:
    return [t.reason for t in result.transitions if t.after is after]


def _seen_faults(result: RunResult) -> set[Reason]:
    return {reason for faults in result.step_faults for reason in faults}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_passes_the_checker_and_ends_at_rest(name):
    result = _run(name)
    assert len(result.q_c) >= 10_000
    assert np.isfinite(result.q_c).all() and np.isfinite(result.gripper_c).all()
    assert_clean(result.q_c, LIMITS, READY)  # check_stream: zero violations; within the scaled caps
    assert result.stream().check(LIMITS) == []
    assert result.ended_at_rest and result.final_mode is Mode.HOLDING
    assert_at_rest(result.q_c, ticks=50)
    g = result.gripper_c
    assert (g >= LIMITS.gripper_width_min_m).all() and (g <= LIMITS.gripper_width_max_m).all()
    assert np.abs(np.diff(g)).max() <= result.config.gripper_speed_m_s * DT_S + 1e-12


def test_benign_sine_runs_without_a_stop_or_an_intervention():
    result = _run("benign_sine")
    assert _reasons(result, Mode.STOPPING) == [Reason.END_OF_RUN]
    assert _reasons(result, Mode.RUNNING) == [Reason.STARTED]
    assert not result.intervened.any() and not _target_flags(result)
    running = [i for i, m in enumerate(result.modes) if m is Mode.RUNNING]
    # The limiter may round the start from rest (acceleration/jerk caps), nothing else.
    assert not _tick_flags(result, slice(running[0], running[-1] + 1)) & LIMITING_FLAGS - ROUNDING_FLAGS
    # With the ramps' velocity fed forward, each step ends on its target (no lag of v / K_P).
    steps = np.array(running[3:])
    assert np.abs(result.q_c[steps * 100 + 99] - result.targets[steps, :7]).max() < 0.005
    assert result.verdicts() == {"accepted": STEPS}


@pytest.mark.parametrize("latency_s", [0.05, 0.25])
def test_latency_compensation_keeps_targets_on_schedule(latency_s):
    """The policy predicts the sine for the steps after its observation; however late its chunk
    comes, the step executes the action meant for it (not a delayed copy of the schedule)."""
    result = _run("benign_sine", sim_latency_s=latency_s)
    delay = int(np.ceil(latency_s / 0.1 - 1e-9))
    assert {c.dropped for c in result.chunks} == {delay}
    running = np.array([m is Mode.RUNNING for m in result.modes])
    steps = np.nonzero(running)[0][15:]  # after the start-up blend
    np.testing.assert_allclose(result.targets[steps, :7], adv.sine_q(steps), atol=1e-12)
    # The ramps' slope is fed forward, so the command ends each step on the schedule (without it,
    # the position loop's K_P = 10/s would trail the sine's 0.47 rad/s by up to 0.047 rad).
    ends = result.q_c[steps * 100 + 99]
    assert np.abs(ends - adv.sine_q(steps)).max() < 0.005


@pytest.mark.parametrize(
    ("name", "target_flags", "tick_flags"),
    [
        ("random", {Flag.STEP_CLIPPED}, {Flag.ACCELERATION_LIMITED, Flag.VELOCITY_LIMITED}),
        ("huge", {Flag.POSITION_CLIPPED, Flag.STEP_CLIPPED, Flag.GRIPPER_WIDTH_CLAMPED}, {Flag.VELOCITY_LIMITED}),
        ("drift_joint_limit", {Flag.POSITION_CLIPPED}, set()),
        ("drift_workspace", {Flag.WORKSPACE_CLIPPED}, set()),
        ("oscillation_nyquist", set(), {Flag.ACCELERATION_LIMITED}),
    ],
)
def test_misbehaving_policies_trip_on_interventions_and_latch(name, target_flags, tick_flags):
    result = _run(name)
    assert target_flags <= _target_flags(result)
    assert tick_flags <= _tick_flags(result)
    assert set(_reasons(result, Mode.STOPPING)) == {Reason.INTERVENTIONS}
    assert len(_reasons(result, Mode.STOPPING)) == 3  # latch_after_trips
    assert result.transitions[-1].latched and result.transitions[-1].after is Mode.HOLDING
    assert _reasons(result, Mode.RUNNING) == [Reason.STARTED, Reason.RECOVERED, Reason.RECOVERED]
    assert result.verdicts() == {"accepted": STEPS}


def test_oscillation_is_caught_by_the_limiter_not_the_target_checks():
    result = _run("oscillation_nyquist")
    assert not _target_flags(result)  # each target is small and inside every bound
    assert result.intervened.sum() == 15  # 5 per trip, all from ticks at a cap


def test_drift_parks_at_the_joint_limit_margin():
    result = _run("drift_joint_limit")
    assert result.q_c[:, 6].max() == pytest.approx(LIMITS.q_hi[6], abs=1e-9)  # reached, never passed


def test_huge_outputs_move_at_most_a_few_capped_steps_before_the_stop():
    result = _run("huge")
    first_stop = next(t.step for t in result.transitions if t.after is Mode.STOPPING)
    moved = np.abs(result.q_c[: first_stop * 100] - READY).max()
    assert moved <= first_stop * 0.1 * 1.0 + 1e-9  # max_tick_step_rad: 1 rad/s
    assert np.abs(result.targets[np.isfinite(result.targets[:, 0]), 7]).max() <= LIMITS.gripper_width_max_m


def test_nan_burst_is_refused_and_stops_the_arm_on_the_deadline():
    result = _run("nan_burst")
    verdicts = result.verdicts()
    assert verdicts[ChunkVerdict.NON_FINITE.value] >= 8
    assert _reasons(result, Mode.STOPPING)[:-1] and set(_reasons(result, Mode.STOPPING)[:-1]) == {Reason.CHUNK_LATE}
    assert Reason.RECOVERED in _reasons(result, Mode.RUNNING)  # the burst ends, fresh chunks resume
    assert not _target_flags(result) & {Flag.NON_FINITE_TARGET}  # refused before the guard


def test_intermittent_nan_trips_on_interventions():
    result = _run("nan_intermittent")
    assert result.verdicts()[ChunkVerdict.NON_FINITE.value] >= 40
    assert set(_reasons(result, Mode.STOPPING)) == {Reason.INTERVENTIONS}
    assert result.transitions[-1].latched


def test_stalled_worker_stops_the_arm_and_recovers():
    result = _run("stall")
    stops = _reasons(result, Mode.STOPPING)
    assert stops == [Reason.CHUNK_LATE, Reason.END_OF_RUN]
    assert Reason.WORKER_HUNG in _seen_faults(result)  # 1.3 s > worker_timeout_s 1.0
    late = [c for c in result.chunks if c.verdict is ChunkVerdict.LATE]
    assert len(late) == 1 and late[0].latency_s >= 1.3
    assert _reasons(result, Mode.RUNNING) == [Reason.STARTED, Reason.RECOVERED]


def test_dead_worker_stops_and_stays_holding():
    result = _run("dies")
    assert _reasons(result, Mode.STOPPING) == [Reason.WORKER_DEAD]
    assert _reasons(result, Mode.RUNNING) == [Reason.STARTED]
    assert "RuntimeError: CUDA error" in result.worker_error
    assert result.verdicts()[ChunkVerdict.WORKER_ERROR.value] == 1


def test_stale_observation_stops_and_recovers():
    result = _run("stale_observation")
    assert _reasons(result, Mode.STOPPING) == [Reason.STALE_OBSERVATION, Reason.END_OF_RUN]
    assert _reasons(result, Mode.RUNNING) == [Reason.STARTED, Reason.RECOVERED]
    stop = next(t.step for t in result.transitions if t.reason is Reason.STALE_OBSERVATION)
    assert 32 <= stop <= 33  # observation_max_age_s 0.2 s after the freeze at 3.0 s


@pytest.mark.parametrize("name", ["stale_observation", "stall"])
def test_recovery_blends_in_without_a_jump(name):
    """After a stop the sine has moved on; the gap to the policy's target is faded out over at least
    blend_steps and at most blend_speed_rad_s: the first target is 1/(n + 1) of the gap from the hold
    pose, and the arm catches up without an intervention (the limiter only rounds the start from rest)."""
    result = _run(name)
    step = next(t.step for t in result.transitions if t.reason is Reason.RECOVERED)
    hold = result.q_c[step * 100 - 1]
    gap = np.abs(adv.sine_q(step) - hold).max()
    assert gap > 0.05  # there is something to blend
    cfg = result.config
    blend = max(cfg.blend_steps, int(np.ceil(gap / (cfg.blend_speed_rad_s * 0.1) - 1)))
    first_move = np.abs(result.targets[step, :7] - hold).max()
    assert first_move <= gap / (blend + 1) + 1e-9 and first_move <= cfg.blend_speed_rad_s * 0.1 + 1e-9
    window = slice(step, step + blend + 5)
    assert not _tick_flags(result, window) & LIMITING_FLAGS - ROUNDING_FLAGS
    assert not result.intervened[window].any()
    speed = np.abs(np.diff(result.q_c[window.start * 100 - 1 : window.stop * 100], axis=0)).max() / DT_S
    assert speed < 0.47 + cfg.blend_speed_rad_s  # the sine's own top speed plus the catch-up


def test_without_blending_the_recovery_step_is_the_whole_gap():
    blended = _run("stale_observation")
    plain = _run("stale_observation", blend_speed_rad_s=None)
    step = next(t.step for t in plain.transitions if t.reason is Reason.RECOVERED)
    hold = plain.q_c[step * 100 - 1]
    first_plain = np.abs(plain.targets[step, :7] - hold).max()
    first_blended = np.abs(blended.targets[step, :7] - blended.q_c[step * 100 - 1]).max()
    gap = np.abs(adv.sine_q(step) - hold).max()
    assert first_plain == pytest.approx(min(gap, LIMITS.max_target_step_rad))  # only the guard's step cap
    assert Flag.STEP_CLIPPED in plain.step_flags[step]
    assert first_blended < first_plain / 4


# --- replanning every n steps ---------------------------------------------------------------------


@pytest.mark.parametrize("every", [4, 8])
def test_replanning_every_n_steps_runs_each_chunk_n_steps_open_loop(every):
    """Diffusion Policy's n_action_steps: an observation goes out only once the newest chunk is n
    steps old; the chunk deadline counts from there, so the run neither stops nor lags the schedule."""
    result = _run("benign_sine", replan_every_steps=every)
    obs_steps = [c.obs_step for c in result.chunks]
    assert np.diff(obs_steps).min() == every and set(np.diff(obs_steps)) == {every}
    assert _reasons(result, Mode.STOPPING) == [Reason.END_OF_RUN] and not result.intervened.any()
    running = np.nonzero([m is Mode.RUNNING for m in result.modes])[0][15:]
    np.testing.assert_allclose(result.targets[running, :7], adv.sine_q(running), atol=1e-12)
    assert result.stream().check(LIMITS) == []


def test_replanning_still_stops_when_the_worker_stalls_past_the_interval_and_deadline():
    """A stall longer than n steps + chunk_deadline_s still trips CHUNK_LATE (or the worker timeout)."""
    result = _run("stall", replan_every_steps=4)
    assert {Reason.CHUNK_LATE, Reason.WORKER_HUNG} & set(_reasons(result, Mode.STOPPING))
    assert Reason.RECOVERED in _reasons(result, Mode.RUNNING)
    assert result.ended_at_rest and result.stream().check(LIMITS) == []


def test_a_replan_interval_past_the_chunk_is_refused():
    from edgeperc.runtime.policy.loop import validate_runtime_config

    with pytest.raises(ConfigError, match="replan_every_steps"):
        validate_runtime_config({"replan_every_steps": 12})  # 0.5 s deadline + 11 steps > 15 steps of chunk
