# ruff: noqa: PLR1730, FURB136  (the 1 kHz loop uses inline conditionals: ~10x cheaper than min/max calls)
"""The policy's safety guard: 10 Hz target checks and a 1 kHz jerk-limited command limiter.

Pure functions over small immutable values: given limits, the state and a proposed target, return
the command and the flags raised. Nothing here raises once a motion runs (a bad target is held or
stopped on, and flagged); values are only validated where a motion starts (``LimiterState.at_rest``,
``GuardedTarget.hold``).

Why a limiter of our own: Franka Control aborts on the first command whose backward-Euler velocity,
acceleration or jerk crosses dq/ddq/dddq_max, or whose position leaves [q_min, q_max]
(franka-facts.md §1.1). libfranka's ``limitRate`` clips jerk and acceleration (with a safe
acceleration that shrinks near the velocity limit) but protects no position limit, is off by default
since 0.10.0, and expects an already smooth signal, not 10 Hz steps (franka-facts.md §1.1). This
limiter keeps all four conditions by construction, with a safety factor and a position margin, and
is braking-distance aware: it never moves faster than it can still stop before the margin bound.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from math import sqrt
from typing import Literal

import numpy as np
from edgeperc.runtime.policy.kinematics import TCP, frame_origins
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS, PandaLimits

from edgeperc.errors import InvalidInputError

log = logging.getLogger(__name__)


class Flag(str, Enum):
    """Every intervention of the guard has one name; values are plain strings for logs and JSON."""

    # 10 Hz target checks (guard_target)
    NON_FINITE_TARGET = "non_finite_target"  # NaN/Inf or malformed joint target: last good target held
    POSITION_CLIPPED = "position_clipped"  # joint target outside [q_min, q_max] shrunk by the margin
    STEP_CLIPPED = "step_clipped"  # target farther than max_target_step_rad from the current command
    WORKSPACE_CLIPPED = "workspace_clipped"  # TCP would leave the workspace box: cut back along the move
    FLOOR_CLIPPED = "floor_clipped"  # a frame would go below the table: cut back along the move
    NON_FINITE_GRIPPER = "non_finite_gripper"  # NaN/Inf gripper width or force: last good value held
    GRIPPER_WIDTH_CLAMPED = "gripper_width_clamped"
    GRIPPER_FORCE_CLAMPED = "gripper_force_clamped"
    # 1 kHz limiter (limit_tick)
    VELOCITY_LIMITED = "velocity_limited"  # cruising at the velocity cap
    ACCELERATION_LIMITED = "acceleration_limited"  # accelerating at the acceleration cap
    JERK_LIMITED = "jerk_limited"  # the wanted change of acceleration was cut to the jerk cap
    POSITION_BRAKING = "position_braking"  # braking harder than tracking wants, to stop inside the margin
    STOPPING = "stopping"  # no target: decelerate to rest and hold
    INTERNAL_ERROR = "internal_error"  # an unexpected exception: fell back to stopping

    def __str__(self) -> str:
        return self.value


def _frozen(values: np.ndarray) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


def _joint_vector(value: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be {N_JOINTS} numbers (rad), got {value!r}") from exc
    if array.shape != (N_JOINTS,) or not np.isfinite(array).all():
        raise InvalidInputError(f"{name} must be ({N_JOINTS},) finite values (rad), got {array!r}")
    return array


# --- 10 Hz target checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class GuardedTarget:
    """A target that passed the guard: joints (7,) rad (read-only), gripper width (m) and force (N)."""

    q_rad: np.ndarray
    gripper_width_m: float
    gripper_force_n: float

    @classmethod
    def hold(cls, q_rad: np.ndarray, gripper_width_m: float = 0.0, gripper_force_n: float = 0.0) -> GuardedTarget:
        """The first 'last good target': where the robot stands. Validates (raises) - call before motion."""
        q = _joint_vector(q_rad, "q_rad")
        for name, value in (("gripper_width_m", gripper_width_m), ("gripper_force_n", gripper_force_n)):
            if not np.isfinite(value):
                raise InvalidInputError(f"{name} must be finite, got {value!r}")
        return cls(_frozen(q), float(gripper_width_m), float(gripper_force_n))


def cartesian_ok(q_rad: np.ndarray, limits: PandaLimits) -> tuple[np.ndarray, np.ndarray]:
    """(..., 7) -> (in_box (...) bool, above_floor (...) bool).

    in_box: the TCP lies in the workspace box. above_floor: the TCP is at or above floor_z_m and
    every joint-frame origin and the flange at or above floor_z_m + link_clearance_m.
    """
    points = frame_origins(q_rad, limits.tcp_offset_m)
    tcp = points[..., TCP, :]
    in_box = np.all((tcp >= limits.workspace_lo) & (tcp <= limits.workspace_hi), axis=-1)
    links_up = np.all(points[..., :TCP, 2] >= limits.floor_z_m + limits.link_clearance_m, axis=-1)
    return in_box, links_up & (tcp[..., 2] >= limits.floor_z_m)


def workspace_excursion_m(q_rad: np.ndarray, limits: PandaLimits) -> np.ndarray:
    """(..., 7) -> (...) metres by which the TCP is outside the box or any frame below its floor (0 = fine).

    guard_target keeps every target (and the joint-space line to it) inside; the limiter's path
    between targets is not straight in joint space and carries momentum, so a watchdog or a test
    can measure how far a command stream strays with this.
    """
    points = frame_origins(q_rad, limits.tcp_offset_m)
    tcp = points[..., TCP, :]
    box = np.maximum(limits.workspace_lo - tcp, 0.0).max(axis=-1)
    box = np.maximum(box, np.maximum(tcp - limits.workspace_hi, 0.0).max(axis=-1))
    links = np.maximum(limits.floor_z_m + limits.link_clearance_m - points[..., :TCP, 2], 0.0).max(axis=-1)
    return np.maximum(box, np.maximum(links, limits.floor_z_m - tcp[..., 2]))


def _safe_fraction(q_from: np.ndarray, q_to: np.ndarray, limits: PandaLimits, samples: int = 8, rounds: int = 3):
    """Largest alpha in [0, 1] such that the joint-space segment q_from -> q_from + alpha (q_to - q_from)
    stays Cartesian-safe at every sample (q_from must be safe); also whether box / floor failed.
    ``rounds`` refinements of ``samples`` each resolve alpha to samples**-rounds of the segment."""
    lo, hi = 0.0, 1.0
    box_failed = floor_failed = False
    for _ in range(rounds):
        alphas = np.linspace(lo, hi, samples + 1)
        in_box, above = cartesian_ok(q_from + alphas[:, None] * (q_to - q_from), limits)
        ok = in_box & above
        if ok.all():
            return hi, box_failed, floor_failed
        first_bad = int(np.argmin(ok))
        box_failed |= not bool(in_box[first_bad])
        floor_failed |= not bool(above[first_bad])
        if first_bad == 0:  # only reachable when the caller broke the contract
            return lo, box_failed, floor_failed
        lo, hi = float(alphas[first_bad - 1]), float(alphas[first_bad])
    return lo, box_failed, floor_failed


def _guard_gripper(value: object, last: float, low: float, high: float, clamped: Flag, flags: list[Flag]) -> float:
    if value is None:
        return last
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        flags.append(Flag.NON_FINITE_GRIPPER)
        return last
    if not low <= number <= high:
        flags.append(clamped)
        return float(min(max(number, low), high))
    return number


def guard_target(
    q_target: object,
    last: GuardedTarget,
    q_now: np.ndarray,
    limits: PandaLimits,
    gripper_width_m: float | None = None,
    gripper_force_n: float | None = None,
) -> tuple[GuardedTarget, tuple[Flag, ...]]:
    """Check one 10 Hz policy target; return the target to track and the flags raised.

    q_target (7,) rad; last: the previous GuardedTarget (Cartesian-safe by construction, or where the
    robot started); q_now (7,): the limiter's current command. In order: non-finite or malformed ->
    hold ``last`` (LeRobot's clamp silently stops clamping on NaN, franka-facts.md §4.1); clip to
    [q_min + margin, q_max - margin]; cap the move from q_now at max_target_step_rad (LeRobot's
    max_relative_target, per joint); then walk the joint-space segment last -> target with FK and cut
    it where the TCP would leave the workspace box or any frame would sink below the table. When
    ``last`` itself is outside (the robot started there) a target is taken only if it is inside.
    Gripper width/force: None keeps the last value; clamped to [min, max] / [0, max].
    """
    flags: list[Flag] = []
    try:
        q = np.asarray(q_target, dtype=np.float64)
        ok_shape = q.shape == (N_JOINTS,)
    except (TypeError, ValueError):
        q, ok_shape = last.q_rad, False
    try:
        if not ok_shape or not np.isfinite(q).all():
            flags.append(Flag.NON_FINITE_TARGET)
            q = last.q_rad
        else:
            clipped = np.clip(q, limits.q_lo, limits.q_hi)
            if (clipped != q).any():
                flags.append(Flag.POSITION_CLIPPED)
            step = np.clip(clipped - q_now, -limits.max_target_step_rad, limits.max_target_step_rad)
            if (step != clipped - q_now).any():
                flags.append(Flag.STEP_CLIPPED)
                clipped = np.clip(q_now + step, limits.q_lo, limits.q_hi)
            q = clipped
            in_box, above = cartesian_ok(np.stack([last.q_rad, q]), limits)
            if not (in_box[0] and above[0]):
                if not (in_box[1] and above[1]):
                    flags += [f for f, bad in ((Flag.WORKSPACE_CLIPPED, not in_box[1]), (Flag.FLOOR_CLIPPED, not above[1])) if bad]
                    q = last.q_rad
            else:
                alpha, box_failed, floor_failed = _safe_fraction(last.q_rad, q, limits)
                if alpha < 1.0:
                    q = last.q_rad + alpha * (q - last.q_rad)
                    flags += [f for f, bad in ((Flag.WORKSPACE_CLIPPED, box_failed), (Flag.FLOOR_CLIPPED, floor_failed)) if bad]
        width = _guard_gripper(
            gripper_width_m, last.gripper_width_m, limits.gripper_width_min_m, limits.gripper_width_max_m,
            Flag.GRIPPER_WIDTH_CLAMPED, flags,
        )
        force = _guard_gripper(gripper_force_n, last.gripper_force_n, 0.0, limits.gripper_force_max_n, Flag.GRIPPER_FORCE_CLAMPED, flags)
        result = GuardedTarget(_frozen(q), width, force)
    except Exception:  # the guard must not raise mid-motion: hold the last good target
        log.exception("policy guard: unexpected error checking a target; holding the last good target")
        return last, (Flag.INTERNAL_ERROR,)
    if flags:
        log.warning("policy guard: target %s", ", ".join(f.value for f in flags))
    return result, tuple(flags)


# --- 1 kHz limiter ----------------------------------------------------------------------------

# Small-signal tracking: position loop K_P, velocity loop K_V = 4 K_P with acceleration set directly
# (jerk permitting) gives a critically damped double pole at -2 K_P: no overshoot, 2 % settling in ~0.3 s.
K_P_PER_S = 10.0
K_V_PER_S = 40.0
# Shares of the caps the tracker plans with, so that it never asks for what only braking may use.
TRACK_ACC_SHARE = 0.5
TRACK_JERK_SHARE = 0.5
BOUND_ACC_SHARE = 0.75
# Tracking error at which a reference's velocity feed-forward has faded to nothing (see _joint_step).
FEEDFORWARD_FADE_RAD = 0.15  # deceleration the position-bound braking curve assumes (< 1: slack to catch up)
# Below these a joint is at rest: snap to exact zero so that a held command is bit-for-bit constant.
REST_DQ = 1e-9
REST_DDQ = 1e-7
REST_Q = 1e-10


@dataclass(frozen=True)
class LimiterState:
    """Last command and its backward-Euler derivatives, each (7,) read-only: exactly what Control
    will difference against (it returns them as q_d, dq_d, ddq_d in the robot state)."""

    q: np.ndarray
    dq: np.ndarray
    ddq: np.ndarray

    @classmethod
    def at_rest(cls, q: np.ndarray) -> LimiterState:
        """Start state: the robot's measured q, at rest. Validates (raises) - call before motion."""
        zero = _frozen(np.zeros(N_JOINTS))
        return cls(_frozen(_joint_vector(q, "q")), zero, zero)

    @classmethod
    def moving(cls, q: np.ndarray, dq: np.ndarray, ddq: np.ndarray) -> LimiterState:
        """Any state, e.g. the one a watchdog inherits. Validates (raises)."""
        return cls(_frozen(_joint_vector(q, "q")), _frozen(_joint_vector(dq, "dq")), _frozen(_joint_vector(ddq, "ddq")))

    def at_rest_now(self) -> bool:
        """True when velocity and acceleration are exactly zero (the limiter snaps to it)."""
        return not (self.dq.any() or self.ddq.any())


# Bits of the per-joint step, mapped to flags once per tick.
_BIT_FLAGS = (
    (1, Flag.VELOCITY_LIMITED),
    (2, Flag.ACCELERATION_LIMITED),
    (4, Flag.JERK_LIMITED),
    (8, Flag.POSITION_BRAKING),
)


def _joint_step(
    q: float, v: float, a: float, goal: float | None, v_cap: float, a_cap: float, j_cap: float, lo: float, hi: float,
    v_ff: float = 0.0,
) -> tuple[float, float, float, int]:
    """(lo, hi) are the braking bounds (halfway into the margin, see PandaLimits.joint_caps);
    v_ff: the reference's own velocity (feed-forward), added to the tracking velocity."""
    # Plain floats and inline conditionals: at 1 kHz on 7 joints they beat small-array numpy (and
    # min/max calls) several times.
    if v == 0.0 and a == 0.0 and v_ff == 0.0 and (goal is None or goal == q):
        return q, 0.0, 0.0, 0  # at rest where wanted: hold exactly
    bits = 0
    jdt = j_cap * DT_S
    if goal is None:
        v_want = 0.0
    else:
        # Tracking curve: linear near the goal, else the speed from which a jerk-limited stop at a
        # share of the acceleration cap still ends on the goal (reaction = time to swing acceleration).
        error = goal - q
        distance = error if error >= 0.0 else -error
        a_track = TRACK_ACC_SHARE * a_cap
        reaction = (a_cap + a_track) / j_cap + 2 * DT_S
        speed = a_track * (sqrt(reaction * reaction + 2.0 * distance / a_track) - reaction)
        linear = K_P_PER_S * distance
        if linear < speed:
            speed = linear
        # Feed-forward fades out as the error grows: a reference the caps cannot follow (a 5 Hz
        # square wave) would otherwise drive a saturated, rectifying limit cycle that drifts away
        # from it; with the error large, plain position tracking (symmetric, stable) takes over.
        if v_ff != 0.0:
            fade = 1.0 - distance / FEEDFORWARD_FADE_RAD
            v_ff = v_ff * fade if fade > 0.0 else 0.0
        v_want = v_ff + (speed if error >= 0.0 else -speed)
        if v_want > v_cap:
            v_want, bits = v_cap, 1
        elif v_want < -v_cap:
            v_want, bits = -v_cap, 1
    # Velocity loop: linear near v_want, else the acceleration from which ramping to zero at a share of
    # the jerk cap lands on v_want without overshoot.
    dv = v_want - v
    gap = dv if dv >= 0.0 else -dv
    accel = sqrt(2.0 * TRACK_JERK_SHARE * j_cap * gap)
    linear = K_V_PER_S * gap
    if linear < accel:
        accel = linear
    if accel > a_cap:
        accel, bits = a_cap, bits | 2
    a_want = accel if dv >= 0.0 else -accel
    # Jerk window; the acceleration cap yields to it only for a state that starts beyond the cap.
    a_minus, a_plus = a - jdt, a + jdt
    if a_want < a_minus:
        a_tracked, bits = a_minus, bits | 4
    elif a_want > a_plus:
        a_tracked, bits = a_plus, bits | 4
    else:
        a_tracked = a_want
    a_floor = -a_cap if -a_cap < a_plus else a_plus
    if a_floor < a_minus:
        a_floor = a_minus
    a_ceil = a_cap if a_cap > a_minus else a_minus
    if a_ceil > a_plus:
        a_ceil = a_plus
    # Velocity ceiling/floor: the cap, and the speed from which braking at BOUND_ACC_SHARE of the cap
    # still stops inside [lo, hi], judged where the next command could be at most (conservative).
    a_bound = BOUND_ACC_SHARE * a_cap
    reaction = (a_cap + a_bound) / j_cap + 2 * DT_S
    v_far = v + a_plus * DT_S
    room_up = hi - (q + v_far * DT_S if v_far > 0.0 else q)
    v_room_up = a_bound * (sqrt(reaction * reaction + 2.0 * room_up / a_bound) - reaction) if room_up > 0.0 else 0.0
    v_far = v + a_minus * DT_S
    room_down = (q + v_far * DT_S if v_far < 0.0 else q) - lo
    v_room_down = a_bound * (sqrt(reaction * reaction + 2.0 * room_down / a_bound) - reaction) if room_down > 0.0 else 0.0
    v_hi = v_cap if v_cap < v_room_up else v_room_up
    v_lo = -v_cap if v_cap < v_room_down else -v_room_down
    # a' keeps v + a' dt + a'^2 / (2 J) <= v_hi: after a', ramping the acceleration to zero at the jerk
    # cap adds at most a'^2 / (2 J) of velocity (the discrete ramp adds less; libfranka's limitRate
    # shrinks its safe acceleration near the velocity limit for the same reason). Mirror for v_lo.
    if v_hi >= v:
        a_v_up = j_cap * (sqrt(DT_S * DT_S + 2.0 * (v_hi - v) / j_cap) - DT_S)
    else:
        a_v_up = (v_hi - v) / DT_S
    if v >= v_lo:
        a_v_down = -j_cap * (sqrt(DT_S * DT_S + 2.0 * (v - v_lo) / j_cap) - DT_S)
    else:
        a_v_down = (v_lo - v) / DT_S
    if a_v_up < a_floor:  # no admissible a': brake at the jerk cap
        a_next = a_floor
    elif a_v_down > a_ceil:
        a_next = a_ceil
    else:
        low = a_floor if a_floor > a_v_down else a_v_down
        high = a_ceil if a_ceil < a_v_up else a_v_up
        a_next = low if a_tracked < low else (high if a_tracked > high else a_tracked)
    if a_next < a_tracked:
        bits |= 8 if v_room_up < v_cap else 1
    elif a_next > a_tracked:
        bits |= 8 if v_room_down < v_cap else 1
    v_next = v + a_next * DT_S
    q_next = q + v_next * DT_S
    # Arrived: snap to exact rest, so that a held command repeats bit for bit.
    if -REST_DQ < v_next < REST_DQ and -REST_DDQ < a_next < REST_DDQ:
        if goal is None:
            return q, 0.0, 0.0, bits
        if -REST_Q < goal - q_next < REST_Q:
            return goal, 0.0, 0.0, bits
    return q_next, v_next, a_next, bits


def _read_target(target: object) -> list[float] | None:
    """(7,) finite floats as a list, else None."""
    try:
        goal = np.asarray(target, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if goal.shape != (N_JOINTS,) or not np.isfinite(goal).all():
        return None
    return goal.tolist()


def _bounded_feed(v: float, goal: float, read: float, lo: float, hi: float) -> float:
    """A joint's feed-forward velocity near its bounds [lo, hi]: none for a reference clipped to a
    bound (it does not move), and fading over the last FEEDFORWARD_FADE_RAD toward the bound it
    moves to, so that plain position tracking - which stops on the bound - does the arriving."""
    if goal != read or v == 0.0:
        return 0.0
    room = (hi - goal) if v > 0.0 else (goal - lo)
    share = room / FEEDFORWARD_FADE_RAD
    return v * share if share < 1.0 else v


def _limit_tick(
    state: LimiterState, target: object, limits: PandaLimits, velocity: object = None
) -> tuple[np.ndarray, LimiterState, tuple[Flag, ...]]:
    flags: list[Flag] = []
    caps = limits.joint_caps
    goals: list[float | None]
    feed = [0.0] * N_JOINTS
    if target is None:
        goals = [None] * N_JOINTS
        flags.append(Flag.STOPPING)
    else:
        read = _read_target(target)
        read_v = None if velocity is None else _read_target(velocity)
        if read is None or (velocity is not None and read_v is None):
            goals = [None] * N_JOINTS
            flags += [Flag.NON_FINITE_TARGET, Flag.STOPPING]
        else:
            goals = [min(max(g, c[3]), c[4]) for g, c in zip(read, caps)]
            if goals != read:
                flags.append(Flag.POSITION_CLIPPED)
            if read_v is not None:
                feed = [_bounded_feed(v, g, r, c[3], c[4]) for v, g, r, c in zip(read_v, goals, read, caps)]
    bits = 0
    q_next, v_next, a_next = [], [], []
    for q, v, a, goal, v_ff, (v_cap, a_cap, j_cap, _lo, _hi, brake_lo, brake_hi) in zip(
        state.q.tolist(), state.dq.tolist(), state.ddq.tolist(), goals, feed, caps
    ):
        qn, vn, an, b = _joint_step(q, v, a, goal, v_cap, a_cap, j_cap, brake_lo, brake_hi, v_ff)
        q_next.append(qn)
        v_next.append(vn)
        a_next.append(an)
        bits |= b
    flags += [flag for bit, flag in _BIT_FLAGS if bits & bit]
    new_state = LimiterState(_frozen(q_next), _frozen(v_next), _frozen(a_next))
    return new_state.q, new_state, tuple(flags)


def limit_tick(
    state: LimiterState, target: np.ndarray | None, limits: PandaLimits, velocity: np.ndarray | None = None
) -> tuple[np.ndarray, LimiterState, tuple[Flag, ...]]:
    """One 1 ms step: move the command toward ``target`` (7,) rad within the caps; None = stop.

    ``velocity`` (7,) rad/s, optional: the reference's own velocity (a ramp's slope), fed forward so
    that a moving reference is tracked without the position loop's lag of velocity / K_P (0.1 s:
    at 0.5 rad/s the command would trail by 0.05 rad, a few cm at the hand). It only changes the
    wanted velocity; every cap below still applies.

    Returns (command (7,) rad, new state, flags). Goals are clipped to [q_min + margin,
    q_max - margin]. From any state the limiter produced, every command keeps, by construction:
    |dddq| <= dddq_cap, |ddq| <= ddq_cap, |dq| <= dq_cap (safety_factor x the published limits,
    the max_tick_step_rad cap, minus libfranka's kLimitEps), and a speed from which braking at
    0.75 ddq_cap, after the jerk-limited swing of acceleration, still stops before
    [q_min + margin/2, q_max - margin/2]. A NaN/Inf or malformed target is flagged and stopped on;
    an unexpected exception falls back to stopping (never raises).
    """
    try:
        command, new_state, flags = _limit_tick(state, target, limits, velocity)
    except Exception:
        log.exception("policy limiter: unexpected error; stopping")
        try:
            command, new_state, flags = _limit_tick(state, None, limits)
        except Exception:
            log.exception("policy limiter: stopping failed too; repeating the last command")
            return state.q, state, (Flag.INTERNAL_ERROR,)
        flags = flags + (Flag.INTERNAL_ERROR,)
    if flags and log.isEnabledFor(logging.DEBUG):
        log.debug("policy limiter: %s", ", ".join(f.value for f in flags))
    return command, new_state, flags


def stop_profile(
    q: np.ndarray, dq: np.ndarray, ddq: np.ndarray, limits: PandaLimits, max_ticks: int = 5000
) -> np.ndarray:
    """From any state (7,) each, the 1 kHz commands (T, 7) that decelerate to rest and hold.

    Each command respects the caps and the margin bounds (given a start state within the caps);
    the last row is at rest (velocity and acceleration exactly zero) unless max_ticks ran out.
    The watchdog's decelerate-and-hold. Raises InvalidInputError on a non-finite start (before motion).
    """
    state = LimiterState.moving(q, dq, ddq)
    rows: list[np.ndarray] = []
    for _ in range(max_ticks):
        command, state, _flags = limit_tick(state, None, limits)
        rows.append(command)
        if state.at_rest_now():
            break
    return np.array(rows).reshape(-1, N_JOINTS)


# --- both together ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardedRun:
    """What ``run_targets`` produced: the (T, 7) command stream, the guarded (N, 7) targets, flag
    counts at each level, and the limiter's final state."""

    q_c: np.ndarray
    targets: np.ndarray
    target_flags: Counter
    tick_flags: Counter
    final: LimiterState


def run_targets(
    q_start: np.ndarray,
    targets: Iterable[object],
    limits: PandaLimits,
    ticks_per_target: int = 100,
    then: Literal["hold", "stop"] = "hold",
    tail_ticks: int = 0,
    ramp: bool = False,
) -> GuardedRun:
    """Feed 10 Hz targets (each (7,) rad, or None = none arrived: keep the last) through guard_target
    and ``ticks_per_target`` limiter ticks each, then ``tail_ticks`` more holding the last target
    ("hold") or decelerating to rest ("stop"). ``ramp``: the ticks track a linear ramp from the
    previous target with its velocity fed forward, as the control loop does; else the target itself.
    A reference loop for tests and simulation."""
    state = LimiterState.at_rest(q_start)
    last = GuardedTarget.hold(state.q)
    rows: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    target_flags: Counter = Counter()
    tick_flags: Counter = Counter()
    for proposed in targets:
        previous = last.q_rad
        if proposed is not None:
            last, flags = guard_target(proposed, last, state.q, limits)
            target_flags.update(flags)
        kept.append(last.q_rad)
        velocity = (last.q_rad - previous) / (ticks_per_target * DT_S) if ramp else None
        for k in range(1, ticks_per_target + 1):
            reference = previous + (k / ticks_per_target) * (last.q_rad - previous) if ramp and k < ticks_per_target else last.q_rad
            command, state, flags = limit_tick(state, reference, limits, velocity)
            tick_flags.update(flags)
            rows.append(command)
    tail_target = last.q_rad if then == "hold" else None
    for _ in range(tail_ticks):
        command, state, flags = limit_tick(state, tail_target, limits)
        tick_flags.update(flags)
        rows.append(command)
    q_c = np.array(rows).reshape(-1, N_JOINTS)
    return GuardedRun(q_c, np.array(kept).reshape(-1, N_JOINTS), target_flags, tick_flags, state)
