"""The policy watchdog: a pure state machine that decides when the policy may move the arm.

RUNNING: targets come from the chunk queue. STOPPING: the limiter decelerates to rest (target None,
the same motion as guard.stop_profile), the gripper keeps its last command (opening it could drop
what it holds). HOLDING: at rest, exactly repeating the last command. The reason of every stop is
kept; recovery from HOLDING needs a fresh chunk and every input clear for ``recover_steps`` control
steps (plus ``min_hold_s`` after a trip), and after ``latch_after_trips`` trips the hold is latched
for an operator - a policy that trips over and over should not be restarted over and over.

Inputs per control step (``WatchdogInputs``), checked in this priority order:
worker dead > worker hung (one inference running longer than ``worker_timeout_s``) > stale
observation > chunk late (newest accepted chunk's observation older than ``chunk_deadline_s``) >
queue empty > repeated guard interventions (``max_interventions`` within the last
``intervention_window_steps`` running steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Mode(str, Enum):
    RUNNING = "running"
    STOPPING = "stopping"
    HOLDING = "holding"

    def __str__(self) -> str:
        return self.value


class Reason(str, Enum):
    """Why the watchdog is where it is; faults in priority order first."""

    WORKER_DEAD = "worker_dead"
    WORKER_HUNG = "worker_hung"
    STALE_OBSERVATION = "stale_observation"
    CHUNK_LATE = "chunk_late"
    QUEUE_EMPTY = "queue_empty"
    INTERVENTIONS = "interventions"
    STARTUP = "startup"  # holding until the first fresh chunk
    STARTED = "started"  # RUNNING for the first time
    RECOVERED = "recovered"  # RUNNING again after a stop
    END_OF_RUN = "end_of_run"  # the loop was asked to finish

    def __str__(self) -> str:
        return self.value


class WatchdogConfig(BaseModel):
    """Thresholds of the watchdog (times in seconds of the loop's clock)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    chunk_deadline_s: float = Field(
        0.5, gt=0.0, le=10.0, description="newest accepted chunk's observation older than this: stop"
    )
    worker_timeout_s: float = Field(1.0, gt=0.0, le=60.0, description="one inference running longer: worker hung")
    observation_max_age_s: float = Field(0.2, gt=0.0, le=10.0, description="observation timestamp older than this: stale")
    intervention_window_steps: int = Field(10, ge=1, le=1000, description="running steps in the intervention window")
    max_interventions: int = Field(5, ge=1, le=1000, description="interventions within the window that stop the arm")
    limiter_ticks_per_intervention: int = Field(
        10, ge=1, le=1000, description="limiter ticks at a cap within one step that count as an intervention"
    )
    tracking_tolerance_rad: float = Field(
        0.02, ge=0.0, le=1.0,
        description="a tick at a cap counts toward an intervention only while its command is farther than this "
        "from the reference (rounding a velocity corner is the limiter's job, not a policy fault)",
    )
    saturated_share_per_intervention: float = Field(
        0.9, gt=0.0, le=1.0,
        description="share of a step's ticks at the acceleration or jerk cap that counts as an intervention however "
        "close the command stays (the policy keeps asking for more acceleration than allowed: an oscillation; a "
        "start from rest saturates for v / a_cap, 0.2 s at 0.75 rad/s on joint 2)",
    )
    recover_steps: int = Field(2, ge=1, le=100, description="consecutive clear steps with a fresh chunk to resume")
    min_hold_s: float = Field(0.5, ge=0.0, le=60.0, description="least time held after a trip before resuming")
    latch_after_trips: int = Field(3, ge=1, le=1000, description="trips after which the hold is latched")

    @model_validator(mode="after")
    def _window(self) -> WatchdogConfig:
        if self.max_interventions > self.intervention_window_steps:
            raise ValueError(
                f"max_interventions: can never be reached within intervention_window_steps "
                f"{self.intervention_window_steps}; allowed: 1 <= value <= {self.intervention_window_steps} "
                f"(got {self.max_interventions})"
            )
        return self


@dataclass(frozen=True)
class WatchdogInputs:
    """What the loop knows at the start of one control step."""

    step: int
    time_s: float
    chunk_age_s: float  # now - observation time of the newest accepted chunk; inf before the first
    target_available: bool  # the chunk queue has a target for this step
    worker_alive: bool
    worker_silent_s: float  # how long the current inference has been running; 0 when idle
    observation_age_s: float  # now - timestamp of the latest observation
    intervened: bool  # the previous step, while RUNNING, had a guard intervention
    at_rest: bool  # the limiter's state is exactly at rest
    finish: bool = False  # the loop is ending: stop and hold


@dataclass(frozen=True)
class WatchdogState:
    mode: Mode
    reason: Reason
    since_step: int
    since_time_s: float
    recent: tuple[bool, ...] = ()  # interventions of the last running steps, oldest first
    clear_steps: int = 0
    trips: int = 0
    latched: bool = False

    @classmethod
    def start(cls) -> WatchdogState:
        """Holding at the start, until the first fresh chunk."""
        return cls(Mode.HOLDING, Reason.STARTUP, 0, 0.0)


@dataclass(frozen=True)
class Transition:
    step: int
    time_s: float
    before: Mode
    after: Mode
    reason: Reason
    latched: bool = False

    def __str__(self) -> str:
        latched = " (latched)" if self.latched else ""
        return f"step {self.step} ({self.time_s:.3f} s): {self.before} -> {self.after}: {self.reason}{latched}"


def faults(inputs: WatchdogInputs, config: WatchdogConfig) -> tuple[Reason, ...]:
    """Every input fault present now, highest priority first (interventions are judged by ``update``)."""
    found: list[Reason] = []
    if not inputs.worker_alive:
        found.append(Reason.WORKER_DEAD)
    if inputs.worker_silent_s > config.worker_timeout_s:
        found.append(Reason.WORKER_HUNG)
    if not inputs.observation_age_s <= config.observation_max_age_s:  # NaN counts as stale
        found.append(Reason.STALE_OBSERVATION)
    late = math.isfinite(inputs.chunk_age_s) and inputs.chunk_age_s > config.chunk_deadline_s
    if late or math.isnan(inputs.chunk_age_s):
        found.append(Reason.CHUNK_LATE)
    elif not inputs.target_available:
        found.append(Reason.QUEUE_EMPTY)
    return tuple(found)


def update_watchdog(
    state: WatchdogState, inputs: WatchdogInputs, config: WatchdogConfig
) -> tuple[WatchdogState, Transition | None]:
    """One control step of the state machine: (new state, the transition taken or None)."""
    present = faults(inputs, config)

    def move(mode: Mode, reason: Reason, **changes: object) -> tuple[WatchdogState, Transition]:
        new = WatchdogState(
            mode=mode,
            reason=reason,
            since_step=inputs.step,
            since_time_s=inputs.time_s,
            recent=changes.get("recent", ()),  # type: ignore[arg-type]
            clear_steps=0,
            trips=changes.get("trips", state.trips),  # type: ignore[arg-type]
            latched=changes.get("latched", state.latched),  # type: ignore[arg-type]
        )
        return new, Transition(inputs.step, inputs.time_s, state.mode, mode, reason, new.latched)

    if state.mode is Mode.RUNNING:
        if inputs.finish:
            return move(Mode.STOPPING, Reason.END_OF_RUN)
        recent = (*state.recent, inputs.intervened)[-config.intervention_window_steps :]
        reason = present[0] if present else (Reason.INTERVENTIONS if sum(recent) >= config.max_interventions else None)
        if reason is None:
            return WatchdogState(Mode.RUNNING, state.reason, state.since_step, state.since_time_s, recent, 0, state.trips), None
        trips = state.trips + 1
        return move(Mode.STOPPING, reason, trips=trips, latched=trips >= config.latch_after_trips)

    if state.mode is Mode.STOPPING:
        if inputs.at_rest:
            return move(Mode.HOLDING, state.reason)
        return state, None

    # HOLDING
    if inputs.finish or state.latched:
        return state, None
    held_s = inputs.time_s - state.since_time_s
    waited = state.reason is Reason.STARTUP or held_s >= config.min_hold_s - 1e-9
    clear = not present and inputs.target_available and inputs.at_rest and waited
    clear_steps = state.clear_steps + 1 if clear else 0
    if clear_steps >= config.recover_steps:
        return move(Mode.RUNNING, Reason.STARTED if state.reason is Reason.STARTUP else Reason.RECOVERED)
    if clear_steps == state.clear_steps:
        return state, None
    return WatchdogState(
        state.mode, state.reason, state.since_step, state.since_time_s, (), clear_steps, state.trips, state.latched
    ), None
