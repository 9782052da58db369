"""The watchdog state machine, input by input: start-up, each fault and its priority, stopping to
rest, holding, recovery (fresh chunk, clear steps, minimum hold), latching and the end of a run."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from edgeperc.runtime.policy.watchdog import (
    Mode,
    Reason,
    WatchdogConfig,
    WatchdogInputs,
    WatchdogState,
    faults,
    update_watchdog,
)
from pydantic import ValidationError

CFG = WatchdogConfig()
PERIOD = 0.1


def _ok(step: int, **changes) -> WatchdogInputs:
    """All clear at ``step``: a fresh chunk, a live idle worker, a fresh observation."""
    base = WatchdogInputs(
        step=step,
        time_s=step * PERIOD,
        chunk_age_s=0.1,
        target_available=True,
        worker_alive=True,
        worker_silent_s=0.0,
        observation_age_s=0.0,
        intervened=False,
        at_rest=True,
    )
    return replace(base, **changes)


def _drive(state: WatchdogState, inputs: list[WatchdogInputs], config: WatchdogConfig = CFG):
    transitions = []
    for item in inputs:
        state, transition = update_watchdog(state, item, config)
        if transition is not None:
            transitions.append(transition)
    return state, transitions


def _running(config: WatchdogConfig = CFG) -> WatchdogState:
    state, transitions = _drive(WatchdogState.start(), [_ok(0), _ok(1)], config)
    assert state.mode is Mode.RUNNING and transitions[-1].reason is Reason.STARTED
    return state


def test_starts_holding_until_a_fresh_chunk_for_recover_steps():
    state = WatchdogState.start()
    assert (state.mode, state.reason) == (Mode.HOLDING, Reason.STARTUP)
    state, transitions = _drive(state, [_ok(0, target_available=False, chunk_age_s=math.inf)])
    assert state.mode is Mode.HOLDING and not transitions
    state, transitions = _drive(state, [_ok(1)])
    assert state.mode is Mode.HOLDING  # one clear step is not enough (recover_steps = 2)
    state, transitions = _drive(state, [_ok(2)])
    assert state.mode is Mode.RUNNING
    (t,) = transitions
    assert (t.step, t.before, t.after, t.reason) == (2, Mode.HOLDING, Mode.RUNNING, Reason.STARTED)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"worker_alive": False}, Reason.WORKER_DEAD),
        ({"worker_silent_s": 1.01}, Reason.WORKER_HUNG),
        ({"observation_age_s": 0.21}, Reason.STALE_OBSERVATION),
        ({"observation_age_s": math.nan}, Reason.STALE_OBSERVATION),
        ({"chunk_age_s": 0.51}, Reason.CHUNK_LATE),
        ({"target_available": False}, Reason.QUEUE_EMPTY),
    ],
)
def test_each_fault_stops_a_running_arm_with_its_reason(change, reason):
    state = _running()
    state, transitions = _drive(state, [_ok(5, at_rest=False, **change)])
    assert state.mode is Mode.STOPPING and state.reason is reason and state.trips == 1
    assert transitions[-1].before is Mode.RUNNING and transitions[-1].reason is reason


def test_thresholds_are_exclusive():
    assert faults(_ok(3, worker_silent_s=1.0, observation_age_s=0.2, chunk_age_s=0.5), CFG) == ()


def test_fault_priority_order():
    everything = _ok(3, worker_alive=False, worker_silent_s=2.0, observation_age_s=1.0, chunk_age_s=1.0, target_available=False)
    assert faults(everything, CFG) == (
        Reason.WORKER_DEAD, Reason.WORKER_HUNG, Reason.STALE_OBSERVATION, Reason.CHUNK_LATE,
    )
    state, _ = _drive(_running(), [everything])
    assert state.reason is Reason.WORKER_DEAD
    # An empty queue whose newest chunk is already late is reported as late (the cause), not empty.
    assert faults(_ok(3, chunk_age_s=0.7, target_available=False), CFG) == (Reason.CHUNK_LATE,)
    # Before any chunk (age inf) an empty queue is just empty.
    assert faults(_ok(3, chunk_age_s=math.inf, target_available=False), CFG) == (Reason.QUEUE_EMPTY,)


def test_interventions_trip_only_when_max_fall_within_the_window():
    state = _running()
    # 4 within the window: keeps running.
    pattern = [True, False, True, False, True, False, True, False, False, False]
    state, transitions = _drive(state, [_ok(2 + i, intervened=v) for i, v in enumerate(pattern)])
    assert state.mode is Mode.RUNNING and not transitions
    # Spread out (one every 3 steps) never has 5 in 10 steps.
    state, transitions = _drive(state, [_ok(20 + i, intervened=i % 3 == 0) for i in range(30)])
    assert state.mode is Mode.RUNNING and not transitions
    # After a clear window, 5 in a row trip on the fifth (3 left in the window + 2 would already).
    state, _ = _drive(state, [_ok(50 + i) for i in range(10)])
    state, transitions = _drive(state, [_ok(60 + i, intervened=True, at_rest=False) for i in range(5)])
    assert state.mode is Mode.STOPPING and state.reason is Reason.INTERVENTIONS
    assert transitions[-1].step == 64


def test_stopping_waits_for_rest_then_holds_with_the_same_reason():
    state, _ = _drive(_running(), [_ok(5, chunk_age_s=0.9, at_rest=False)])
    state, transitions = _drive(state, [_ok(6 + i, at_rest=False) for i in range(4)])
    assert state.mode is Mode.STOPPING and not transitions  # inputs clear again, but still moving
    state, transitions = _drive(state, [_ok(10, at_rest=True)])
    assert state.mode is Mode.HOLDING and state.reason is Reason.CHUNK_LATE
    assert (transitions[-1].before, transitions[-1].after) == (Mode.STOPPING, Mode.HOLDING)


def test_recovery_needs_min_hold_a_fresh_chunk_and_clear_steps():
    state, _ = _drive(_running(), [_ok(5, chunk_age_s=0.9, at_rest=False), _ok(6, chunk_age_s=1.0, at_rest=True)])
    assert state.mode is Mode.HOLDING and state.since_step == 6
    # Clear inputs, but held only 0.1-0.4 s < min_hold_s 0.5: stays.
    state, transitions = _drive(state, [_ok(7 + i) for i in range(4)])
    assert state.mode is Mode.HOLDING and not transitions
    # Late chunk at the 0.5 s mark: clear count restarts.
    state, transitions = _drive(state, [_ok(11), _ok(12, chunk_age_s=0.8), _ok(13)])
    assert state.mode is Mode.HOLDING and state.clear_steps == 1
    state, transitions = _drive(state, [_ok(14)])
    assert state.mode is Mode.RUNNING
    assert transitions[-1].reason is Reason.RECOVERED and state.recent == () and state.trips == 1


def test_recovery_needs_a_target():
    state, _ = _drive(_running(), [_ok(5, worker_silent_s=2.0, at_rest=False), _ok(6, worker_silent_s=2.1)])
    state, _ = _drive(state, [_ok(7 + i, target_available=False, chunk_age_s=math.inf) for i in range(10)])
    assert state.mode is Mode.HOLDING and state.reason is Reason.WORKER_HUNG


def test_latches_after_repeated_trips():
    config = WatchdogConfig(latch_after_trips=2, min_hold_s=0.0)
    state = _running(config)
    step = 2
    for trip in (1, 2):
        state, transitions = _drive(state, [_ok(step + i, intervened=True, at_rest=False) for i in range(5)], config)
        step += 5
        assert state.mode is Mode.STOPPING and state.trips == trip
        state, _ = _drive(state, [_ok(step)], config)
        step += 1
        assert state.mode is Mode.HOLDING
        if trip == 1:
            state, _ = _drive(state, [_ok(step), _ok(step + 1)], config)
            step += 2
            assert state.mode is Mode.RUNNING
    assert state.latched and transitions[-1].latched
    state, transitions = _drive(state, [_ok(step + i) for i in range(50)], config)
    assert state.mode is Mode.HOLDING and not transitions


def test_finish_stops_without_counting_a_trip():
    state, transitions = _drive(_running(), [_ok(5, finish=True, at_rest=False), _ok(6, finish=True, at_rest=True)])
    assert state.mode is Mode.HOLDING and state.reason is Reason.END_OF_RUN and state.trips == 0
    state, transitions = _drive(state, [_ok(7 + i, finish=True) for i in range(5)])
    assert state.mode is Mode.HOLDING and not transitions  # never resumes once finishing


def test_watchdog_state_is_immutable():
    state = WatchdogState.start()
    with pytest.raises(AttributeError):
        state.mode = Mode.RUNNING  # type: ignore[misc]


def test_config_refuses_an_unreachable_intervention_count():
    with pytest.raises(ValidationError, match="max_interventions"):
        WatchdogConfig(intervention_window_steps=4, max_interventions=5)
    with pytest.raises(ValidationError):
        WatchdogConfig(chunk_deadline_s=0.0)
    with pytest.raises(ValidationError):
        WatchdogConfig(worker_timeout_s=float("nan"))
