"""The policy control loop: chunks in, a guarded 1 kHz joint command stream out.

Per control step (10 Hz by default): observe the plant; take the inference result that became
usable (checked, anchored to the q of its observation, elapsed actions dropped: chunks.py); submit
the new observation if the worker is idle; ask the watchdog; while RUNNING, the ensembled target
of the step, blended in after a (re)start, goes through guard_target and is ramped over the step's
ticks (interpolate.py); every tick goes through limit_tick - also while STOPPING/HOLDING, with
target None - and then to ``plant.apply_command``. Inference never blocks the loop (worker.py).

The loop runs on simulated time (as fast as it computes; inference latency measured or fixed, see
worker.py) or on wall-clock time (sleep until each 1 ms slot; records each tick's lateness). It
records the full command stream (``RunResult.stream()`` is what stream_check.save_stream writes and
check_stream replays), per-tick flags, per-step targets and flags, watchdog transitions and each
inference's latency and fate. A run always ends with a stop to rest.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

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
from edgeperc.runtime.policy.plants import Plant, PlantObservation
from edgeperc.runtime.policy.policies import Policy, PolicyInput
from edgeperc.runtime.policy.stream_check import CommandStream
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

from edgeperc.errors import ConfigError, EdgepercError, InvalidInputError
from edgeperc.targets import format_validation_error

ACTION_DIM = N_JOINTS + 1  # 7 joint deltas (rad) + gripper width (m)


class PolicyRuntimeConfig(BaseModel):
    """How the loop runs a policy. Times in seconds; steps are control steps (1 / control_hz)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    control_hz: float = Field(10.0, gt=0.0, le=1000.0, description="policy rate; must divide 1000 Hz")
    chunk_length: int = Field(16, ge=1, le=128, description="actions per chunk the policy returns")
    action_dim: int = Field(ACTION_DIM, description="7 joint deltas + gripper width: must be 8")
    past_steps: int = Field(2, ge=1, le=64, description="K executed actions fed back to the policy")
    ensemble_tau_steps: float = Field(
        2.0, ge=0.0, le=100.0, description="older chunks' weight exp(-age/tau); 0 = newest chunk only"
    )
    interpolation: RampShape = "linear"
    blend_steps: int = Field(
        5, ge=0, le=100, description="least steps over which targets blend in after a (re)start; 0 = no blending"
    )
    blend_speed_rad_s: float = Field(
        0.25, gt=0.0, le=2.0, description="blend longer if needed so the gap closes no faster than this"
    )
    gripper_speed_m_s: float = Field(0.1, gt=0.0, le=1.0, description="largest width change per second")
    timing: Timing = "sim"
    sim_latency_s: float | None = Field(
        None, ge=0.0, le=10.0, description="sim timing: fixed inference latency; None = measured wall time"
    )
    latency_scale: float = Field(1.0, gt=0.0, le=1000.0, description="sim timing: measured latency x this")
    stop_timeout_s: float = Field(5.0, gt=0.0, le=60.0, description="longest end-of-run stop")
    spin_s: float = Field(2e-4, ge=0.0, le=0.01, description="wall timing: busy-wait this long before each tick")
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
        deadline = self.watchdog.chunk_deadline_s
        low, high = 2 * period, (self.chunk_length - 1) * period
        if not low - 1e-12 <= deadline <= high + 1e-12:
            problems.append(
                f"watchdog.chunk_deadline_s: a chunk is at least one step old when used and has no action left "
                f"after chunk_length - 1 steps; allowed: {low:g} <= value <= {high:g} (got {deadline:g})"
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
    """Wall-clock runs only: each tick's lateness against its 1 ms slot, and per-step loop work."""

    lateness_s: np.ndarray  # (T,)
    step_work_s: np.ndarray  # (S,) observe + results + watchdog + guard, before the step's first tick
    misses: int  # ticks late by a whole period or more (the slot was lost)


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


def _wait_until(deadline: float, spin_s: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while time.perf_counter() < deadline:
        pass


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
        period, n_ticks = cfg.period_s, cfg.ticks_per_step
        first, ok = _observe(plant)
        if not ok:
            raise InvalidInputError(f"the plant's first observation is unusable: q {first.q_rad!r}, width {first.gripper_width_m!r}, t {first.time_s!r}")
        q_start = first.q_rad.copy()
        state = LimiterState.at_rest(q_start)
        width_cmd = float(np.clip(first.gripper_width_m, limits.gripper_width_min_m, limits.gripper_width_max_m))
        past = np.zeros((cfg.past_steps, cfg.action_dim), np.float32)
        past[:, -1] = width_cmd
        self._warm_up(PolicyInput(0, first.time_s, q_start.copy(), first.gripper_width_m, first.image, past.copy()))

        fractions = ramp_fractions(n_ticks, cfg.interpolation)
        w_step_max = cfg.gripper_speed_m_s * period
        worker = InferenceWorker(self.policy, period, cfg.timing, cfg.sim_latency_s, cfg.latency_scale)
        watchdog = WatchdogState.start()
        chunk_queue = ChunkQueue()
        newest_obs_step: int | None = None
        guarded = GuardedTarget.hold(q_start, width_cmd)
        hold_q, hold_w = q_start, width_cmd
        ref_q, ref_w = q_start, width_cmd
        running_steps = 0
        intervened_prev = False
        executed = q_start
        offset = np.zeros(ACTION_DIM)
        blend_steps = cfg.blend_steps
        worker_error: str | None = None
        last_step = steps + math.ceil(cfg.stop_timeout_s / period)

        commands: list[np.ndarray] = []
        widths: list[np.ndarray] = []
        tick_masks: list[np.ndarray] = []
        modes: list[Mode] = []
        step_faults: list[tuple[Reason, ...]] = []
        targets: list[np.ndarray] = []
        step_flags: list[tuple[Flag, ...]] = []
        intervened: list[bool] = []
        q_measured: list[np.ndarray] = []
        transitions: list[Transition] = []
        records: list[ChunkRecord] = []
        lateness: list[np.ndarray] = []
        work: list[float] = []
        wall = cfg.timing == "wall"
        t0 = time.perf_counter()
        try:
            for s in range(last_step + 1):
                step_begin = time.perf_counter()
                now = first.time_s + s * period  # the loop's clock runs on the plant's, from its first observation
                obs, ok = _observe(plant) if s else (first, True)
                obs_age = now - obs.time_s if ok else math.inf
                q_measured.append(obs.q_rad if ok else np.full(N_JOINTS, np.nan))
                if s:  # the action executed in step s - 1, as the policy was trained to see it
                    past = np.roll(past, -1, axis=0)
                    past[-1, :N_JOINTS] = executed - q_measured[-2] if np.isfinite(q_measured[-2]).all() else 0.0
                    past[-1, -1] = width_cmd

                result, silent_s = worker.poll(s)
                refused_now = False
                if result is not None:
                    record, chunk = self._take(result)
                    records.append(record)
                    worker_error = worker_error or record.error
                    refused_now = record.verdict in _REFUSED
                    if chunk is not None:
                        chunk_queue = chunk_queue.add(chunk)
                        newest_obs_step = max(chunk.obs_step, newest_obs_step if newest_obs_step is not None else chunk.obs_step)
                chunk_queue = chunk_queue.prune(s)
                finishing = s >= steps
                if worker.idle and ok and obs_age <= cfg.watchdog.observation_max_age_s and not finishing:
                    worker.submit(Job(s, obs.time_s, obs.q_rad.copy(), PolicyInput(s, obs.time_s, obs.q_rad.copy(), obs.gripper_width_m, obs.image, past.copy())))

                target = chunk_queue.target_at(s, cfg.ensemble_tau_steps)
                inputs = WatchdogInputs(
                    step=s,
                    time_s=now,
                    chunk_age_s=math.inf if newest_obs_step is None else (s - newest_obs_step) * period,
                    target_available=target is not None,
                    worker_alive=worker.alive,
                    worker_silent_s=silent_s,
                    observation_age_s=obs_age,
                    intervened=intervened_prev,
                    at_rest=state.at_rest_now(),
                    finish=finishing,
                )
                watchdog, transition = update_watchdog(watchdog, inputs, cfg.watchdog)
                step_faults.append(faults(inputs, cfg.watchdog))
                if transition is not None:
                    transitions.append(transition)
                    if transition.after is Mode.RUNNING:
                        running_steps = 0
                        hold_q, hold_w = state.q, width_cmd
                        ref_q, ref_w = state.q, width_cmd
                        guarded = GuardedTarget.hold(state.q, width_cmd)
                running = watchdog.mode is Mode.RUNNING
                modes.append(watchdog.mode)

                flags: tuple[Flag, ...] = ()
                if running:
                    assert target is not None  # the watchdog stops on an empty queue
                    if running_steps == 0:  # the gap between the hold pose and the policy, faded out
                        offset = np.append(hold_q, hold_w) - target
                        gap_steps = float(np.abs(offset[:N_JOINTS]).max()) / (cfg.blend_speed_rad_s * period)
                        blend_steps = max(cfg.blend_steps, math.ceil(gap_steps - 1e-9)) if cfg.blend_steps else 0
                    keep = 1.0 - blend_fraction(running_steps, blend_steps)
                    q_goal = target[:N_JOINTS] + keep * offset[:N_JOINTS]
                    w_goal = float(target[N_JOINTS] + keep * offset[N_JOINTS])
                    w_goal = min(max(w_goal, ref_w - w_step_max), ref_w + w_step_max)
                    guarded, flags = guard_target(q_goal, guarded, state.q, limits, gripper_width_m=w_goal)
                    refs = ramp(ref_q, guarded.q_rad, fractions)
                    w_refs = ramp(np.array([ref_w]), np.array([guarded.gripper_width_m]), fractions)[:, 0]
                    ref_q, ref_w = guarded.q_rad, guarded.gripper_width_m
                    running_steps += 1
                    targets.append(np.append(guarded.q_rad, guarded.gripper_width_m))
                else:
                    targets.append(np.full(ACTION_DIM, np.nan))
                step_flags.append(flags)
                work.append(time.perf_counter() - step_begin)

                rows = np.empty((n_ticks, N_JOINTS))
                w_rows = np.empty(n_ticks)
                masks = np.zeros(n_ticks, np.uint32)
                late = np.empty(n_ticks) if wall else None
                for k in range(n_ticks):
                    command, state, tick = limit_tick(state, refs[k] if running else None, limits)
                    if running:
                        width_cmd = float(w_refs[k])
                    if wall:
                        slot = t0 + (s * n_ticks + k) * DT_S
                        _wait_until(slot, cfg.spin_s)
                        late[k] = time.perf_counter() - slot  # type: ignore[index]
                    plant.apply_command(command, width_cmd)
                    rows[k] = command
                    w_rows[k] = width_cmd
                    if tick:
                        mask = 0
                        for flag in tick:
                            mask |= _FLAG_BIT[flag]
                        masks[k] = mask
                commands.append(rows)
                widths.append(w_rows)
                tick_masks.append(masks)
                if late is not None:
                    lateness.append(late)
                executed = guarded.q_rad if running else state.q
                capped = int(np.count_nonzero(masks & _LIMITING_MASK))
                arm_flags = set(flags) - GRIPPER_ONLY_FLAGS
                intervened_prev = running and (bool(arm_flags) or refused_now or capped >= cfg.watchdog.limiter_ticks_per_intervention)
                intervened.append(intervened_prev)
                if finishing and watchdog.mode is Mode.HOLDING and state.at_rest_now():
                    break
        finally:
            worker.close()

        timing = None
        if wall:
            late_all = np.concatenate(lateness) if lateness else np.zeros(0)
            timing = TickTiming(late_all, np.array(work), int(np.count_nonzero(late_all >= DT_S)))
        return RunResult(
            config=cfg,
            q_start=q_start,
            q_c=np.concatenate(commands) if commands else np.zeros((0, N_JOINTS)),
            gripper_c=np.concatenate(widths) if widths else np.zeros(0),
            tick_flags=np.concatenate(tick_masks) if tick_masks else np.zeros(0, np.uint32),
            modes=tuple(modes),
            step_faults=tuple(step_faults),
            targets=np.array(targets).reshape(-1, ACTION_DIM),
            step_flags=tuple(step_flags),
            intervened=np.array(intervened, dtype=bool),
            q_measured=np.array(q_measured).reshape(-1, N_JOINTS),
            transitions=tuple(transitions),
            chunks=tuple(records),
            steps_requested=steps,
            final=state,
            worker_error=worker_error,
            timing=timing,
        )

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
