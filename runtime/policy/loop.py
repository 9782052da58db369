"""The policy control loop: chunks in, a guarded 1 kHz joint command stream out.

Per control step (10 Hz by default): observe the plant; take the inference result that became
usable (checked, anchored to the q of its observation, elapsed actions dropped: chunks.py); submit
the new observation if the worker is idle; ask the watchdog; while RUNNING, the ensembled target
of the step, blended in after a (re)start, goes through guard_target and is ramped over the step's
ticks (interpolate.py); every tick goes through limit_tick - also while STOPPING/HOLDING, with
target None - and then to ``plant.apply_command``. Inference never blocks the loop (worker.py).

The loop runs on simulated time (as fast as it computes; inference latency measured or fixed, see
worker.py) or on wall-clock time. On wall-clock time the 1 kHz ticks are decoupled from the 10 Hz
planning, as a robot's realtime interface is: a tick thread (ticker.py) sends one queued command
per 1 ms slot and records its lateness, while the loop's thread observes each step ``plan_lead_s``
ahead of its first slot, plans it (the same code as on simulated time), runs the step's
limit_tick chain ahead (a pure function of the references) and queues the commands; then it hands
the observation to the inference worker. If the planning falls behind the lead, the tick thread
holds toward the last reference instead of skipping a slot (counted as held ticks). The command
stream is then what the sim loop would compute for the same observations and inference results.
It records the full command stream (``RunResult.stream()`` is what stream_check.save_stream writes and
check_stream replays), per-tick flags, per-step targets and flags, watchdog transitions and each
inference's latency and fate. A run always ends with a stop to rest.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from edgeperc.runtime.policy.chunks import (
    Chunk,
    ChunkQueue,
    ChunkVerdict,
    absolute_targets,
    check_actions,
    make_chunk,
)
from edgeperc.runtime.policy.guard import (
    Flag,
    GuardedTarget,
    LimiterState,
    guard_target,
    limit_tick,
)
from edgeperc.runtime.policy.interpolate import (
    RampShape,
    blend_fraction,
    ramp,
    ramp_fractions,
)
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS, PandaLimits
from edgeperc.runtime.policy.native_ticker import NativeTicker
from edgeperc.runtime.policy.plants import Plant, PlantObservation
from edgeperc.runtime.policy.policies import Policy, PolicyInput
from edgeperc.runtime.policy.stream_check import CommandStream
from edgeperc.runtime.policy.ticker import Row, Ticker
from edgeperc.runtime.policy.watchdog import (
    Mode,
    Reason,
    Transition,
    WatchdogConfig,
    WatchdogInputs,
    WatchdogState,
    faults,
    update_watchdog,
)
from edgeperc.runtime.policy.worker import InferenceWorker, Job, Result, Timing
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgeperc.errors import (
    BackendUnavailableError,
    ConfigError,
    EdgepercError,
    InvalidInputError,
)
from edgeperc.targets import format_validation_error

TickSender = Literal["python", "native"]
ACTION_DIM = N_JOINTS + 1  # 7 joint deltas (rad) + gripper width (m)


class PolicyRuntimeConfig(BaseModel):
    """How the loop runs a policy. Times in seconds; steps are control steps (1 / control_hz)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    control_hz: float = Field(10.0, gt=0.0, le=1000.0, description="policy rate; must divide 1000 Hz")
    chunk_length: int = Field(16, ge=1, le=128, description="actions per chunk the policy returns")
    action_dim: int = Field(ACTION_DIM, description="7 joint deltas + gripper width: must be 8")
    past_steps: int = Field(2, ge=1, le=64, description="K executed actions fed back to the policy")
    replan_every_steps: int = Field(
        1, ge=1, le=64,
        description="submit a new observation once the newest chunk is this many steps old (Diffusion Policy's "
        "n_action_steps): 1 = every step, ensembling overlapping chunks; 8 = execute half a 16-step chunk open loop",
    )
    ensemble_tau_steps: float = Field(
        2.0, ge=0.0, le=100.0, description="older chunks' weight exp(-age/tau); 0 = newest chunk only"
    )
    interpolation: RampShape = "linear"
    velocity_feedforward: bool = Field(
        True, description="feed each ramp's slope to the limiter, so it tracks a moving target without lag"
    )
    blend_steps: int = Field(
        0, ge=0, le=100, description="least steps over which targets blend in after a (re)start"
    )
    blend_speed_rad_s: float | None = Field(
        0.25, gt=0.0, le=2.0,
        description="blend over more steps if needed so the gap to the hold pose closes no faster than this; "
        "None = no blending",
    )
    gripper_speed_m_s: float = Field(0.1, gt=0.0, le=1.0, description="largest width change per second")
    timing: Timing = "sim"
    sim_latency_s: float | None = Field(
        None, ge=0.0, le=10.0, description="sim timing: fixed inference latency; None = measured wall time"
    )
    latency_scale: float = Field(1.0, gt=0.0, le=1000.0, description="sim timing: measured latency x this")
    stop_timeout_s: float = Field(5.0, gt=0.0, le=60.0, description="longest end-of-run stop")
    spin_s: float = Field(2e-4, ge=0.0, le=0.01, description="wall timing: busy-wait this long before each tick")
    plan_lead_s: float = Field(
        0.01, ge=0.0, le=0.1, description="wall timing: observe and plan each step this long before its first tick"
    )
    worker_nice: int = Field(
        5, ge=0, le=19, description="wall timing (Linux): nice increment of the inference thread, below the ticks"
    )
    tick_priority: int | None = Field(
        None, ge=1, le=99, description="wall timing (Linux): SCHED_FIFO priority of the tick thread; None = normal"
    )
    tick_cpu: int | None = Field(
        None, ge=0, le=1023,
        description="wall timing, native sender (Linux): pin the tick thread to this CPU and the rest of the process "
        "(planner, inference) to the others; None = no pinning",
    )
    lock_memory: bool = Field(False, description="wall timing, native sender: mlockall, no page faults on the tick path")
    tick_sender: TickSender = Field(
        "python",
        description="wall timing: the 1 kHz sender - 'python' (a Python thread) or 'native' (the C++ thread of "
        "libedgeperc_joint_stream.so, outside the GIL; build it with cmake)",
    )
    watchdog: WatchdogConfig = WatchdogConfig()

    @model_validator(mode="after")
    def _check(self) -> PolicyRuntimeConfig:
        problems: list[str] = []
        ticks = 1.0 / (self.control_hz * DT_S)
        if abs(ticks - round(ticks)) > 1e-9:
            problems.append(
                f"control_hz: must divide the 1000 Hz command rate (e.g. 5, 10, 20, 50); got {self.control_hz:g}"
            )
        if self.action_dim != ACTION_DIM:
            problems.append(f"action_dim: must be {ACTION_DIM} (7 joint deltas + gripper width); got {self.action_dim}")
        period = 1.0 / self.control_hz
        if self.plan_lead_s >= period - 1e-12:
            problems.append(f"plan_lead_s: must be shorter than the control period {period:g} s; got {self.plan_lead_s:g}")
        deadline = self.watchdog.chunk_deadline_s + (self.replan_every_steps - 1) * period
        low, high = 2 * period, (self.chunk_length - 1) * period
        if not low - 1e-12 <= deadline <= high + 1e-12:
            problems.append(
                f"watchdog.chunk_deadline_s: a chunk is at least one step old when used and has no action left "
                f"after chunk_length - 1 steps; allowed: {low:g} <= chunk_deadline_s + (replan_every_steps - 1) "
                f"x period <= {high:g} (got {deadline:g})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_hz

    @property
    def ticks_per_step(self) -> int:
        return round(1.0 / (self.control_hz * DT_S))


def validate_runtime_config(data: object, label: str = "<dict>") -> PolicyRuntimeConfig:
    """A mapping of fields -> PolicyRuntimeConfig; any problem is one ConfigError line naming the field."""
    if isinstance(data, PolicyRuntimeConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"policy runtime config {label}: must be a mapping of fields (got {type(data).__name__})")
    try:
        return PolicyRuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid policy runtime config {label}: {format_validation_error(exc, PolicyRuntimeConfig)}") from exc


# Limiter flags that mean a cap was reached (STOPPING is a request, not an intervention).
LIMITING_FLAGS = frozenset(
    {Flag.VELOCITY_LIMITED, Flag.ACCELERATION_LIMITED, Flag.JERK_LIMITED, Flag.POSITION_BRAKING,
     Flag.POSITION_CLIPPED, Flag.NON_FINITE_TARGET, Flag.INTERNAL_ERROR}
)
FLAG_ORDER = tuple(Flag)
_FLAG_BIT = {flag: 1 << i for i, flag in enumerate(FLAG_ORDER)}
_LIMITING_MASK = sum(_FLAG_BIT[f] for f in LIMITING_FLAGS)
_SATURATED_MASK = _FLAG_BIT[Flag.ACCELERATION_LIMITED] | _FLAG_BIT[Flag.JERK_LIMITED]
_REFUSED = (ChunkVerdict.NON_FINITE, ChunkVerdict.MALFORMED)
# Guard flags that are logged but do not count toward the watchdog's intervention trip: a width a
# hair outside the hand's 0-8 cm range (a regressed "fully open" of 8.01 cm) is clamped harmlessly,
# and tripping the arm to a stop on it would make every learned policy unusable.
GRIPPER_ONLY_FLAGS = frozenset({Flag.GRIPPER_WIDTH_CLAMPED, Flag.GRIPPER_FORCE_CLAMPED})


@dataclass(frozen=True)
class ChunkRecord:
    """One inference: its observation step, the step it became usable, wall time of the call, the
    latency on the loop's clock, what became of it, and how many actions were dropped as elapsed."""

    obs_step: int
    arrival_step: int
    inference_ms: float
    latency_s: float
    verdict: ChunkVerdict
    dropped: int
    error: str | None = None


@dataclass(frozen=True)
class TickTiming:
    """Wall-clock runs only: each tick's lateness against its 1 ms slot (when its command went to
    the plant, from the ticker thread), and per-step planning work (off the tick path)."""

    lateness_s: np.ndarray  # (T,)
    step_work_s: np.ndarray  # (S,) observe + results + submit + watchdog + guard + ramp, on the planner thread
    misses: int  # ticks late by a whole period or more (the slot was lost)
    held: int = 0  # ticks the ticker sent holding the last reference because the planner was behind
    held_ticks: np.ndarray | None = None  # (T,) bool: which ticks those were

    def control_steps(self, ticks_per_step: int, period_s: float) -> ControlStepTiming:
        """The control loop's own view of this run (see control_step_timing)."""
        held = self.held_ticks if self.held_ticks is not None else np.zeros(len(self.lateness_s), bool)
        return control_step_timing(self.lateness_s, held, ticks_per_step, period_s)


@dataclass(frozen=True)
class ControlStepTiming:
    """Per control step (10 Hz): ``lateness_s`` of its first command, ``missed`` its deadline."""

    lateness_s: np.ndarray  # (S,)
    missed: np.ndarray  # (S,) bool


def control_step_timing(lateness_s: np.ndarray, held: np.ndarray, ticks_per_step: int,
                        period_s: float) -> ControlStepTiming:
    """The control loop's view of a wall-clock run, from its 1 kHz ticks: a step's lateness is its
    first command's (when the step's new target started to reach the arm, against its slot); a
    step missed its deadline when its planned rows were not queued in time (a held tick inside it:
    the tick thread had to make that command itself) or its first command went out a whole
    control period late. A last, partial step counts with the ticks it has."""
    late = np.asarray(lateness_s, np.float64)
    held = np.asarray(held, bool)
    if late.shape != held.shape or late.ndim != 1:
        raise InvalidInputError(f"lateness {late.shape} and held {held.shape} must be the same 1-D length")
    if ticks_per_step < 1 or not period_s > 0:
        raise ConfigError(f"ticks_per_step {ticks_per_step} and period_s {period_s} must be positive")
    steps = -(-late.size // ticks_per_step)
    first = late[::ticks_per_step]
    padded = np.zeros(steps * ticks_per_step, bool)
    padded[: held.size] = held
    missed = padded.reshape(steps, ticks_per_step).any(axis=1) | (first >= period_s)
    return ControlStepTiming(first, missed)


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced. Shapes: T ticks, S control steps (the end-of-run stop included)."""

    config: PolicyRuntimeConfig
    q_start: np.ndarray  # (7,) measured q before tick 0
    q_c: np.ndarray  # (T, 7) commanded joints, one row per 1 ms tick
    gripper_c: np.ndarray  # (T,) commanded width, m
    tick_flags: np.ndarray  # (T,) uint32, bit i = FLAG_ORDER[i]
    modes: tuple[Mode, ...]  # (S,) watchdog mode during each step
    step_faults: tuple[tuple[Reason, ...], ...]  # (S,) watchdog input faults present at each step
    targets: np.ndarray  # (S, 8) guarded target of each step (joints, width); NaN when not RUNNING
    step_flags: tuple[tuple[Flag, ...], ...]  # (S,) guard_target flags of each step
    intervened: np.ndarray  # (S,) bool, the step counted as a guard intervention
    q_measured: np.ndarray  # (S, 7) q observed at the start of each step
    transitions: tuple[Transition, ...]
    chunks: tuple[ChunkRecord, ...]
    steps_requested: int
    final: LimiterState
    worker_error: str | None = None
    timing: TickTiming | None = None

    def stream(self) -> CommandStream:
        """The command stream for stream_check (check / save_stream); starts at rest at q_start."""
        return CommandStream(q_c=self.q_c, q_start=self.q_start)

    def flag_counts(self) -> dict[str, int]:
        """{flag name: ticks raising it} over the 1 kHz stream, plus guard_target flags per step."""
        counts: Counter[str] = Counter()
        for i, flag in enumerate(FLAG_ORDER):
            ticks = int(np.count_nonzero(self.tick_flags & (1 << i)))
            if ticks:
                counts[flag.value] += ticks
        for flags in self.step_flags:
            counts.update(f.value for f in flags)
        return dict(counts)

    def stop_reasons(self) -> list[Reason]:
        """Reasons of every RUNNING -> STOPPING transition, in order."""
        return [t.reason for t in self.transitions if t.after is Mode.STOPPING]

    def verdicts(self) -> dict[str, int]:
        return dict(Counter(c.verdict.value for c in self.chunks))

    @property
    def final_mode(self) -> Mode:
        return self.modes[-1]

    @property
    def ended_at_rest(self) -> bool:
        return self.final.at_rest_now()


def _observe(plant: Plant) -> tuple[PlantObservation, bool]:
    """The plant's observation and whether q, width and time are usable."""
    obs = PlantObservation(*plant.observe())
    q = np.asarray(obs.q_rad, dtype=np.float64)
    ok = q.shape == (N_JOINTS,) and bool(np.isfinite(q).all()) and math.isfinite(obs.gripper_width_m) and math.isfinite(obs.time_s)
    return PlantObservation(q, float(obs.gripper_width_m), obs.image, float(obs.time_s)), ok


def _mask(flags: tuple[Flag, ...]) -> int:
    mask = 0
    for flag in flags:
        mask |= _FLAG_BIT[flag]
    return mask


def _tracking_error(command: np.ndarray, ref: np.ndarray) -> float:
    """Largest joint distance (rad) between a tick's command and the reference it tracked."""
    return float(np.abs(command - ref).max())


def _keep_off_tick_cpu(tick_cpu: int | None) -> set[int] | None:
    """Pin the calling thread (and the threads it starts) to every allowed CPU but ``tick_cpu``;
    returns the CPUs to restore, None when nothing changed. ConfigError when that leaves none."""
    if tick_cpu is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError(f"tick_cpu: CPU pinning is Linux-only (this is {sys.platform}); set tick_cpu: null")
    allowed = os.sched_getaffinity(0)
    if tick_cpu not in allowed:
        raise ConfigError(f"tick_cpu: CPU {tick_cpu} is not one this process may use ({sorted(allowed)})")
    others = allowed - {tick_cpu}
    if not others:
        raise ConfigError(f"tick_cpu: pinning the ticks to CPU {tick_cpu} leaves no CPU for planning and inference")
    os.sched_setaffinity(0, others)
    return allowed


def _freeze_gc() -> bool:
    """Wall timing: move everything alive now out of the collector's reach (gc.freeze), so that a
    full collection during the run only walks what the run allocated. True if it froze."""
    if not gc.isenabled():
        return False
    gc.collect()
    gc.freeze()
    return True


def _unfreeze_gc(frozen: bool) -> None:
    if frozen:
        gc.unfreeze()


def _no_pause(need_s: float = 0.0) -> None:
    return None


# Wall timing: a piece of planning that may hold the GIL most of a period (guard_target, the
# watchdog, submitting with the policy's preprocessing) waits to start right after a tick.
_BIG_PIECE_S = 1e-3


class _Planner:
    """One run's state between steps and the 10 Hz side of a step, shared by both timings:
    ``begin_step`` (observation in -> watchdog -> guarded target ramped over the step's ticks) and
    ``end_step`` (what the step's ticks did -> executed action, intervention, done?). The caller
    runs the ticks in between and leaves ``state``/``width_cmd`` after the step's last tick."""

    def __init__(
        self, loop: ControlLoop, steps: int, first: PlantObservation, width: float, past: np.ndarray, worker: InferenceWorker
    ):
        cfg = loop.config
        self.loop, self.cfg, self.limits, self.worker = loop, cfg, loop.limits, worker
        self.steps, self.first = steps, first
        self.period = cfg.period_s
        self.last_step = steps + math.ceil(cfg.stop_timeout_s / self.period)
        q_start = first.q_rad.copy()
        self.state = LimiterState.at_rest(q_start)
        self.width_cmd = width
        self.past = past
        self.fractions = ramp_fractions(cfg.ticks_per_step, cfg.interpolation)
        self.w_step_max = cfg.gripper_speed_m_s * self.period
        self.watchdog = WatchdogState.start()
        self.chunk_queue = ChunkQueue()
        self.newest_obs_step: int | None = None
        self.guarded = GuardedTarget.hold(q_start, self.width_cmd)
        self.hold_q, self.hold_w = q_start, self.width_cmd
        self.ref_q, self.ref_w = q_start, self.width_cmd
        self.ref_v: np.ndarray | None = None  # (ticks, 7) the ramp's slope per tick, fed forward
        self.running_steps = 0
        self.intervened_prev = False
        self.executed = q_start
        self.offset = np.zeros(ACTION_DIM)
        self.blend_steps = cfg.blend_steps
        self.worker_error: str | None = None
        self.running = False
        self.refused_now = False
        self.flags: tuple[Flag, ...] = ()
        self.finishing = False
        self.job: Job | None = None
        self.modes: list[Mode] = []
        self.step_faults: list[tuple[Reason, ...]] = []
        self.targets: list[np.ndarray] = []
        self.step_flags: list[tuple[Flag, ...]] = []
        self.intervened: list[bool] = []
        self.q_measured: list[np.ndarray] = []
        self.transitions: list[Transition] = []
        self.records: list[ChunkRecord] = []

    def begin_step(
        self, s: int, obs: PlantObservation, ok: bool, pause: Callable[[float], None] = _no_pause
    ) -> tuple[bool, np.ndarray | None, np.ndarray | None]:
        """Step ``s`` with its observation: (running, (T, 7) joint references, (T,) widths).
        ``pause(need_s)`` is called between pieces of work (a wall-clock run's ticker.quiet)."""
        cfg, worker, period = self.cfg, self.worker, self.period
        now = self.first.time_s + s * period  # the loop's clock runs on the plant's, from its first observation
        obs_age = now - obs.time_s if ok else math.inf
        q_measured = self.q_measured
        q_measured.append(obs.q_rad if ok else np.full(N_JOINTS, np.nan))
        past = self.past
        if s:  # the action executed in step s - 1, as the policy was trained to see it
            past = np.roll(past, -1, axis=0)
            past[-1, :N_JOINTS] = self.executed - q_measured[-2] if np.isfinite(q_measured[-2]).all() else 0.0
            past[-1, -1] = self.width_cmd
            self.past = past

        result, silent_s = worker.poll(s)
        self.refused_now = False
        if result is not None:
            record, chunk = self.loop._take(result)
            self.records.append(record)
            self.worker_error = self.worker_error or record.error
            self.refused_now = record.verdict in _REFUSED
            if chunk is not None:
                self.chunk_queue = self.chunk_queue.add(chunk)
                newest = self.newest_obs_step
                self.newest_obs_step = max(chunk.obs_step, newest if newest is not None else chunk.obs_step)
        self.chunk_queue = self.chunk_queue.prune(s)
        self.finishing = finishing = s >= self.steps
        self.job = None
        newest = self.newest_obs_step
        due = newest is None or s - newest >= cfg.replan_every_steps
        if due and worker.idle and ok and obs_age <= cfg.watchdog.observation_max_age_s and not finishing:
            self.job = Job(s, obs.time_s, obs.q_rad.copy(), PolicyInput(s, obs.time_s, obs.q_rad.copy(), obs.gripper_width_m, obs.image, past.copy()))

        pause(_BIG_PIECE_S)
        state = self.state
        target = self.chunk_queue.target_at(s, cfg.ensemble_tau_steps)
        inputs = WatchdogInputs(
            step=s,
            time_s=now,
            # age beyond the planned replanning interval: the deadline is on lateness, not on the plan
            chunk_age_s=math.inf if newest is None else max(s - newest - (cfg.replan_every_steps - 1), 0) * period,
            target_available=target is not None,
            worker_alive=worker.alive,
            worker_silent_s=silent_s,
            observation_age_s=obs_age,
            intervened=self.intervened_prev,
            at_rest=state.at_rest_now(),
            finish=finishing,
        )
        self.watchdog, transition = update_watchdog(self.watchdog, inputs, cfg.watchdog)
        self.step_faults.append(faults(inputs, cfg.watchdog))
        if transition is not None:
            self.transitions.append(transition)
            if transition.after is Mode.RUNNING:
                self.running_steps = 0
                self.hold_q, self.hold_w = state.q, self.width_cmd
                self.ref_q, self.ref_w = state.q, self.width_cmd
                self.guarded = GuardedTarget.hold(state.q, self.width_cmd)
        self.running = running = self.watchdog.mode is Mode.RUNNING
        self.modes.append(self.watchdog.mode)

        flags: tuple[Flag, ...] = ()
        refs = w_refs = self.ref_v = None
        if running:
            assert target is not None  # the watchdog stops on an empty queue
            if self.running_steps == 0:  # the gap between the hold pose and the policy, faded out
                self.offset = np.append(self.hold_q, self.hold_w) - target
                if cfg.blend_speed_rad_s is None:
                    self.blend_steps = 0
                else:  # the first blended step moves 1 / (n + 1) of the gap
                    gap_steps = float(np.abs(self.offset[:N_JOINTS]).max()) / (cfg.blend_speed_rad_s * period)
                    self.blend_steps = max(cfg.blend_steps, math.ceil(gap_steps - 1 - 1e-9))
            offset = self.offset
            keep = 1.0 - blend_fraction(self.running_steps, self.blend_steps)
            q_goal = target[:N_JOINTS] + keep * offset[:N_JOINTS]
            w_goal = float(target[N_JOINTS] + keep * offset[N_JOINTS])
            w_goal = min(max(w_goal, self.ref_w - self.w_step_max), self.ref_w + self.w_step_max)
            pause(_BIG_PIECE_S)
            self.guarded, flags = guard_target(q_goal, self.guarded, state.q, self.limits, gripper_width_m=w_goal)
            guarded = self.guarded
            pause(_BIG_PIECE_S)
            refs = ramp(self.ref_q, guarded.q_rad, self.fractions)
            if cfg.velocity_feedforward:
                self.ref_v = np.diff(refs, axis=0, prepend=self.ref_q[None]) / DT_S
            w_refs = ramp(np.array([self.ref_w]), np.array([guarded.gripper_width_m]), self.fractions)[:, 0]
            self.ref_q, self.ref_w = guarded.q_rad, guarded.gripper_width_m
            self.running_steps += 1
            self.targets.append(np.append(guarded.q_rad, guarded.gripper_width_m))
        else:
            self.targets.append(np.full(ACTION_DIM, np.nan))
        self.step_flags.append(flags)
        self.flags = flags
        return running, refs, w_refs

    def submit(self) -> None:
        """Hand the step's observation to the inference worker, if it took one (begin_step decided)."""
        if self.job is not None:
            self.worker.submit(self.job)
            self.job = None

    def end_step(self, masks: np.ndarray, errors: np.ndarray) -> bool:
        """After the step's ticks (their flag bits ``masks``, each command's distance from its
        reference ``errors``; ``state`` after the last): True when the run is over (finishing, held,
        at rest)."""
        running = self.running
        self.executed = self.guarded.q_rad if running else self.state.q
        dog = self.cfg.watchdog
        at_cap = (masks & _LIMITING_MASK) != 0
        capped = int(np.count_nonzero(at_cap & (errors > dog.tracking_tolerance_rad)))
        saturated = int(np.count_nonzero(masks & _SATURATED_MASK)) >= dog.saturated_share_per_intervention * len(masks)
        arm_flags = set(self.flags) - GRIPPER_ONLY_FLAGS
        self.intervened_prev = running and (
            bool(arm_flags) or self.refused_now or capped >= dog.limiter_ticks_per_intervention or saturated
        )
        self.intervened.append(self.intervened_prev)
        return self.finishing and self.watchdog.mode is Mode.HOLDING and self.state.at_rest_now()


class ControlLoop:
    """Drives ``plant`` with chunks from ``policy`` under ``limits``; ``run(steps)`` -> RunResult.

    Construction validates the config (ConfigError); ``run`` refuses, before any motion, a plant
    whose first observation is unusable (InvalidInputError) and a policy whose warm-up chunk is not
    (chunk_length, action_dim) (ConfigError). The warm-up call also takes the cold-start latency
    out of the loop (LeRobot PR #4454: cold start inflated the delay estimate).
    """

    def __init__(self, policy: Policy, plant: Plant, limits: PandaLimits, config: PolicyRuntimeConfig | dict[str, Any] | None = None):
        self.policy = policy
        self.plant = plant
        self.limits = limits
        self.config = validate_runtime_config({} if config is None else config)

    def _warm_up(self, first: PolicyInput) -> None:
        cfg = self.config
        try:
            output = self.policy.infer(first)
        except EdgepercError:
            raise
        except Exception as exc:
            raise ConfigError(f"policy warm-up call failed before the loop started: {type(exc).__name__}: {exc}") from exc
        _, verdict = check_actions(output, cfg.chunk_length, cfg.action_dim)
        if verdict is ChunkVerdict.MALFORMED:
            raise ConfigError(
                f"policy returns chunks of shape {np.shape(output)}; the runtime is configured for "
                f"(chunk_length, action_dim) = ({cfg.chunk_length}, {cfg.action_dim})"
            )

    def run(self, steps: int) -> RunResult:
        """Run ``steps`` control steps, then stop to rest (at most stop_timeout_s more)."""
        if steps < 0:
            raise InvalidInputError(f"steps must be >= 0, got {steps}")
        cfg, limits, plant = self.config, self.limits, self.plant
        first, ok = _observe(plant)
        if not ok:
            raise InvalidInputError(f"the plant's first observation is unusable: q {first.q_rad!r}, width {first.gripper_width_m!r}, t {first.time_s!r}")
        q_start = first.q_rad.copy()
        width = float(np.clip(first.gripper_width_m, limits.gripper_width_min_m, limits.gripper_width_max_m))
        past = np.zeros((cfg.past_steps, cfg.action_dim), np.float32)
        past[:, -1] = width
        self._warm_up(PolicyInput(0, first.time_s, q_start.copy(), first.gripper_width_m, first.image, past.copy()))

        # Pinned before the worker starts: its thread inherits this thread's CPUs (the tick's excluded).
        restore = _keep_off_tick_cpu(cfg.tick_cpu) if cfg.timing == "wall" and cfg.tick_sender == "native" else None
        try:
            worker = InferenceWorker(self.policy, cfg.period_s, cfg.timing, cfg.sim_latency_s, cfg.latency_scale,
                                     nice=cfg.worker_nice if cfg.timing == "wall" else 0)
            plan = _Planner(self, steps, first, width, past, worker)
            try:
                if cfg.timing == "wall":
                    ticks, timing = self._run_wall(plan)
                else:
                    ticks, timing = self._run_sim(plan), None
            finally:
                worker.close()
        finally:
            if restore is not None:
                os.sched_setaffinity(0, restore)
        q_c, gripper_c, tick_flags = ticks
        return RunResult(
            config=cfg,
            q_start=q_start,
            q_c=q_c,
            gripper_c=gripper_c,
            tick_flags=tick_flags,
            modes=tuple(plan.modes),
            step_faults=tuple(plan.step_faults),
            targets=np.array(plan.targets).reshape(-1, ACTION_DIM),
            step_flags=tuple(plan.step_flags),
            intervened=np.array(plan.intervened, dtype=bool),
            q_measured=np.array(plan.q_measured).reshape(-1, N_JOINTS),
            transitions=tuple(plan.transitions),
            chunks=tuple(plan.records),
            steps_requested=steps,
            final=plan.state,
            worker_error=plan.worker_error,
            timing=timing,
        )

    def _run_sim(self, plan: _Planner) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simulated time: each step planned, then its ticks computed and applied, as fast as it runs."""
        limits, plant, n_ticks = self.limits, self.plant, self.config.ticks_per_step
        commands: list[np.ndarray] = []
        widths: list[np.ndarray] = []
        tick_masks: list[np.ndarray] = []
        for s in range(plan.last_step + 1):
            obs, ok = _observe(plant) if s else (plan.first, True)
            running, refs, w_refs = plan.begin_step(s, obs, ok)
            plan.submit()
            rows = np.empty((n_ticks, N_JOINTS))
            w_rows = np.empty(n_ticks)
            masks = np.zeros(n_ticks, np.uint32)
            errors = np.zeros(n_ticks)
            state, width_cmd, ref_v = plan.state, plan.width_cmd, plan.ref_v
            for k in range(n_ticks):
                command, state, tick = limit_tick(state, refs[k] if running else None, limits,
                                                  None if ref_v is None else ref_v[k])
                if running:
                    width_cmd = float(w_refs[k])
                plant.apply_command(command, width_cmd)
                rows[k] = command
                w_rows[k] = width_cmd
                if tick:
                    masks[k] = _mask(tick)
                    if running:
                        errors[k] = _tracking_error(command, refs[k])
            plan.state, plan.width_cmd = state, width_cmd
            commands.append(rows)
            widths.append(w_rows)
            tick_masks.append(masks)
            if plan.end_step(masks, errors):
                break
        return (np.concatenate(commands) if commands else np.zeros((0, N_JOINTS)),
                np.concatenate(widths) if widths else np.zeros(0),
                np.concatenate(tick_masks) if tick_masks else np.zeros(0, np.uint32))

    def _run_wall(self, plan: _Planner) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], TickTiming]:
        """Wall-clock time. This thread plans: step s is observed ``plan_lead_s`` before its first
        slot, planned, and its ticks computed and queued ahead; then the step's observation goes to
        the inference worker (so inference does not compete with the planning for a core). The
        Ticker thread sends one queued command per 1 ms slot (ticker.py)."""
        cfg, limits, plant, n_ticks = self.config, self.limits, self.plant, self.config.ticks_per_step
        lead = round(cfg.plan_lead_s / DT_S)
        # A plant is called from two threads here: apply_command on the ticker's, observe on this
        # one. Unless it says it allows that (``thread_safe = True``), the two are serialised.
        plant_lock = None if getattr(plant, "thread_safe", False) else threading.Lock()
        observe_lock: AbstractContextManager = plant_lock if plant_lock is not None else nullcontext()
        max_ticks = (plan.last_step + 1) * n_ticks
        ticker: Ticker | NativeTicker
        if cfg.tick_sender == "native":
            try:
                ticker = NativeTicker(plant, limits, plan.state, plan.width_cmd, max_ticks, _FLAG_BIT, cfg.spin_s,
                                      cfg.tick_priority, cfg.tick_cpu, cfg.lock_memory)
            except BackendUnavailableError as exc:
                raise ConfigError(f"tick_sender: native: {exc}") from exc
        else:
            ticker = Ticker(plant, limits, plan.state, plan.width_cmd, max_ticks, _FLAG_BIT, cfg.spin_s, plant_lock,
                            cfg.tick_priority)
        work: list[float] = []
        frozen = _freeze_gc()
        try:
            try:
                ticker.start(max(lead, 1) * DT_S)
            except OSError as exc:
                if cfg.tick_sender == "native" and not isinstance(exc, PermissionError):
                    raise ConfigError(f"tick_cpu: {exc}") from exc
                raise ConfigError(
                    f"tick_priority/lock_memory: cannot run the tick thread at SCHED_FIFO priority {cfg.tick_priority} "
                    f"(lock_memory {cfg.lock_memory}) ({exc}); "
                    f"it needs CAP_SYS_NICE or an rtprio limit (e.g. /etc/security/limits.conf), or set tick_priority: null"
                ) from exc
            for s in range(plan.last_step + 1):
                if s:
                    ticker.wait_sent(s * n_ticks - lead)
                    ticker.quiet(_BIG_PIECE_S)
                begin = time.perf_counter()
                if s:
                    if isinstance(ticker, NativeTicker):
                        ticker.sync_plant()  # the commands sent so far reach the plant, in order
                    with observe_lock:
                        obs, ok = _observe(plant)
                else:
                    obs, ok = plan.first, True
                running, refs, w_refs = plan.begin_step(s, obs, ok, ticker.quiet)
                work.append(time.perf_counter() - begin)
                masks = np.zeros(n_ticks, np.uint32)
                errors = np.zeros(n_ticks)
                state, width_cmd, ref_v = plan.state, plan.width_cmd, plan.ref_v
                for k in range(n_ticks):
                    index = s * n_ticks + k
                    row = ticker.taken_over(index)
                    if row is None:
                        ticker.quiet()
                        ref = refs[k] if running else None  # type: ignore[index]
                        velocity = None if ref_v is None or not running else ref_v[k]
                        command, new_state, tick = limit_tick(state, ref, limits, velocity)
                        width = float(w_refs[k]) if running else width_cmd  # type: ignore[index]
                        row = Row(index, command, width, new_state, ref, _mask(tick) if tick else 0)
                        if not ticker.push(row):  # the ticker held this tick meanwhile: its row stands
                            row = ticker.taken_over(index)
                            assert row is not None
                    state, width_cmd = row.state, row.width
                    masks[k] = row.mask
                    if row.mask and row.ref is not None:
                        errors[k] = _tracking_error(row.command, row.ref)
                plan.state, plan.width_cmd = state, width_cmd
                ticker.quiet(_BIG_PIECE_S)
                plan.submit()  # now: inference then runs while this thread sleeps, not beside its planning
                if plan.end_step(masks, errors):
                    break
            ticker.finish(timeout_s=(plan.last_step + 2) * cfg.period_s)
        except BaseException:
            ticker.stop()
            raise
        finally:
            _unfreeze_gc(frozen)
        sent = ticker.sent
        plan.state = ticker.last_state
        late = ticker.lateness[:sent].copy()
        held = ticker.held[:sent].astype(bool)
        timing = TickTiming(late, np.array(work), int(np.count_nonzero(late >= DT_S)), int(np.count_nonzero(held)), held)
        return (ticker.q_c[:sent].copy(), ticker.widths[:sent].copy(), ticker.masks[:sent].copy()), timing

    def _take(self, result: Result) -> tuple[ChunkRecord, Chunk | None]:
        """Check one inference result: (its record, the Chunk to queue or None)."""
        cfg = self.config
        job = result.job
        dropped = result.arrival_step - job.obs_step

        def record(verdict: ChunkVerdict, error: str | None = None) -> ChunkRecord:
            return ChunkRecord(job.obs_step, result.arrival_step, result.inference_s * 1e3, result.latency_s, verdict, dropped, error)

        if result.error is not None:
            return record(ChunkVerdict.WORKER_ERROR, result.error), None
        actions, verdict = check_actions(result.output, cfg.chunk_length, cfg.action_dim)
        if actions is None:
            return record(verdict), None
        chunk = None
        if dropped * cfg.period_s <= cfg.watchdog.chunk_deadline_s + 1e-9:
            chunk = make_chunk(absolute_targets(actions, job.q_obs), job.obs_step, result.arrival_step)
        if chunk is None:
            return record(ChunkVerdict.LATE), None
        return record(ChunkVerdict.ACCEPTED), chunk


def run_policy(
    policy: Policy,
    plant: Plant,
    limits: PandaLimits,
    steps: int,
    config: PolicyRuntimeConfig | dict[str, Any] | None = None,
) -> RunResult:
    """ControlLoop(policy, plant, limits, config).run(steps)."""
    return ControlLoop(policy, plant, limits, config).run(steps)
