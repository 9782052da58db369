"""Wall-clock runs: the 1 kHz ticks go out from a thread of their own while the 10 Hz planning
(observe, results, watchdog, guard_target, ramp, the step's limiter ticks) runs ahead of them on
the loop's thread; a planner that falls behind makes the ticker hold, not skip; the inference
worker's thread only runs the model. Assertions are on structure, not on timing figures (those
depend on the machine's load and belong in benchmarks/bench_policy_loop.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from edgeperc.runtime.policy import adversaries as adv
from edgeperc.runtime.policy import ticker as ticker_module
from edgeperc.runtime.policy.guard import Flag, LimiterState, limit_tick
from edgeperc.runtime.policy.limits import DT_S
from edgeperc.runtime.policy.loop import _FLAG_BIT, run_policy, validate_runtime_config
from edgeperc.runtime.policy.plants import KinematicPlant, PlantObservation
from edgeperc.runtime.policy.policies import PolicyInput
from edgeperc.runtime.policy.ticker import Row, Ticker
from edgeperc.runtime.policy.worker import InferenceWorker, Job

from edgeperc.errors import ConfigError

from .support import READY, assert_at_rest, assert_clean, shipped_limits

LIMITS = shipped_limits()


class SlowCameraPlant(KinematicPlant):
    """observe() takes ``observe_s`` (a camera read: sleeps, the GIL released) and records how many
    commands the plant received meanwhile and from which threads each call came."""

    thread_safe = True  # observe may run while apply_command runs (the loop then takes no lock)

    def __init__(self, observe_s: float, slow_from: int = 1) -> None:
        super().__init__(READY)
        self.observe_s, self.slow_from = observe_s, slow_from
        self.calls = 0
        self.ticks_during: list[int] = []
        self.observe_threads: set[int] = set()
        self.command_threads: set[int] = set()
        self.observing = False
        self.overlaps = 0

    def observe(self) -> PlantObservation:
        self.observe_threads.add(threading.get_ident())
        self.calls += 1
        if self.calls <= self.slow_from:  # the first observation (before the loop) is not timed
            return super().observe()
        before = self.ticks
        self.observing = True
        time.sleep(self.observe_s)
        self.observing = False
        self.ticks_during.append(self.ticks - before)
        return super().observe()

    def apply_command(self, q_cmd_rad: np.ndarray, gripper_width_m: float) -> None:
        self.command_threads.add(threading.get_ident())
        self.overlaps += self.observing
        super().apply_command(q_cmd_rad, gripper_width_m)


def test_a_slow_observe_does_not_hold_up_the_ticks():
    plant = SlowCameraPlant(observe_s=0.004)
    result = run_policy(adv.SinePolicy(), plant, LIMITS, 8, {"timing": "wall", "sim_latency_s": None})
    # Observing and commanding happen on different threads, and commands keep going out while an
    # observation is being taken (in a loop that ran both on one thread this count is always 0).
    assert plant.observe_threads.isdisjoint(plant.command_threads)
    assert len(plant.ticks_during) >= 8
    assert sum(n > 0 for n in plant.ticks_during) >= len(plant.ticks_during) // 2, plant.ticks_during
    timing = result.timing
    assert timing is not None and timing.lateness_s.shape == (len(result.q_c),)
    assert timing.step_work_s.shape == (len(result.modes),)
    assert_clean(result.q_c, LIMITS, READY)
    assert_at_rest(result.q_c)


def test_a_plant_not_marked_thread_safe_is_never_called_concurrently():
    class Plant(SlowCameraPlant):
        thread_safe = False

    plant = Plant(observe_s=0.002)
    result = run_policy(adv.SinePolicy(), plant, LIMITS, 4, {"timing": "wall"})
    assert plant.overlaps == 0 and set(plant.ticks_during) == {0}
    assert_clean(result.q_c, LIMITS, READY)


def test_a_planner_behind_its_lead_makes_the_ticker_hold_not_skip():
    plant = SlowCameraPlant(observe_s=0.03)  # 30 ms per observation: 20 ms past the 10 ms lead
    result = run_policy(adv.SinePolicy(), plant, LIMITS, 10, {"timing": "wall"})
    timing = result.timing
    assert timing is not None and timing.held > 0
    # Every slot got a command, and the held ones joined the planned ones into one limited chain.
    assert len(result.q_c) == len(timing.lateness_s) == len(result.gripper_c) == len(result.tick_flags)
    assert np.isfinite(result.q_c).all()
    assert_clean(result.q_c, LIMITS, READY)
    assert_at_rest(result.q_c)
    assert result.ended_at_rest
    steps = timing.control_steps(100, 0.1)  # the 10 Hz view: the steps holding held ticks missed
    assert timing.held_ticks is not None and int(timing.held_ticks.sum()) == timing.held
    assert steps.missed.any() and steps.lateness_s.shape == (-(-len(result.q_c) // 100),)


def test_a_plant_failing_on_the_tick_thread_fails_the_run():
    class Broken(KinematicPlant):
        def apply_command(self, q_cmd_rad, gripper_width_m):
            if self.ticks == 150:
                raise RuntimeError("robot link down")
            super().apply_command(q_cmd_rad, gripper_width_m)

    plant = Broken(READY)
    with pytest.raises(RuntimeError, match="robot link down"):
        run_policy(adv.SinePolicy(), plant, LIMITS, 10, {"timing": "wall"})
    assert plant.ticks == 150


def test_plan_lead_and_tick_priority_are_checked():
    with pytest.raises(ConfigError, match="plan_lead_s"):
        validate_runtime_config({"plan_lead_s": 0.1})  # the whole 10 Hz period
    with pytest.raises(ConfigError, match="tick_priority"):
        validate_runtime_config({"tick_priority": 0})


def test_a_tick_priority_that_cannot_be_had_is_refused_before_motion(monkeypatch):
    def refuse(priority):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(ticker_module, "set_fifo_priority", refuse)
    plant = KinematicPlant(READY)
    with pytest.raises(ConfigError, match="tick_priority"):
        run_policy(adv.SinePolicy(), plant, LIMITS, 5, {"timing": "wall", "tick_priority": 10})
    assert plant.ticks == 0


# --- the ticker on its own ---------------------------------------------------------------------------


def _ticker_class(sender: str) -> type:
    if sender == "python":
        return Ticker
    from edgeperc.runtime.policy import native_ticker

    from tests.kernels.helpers import ensure_cmake_target

    lib = native_ticker.joint_stream_library
    ensure_cmake_target("edgeperc_joint_stream", lib, lib.cache_clear)
    return native_ticker.NativeTicker


@pytest.mark.parametrize("sender", ["python", "native"])
def test_the_ticker_holds_when_starved_and_the_planner_takes_its_rows_over(sender):
    """Both senders: held at first (no rows yet), the planner takes the held rows over and continues
    the chain from them, then its own rows go out; the plant got every command."""
    plant = KinematicPlant(READY)
    start = LimiterState.at_rest(READY)
    ticker = _ticker_class(sender)(plant, LIMITS, start, 0.04, max_ticks=40, bits=_FLAG_BIT)
    goal = READY + 0.002
    ticker.start(delay_s=DT_S)
    time.sleep(0.006)  # nothing pushed: the first slots are held (at rest, no reference: stay there)
    state, adopted = start, []
    for index in range(40):
        row = ticker.taken_over(index)
        if row is None:
            command, new_state, _ = limit_tick(state, goal, LIMITS)
            row = Row(index, command, 0.04, new_state, goal, 0)
            if not ticker.push(row):
                row = ticker.taken_over(index)
                assert row is not None
                adopted.append(index)
        else:
            adopted.append(index)
        state = row.state
    ticker.finish(timeout_s=1.0)
    held = ticker.held[:40].astype(bool)
    assert ticker.sent == 40 and adopted == list(np.flatnonzero(held)) and adopted[0] == 0
    first_planned = int(held.argmin())
    assert first_planned >= 3 and not held[first_planned:].any()  # held at first, then the planner's rows
    assert (ticker.q_c[:first_planned] == READY).all()  # held at rest: no reference yet
    assert_clean(ticker.q_c[:40], LIMITS, READY)
    np.testing.assert_array_equal(plant.q_rad, ticker.q_c[39])
    assert plant.ticks == 40 and ticker.masks[0] & _FLAG_BIT[Flag.STOPPING]  # held without a reference: a stop


# --- the inference worker -------------------------------------------------------------------------------


class SplitPolicy:
    """prepare/infer_prepared, recording the thread each half ran on."""

    def __init__(self, fail_prepare: bool = False) -> None:
        self.fail_prepare = fail_prepare
        self.threads: dict[str, int] = {}

    def prepare(self, observation: PolicyInput) -> dict[str, np.ndarray]:
        self.threads["prepare"] = threading.get_ident()
        if self.fail_prepare:
            raise ValueError("bad frame")
        return {"q": np.asarray(observation.q_rad)}

    def infer_prepared(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        self.threads["infer_prepared"] = threading.get_ident()
        return np.zeros((16, 8))

    def infer(self, observation: PolicyInput) -> np.ndarray:
        return self.infer_prepared(self.prepare(observation))


def _job() -> Job:
    return Job(0, 0.0, READY.copy(), PolicyInput(0, 0.0, READY.copy(), 0.04, None, np.zeros((2, 8), np.float32)))


def test_the_worker_thread_only_runs_the_model_half():
    policy = SplitPolicy()
    worker = InferenceWorker(policy, 0.1, "sim", fixed_latency_s=0.05, nice=5)
    try:
        worker.submit(_job())
        result, _ = worker.poll(1)
        assert result is not None and result.error is None and np.shape(result.output) == (16, 8)
        assert policy.threads["prepare"] == threading.get_ident()
        assert policy.threads["infer_prepared"] != threading.get_ident()
    finally:
        worker.close()


def test_a_failing_prepare_is_reported_like_a_failing_policy():
    worker = InferenceWorker(SplitPolicy(fail_prepare=True), 0.1, "sim", fixed_latency_s=0.05)
    try:
        worker.submit(_job())
        result, _ = worker.poll(1)
        assert result is not None and result.error == "ValueError: bad frame" and result.output is None
        assert not worker.idle and not worker.alive
    finally:
        worker.close()


def test_control_step_timing_matches_a_loop_over_steps():
    """numpy reference: per step, the first tick's lateness, and missed = any held tick in the step
    or the first command a whole control period late; a partial last step counts as it stands."""
    from edgeperc.errors import ConfigError, InvalidInputError
    from edgeperc.runtime.policy.loop import control_step_timing

    rng = np.random.default_rng(0)
    ticks, per = 1050, 100
    late = rng.exponential(0.0002, ticks)
    late[300] = 0.15  # step 3 starts a whole period late
    late[420] = 0.5  # a late tick inside step 4, not its first: not a control-step miss
    held = np.zeros(ticks, bool)
    held[[705, 1049]] = True  # steps 7 and 10 (the partial one)
    got = control_step_timing(late, held, per, 0.1)
    want_late, want_missed = [], []
    for s in range(0, ticks, per):
        want_late.append(late[s])
        want_missed.append(bool(held[s: s + per].any() or late[s] >= 0.1))
    np.testing.assert_array_equal(got.lateness_s, want_late)
    np.testing.assert_array_equal(got.missed, want_missed)
    assert np.flatnonzero(got.missed).tolist() == [3, 7, 10]
    with pytest.raises(InvalidInputError, match="same 1-D length"):
        control_step_timing(late, held[:-1], per, 0.1)
    with pytest.raises(ConfigError, match="must be positive"):
        control_step_timing(late, held, 0, 0.1)
