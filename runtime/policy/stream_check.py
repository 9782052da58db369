"""Replay a 1 kHz joint-position command stream the way Franka Control checks it, offline.

Control differentiates each commanded signal with backward Euler at dt = 1 ms (velocity
(q_k - q_{k-1}) / dt, acceleration and jerk likewise) and aborts the motion when a "necessary"
condition fails: q_min < q_c < q_max, |dq_c| < dq_max, |ddq_c| < ddq_max, |dddq_c| < dddq_max
(frankarobotics/libfranka docs/overview.rst; frankarobotics/docs robot_specifications.rst;
franka-facts.md §1.1). Violations carry libfranka's ``franka::Errors`` names (franka-facts.md §2).
The robot stops at the first one; the checker reports all of them, so one replay shows the
whole damage.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS, PandaLimits

from edgeperc.errors import InvalidInputError


class ViolationName(str, Enum):
    """libfranka error names (franka-facts.md §2) plus one for non-finite values."""

    # libfranka's limitRate throws std::invalid_argument on NaN/inf (src/rate_limiting.cpp); no Errors field.
    NON_FINITE = "non_finite_command"
    # First joint command too far from the current q. No threshold is published; ours is the
    # farthest one tick can go at dq_max (|q_0 - q_start| >= dq_max * 1 ms).
    START_POSE_INVALID = "joint_position_motion_generator_start_pose_invalid"
    # Commanded q_c outside [q_min, q_max]. Panda's last libfranka is 0.9.2; from 0.15.0 (FR3) the
    # same condition is reported as joint_position_limits_violation (CHANGELOG 0.15.0).
    POSITION_LIMITS = "joint_motion_generator_position_limits_violation"
    VELOCITY_LIMITS = "joint_motion_generator_velocity_limits_violation"  # |dq_c| >= dq_max
    VELOCITY_DISCONTINUITY = "joint_motion_generator_velocity_discontinuity"  # |ddq_c| >= ddq_max
    ACCELERATION_DISCONTINUITY = "joint_motion_generator_acceleration_discontinuity"  # |dddq_c| >= dddq_max
    # Measured (not commanded) signals, when a log or simulation provides q_measured.
    MEASURED_POSITION_LIMITS = "joint_position_limits_violation"
    MEASURED_VELOCITY = "joint_velocity_violation"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Violation:
    """One failed condition: ``tick`` indexes the stream (0-based), ``joint`` is 0..6 (joint 1 = 0).

    ``value`` is the offending quantity (q in rad, |dq| rad/s, |ddq| rad/s^2, |dddq| rad/s^3, or the
    start-pose distance in rad; NaN for non-finite) and ``limit`` the bound it crossed.
    """

    name: ViolationName
    tick: int
    joint: int
    value: float
    limit: float

    def __str__(self) -> str:
        return f"{self.name.value} at tick {self.tick}, joint {self.joint + 1}: {self.value:.6g} vs limit {self.limit:.6g}"


def _joint_vector(value: np.ndarray | None, name: str) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (N_JOINTS,):
        raise InvalidInputError(f"{name} must be ({N_JOINTS},), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name} contains NaN/Inf")
    return array


def _stream(value: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise InvalidInputError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != N_JOINTS or array.shape[0] == 0:
        raise InvalidInputError(f"{name} must be (T, {N_JOINTS}) with T >= 1, got shape {array.shape}")
    return array.astype(np.float64)


def replay_derivatives(
    q_c: np.ndarray,
    q_start: np.ndarray | None = None,
    dq_start: np.ndarray | None = None,
    ddq_start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 7) commands -> (dq, ddq, dddq), each (T, 7), by backward Euler at 1 ms.

    The values before tick 0 are ``q_start`` (default: q_c[0], i.e. the stream starts where the
    robot stands), ``dq_start`` and ``ddq_start`` (default 0: a motion starts at rest).
    """
    q = _stream(q_c, "q_c")
    q_prev = q[0] if q_start is None else _joint_vector(q_start, "q_start")
    dq_prev = np.zeros(N_JOINTS) if dq_start is None else _joint_vector(dq_start, "dq_start")
    ddq_prev = np.zeros(N_JOINTS) if ddq_start is None else _joint_vector(ddq_start, "ddq_start")
    with np.errstate(invalid="ignore", over="ignore"):
        dq = np.diff(q, axis=0, prepend=q_prev[None]) / DT_S
        ddq = np.diff(dq, axis=0, prepend=dq_prev[None]) / DT_S
        dddq = np.diff(ddq, axis=0, prepend=ddq_prev[None]) / DT_S
    return dq, ddq, dddq


def _collect(out: list[Violation], name: ViolationName, mask: np.ndarray, value: np.ndarray, limit: np.ndarray) -> None:
    ticks, joints = np.nonzero(mask)
    limit = np.broadcast_to(limit, mask.shape)
    out.extend(
        Violation(name, int(t), int(j), float(value[t, j]), float(limit[t, j])) for t, j in zip(ticks, joints)
    )


def check_stream(
    q: np.ndarray,
    limits: PandaLimits,
    q_start: np.ndarray | None = None,
    dq_start: np.ndarray | None = None,
    ddq_start: np.ndarray | None = None,
    q_measured: np.ndarray | None = None,
) -> list[Violation]:
    """Every violation of a (T, 7) joint-position stream at 1 kHz, sorted by tick then joint.

    Uses the unscaled limits (Control's own), not the guard's safety factor or margin. A NaN/Inf
    command is reported once at its tick (non_finite_command); derivatives that touch it are not
    reported again. The start pose is checked when q_start is given and the stream starts at rest
    (dq_start None or 0). ``q_measured`` (T, 7), when given, adds the measured-signal checks (measured
    velocity by the same backward difference). Raises InvalidInputError on wrong shapes.
    """
    q_c = _stream(q, "q")
    q0 = None if q_start is None else _joint_vector(q_start, "q_start")
    dq, ddq, dddq = replay_derivatives(q_c, q0, dq_start, ddq_start)
    found: list[Violation] = []
    finite = np.isfinite(q_c)
    _collect(found, ViolationName.NON_FINITE, ~finite, q_c, np.full(q_c.shape, np.nan))
    with np.errstate(invalid="ignore"):
        # Non-finite values are reported above only: every comparison below also asks isfinite, and a
        # derivative that touched a NaN/Inf command is itself non-finite.
        starts_at_rest = dq_start is None or not np.any(dq_start)
        if q0 is not None and starts_at_rest:  # a continuation (dq_start != 0) has no start pose
            distance = np.abs(q_c[0] - q0)[None]
            step = limits.dq_max * DT_S
            _collect(found, ViolationName.START_POSE_INVALID, finite[:1] & (distance >= step), distance, step)
        _collect(found, ViolationName.POSITION_LIMITS, finite & (q_c <= limits.q_min), q_c, limits.q_min)
        _collect(found, ViolationName.POSITION_LIMITS, finite & (q_c >= limits.q_max), q_c, limits.q_max)
        for name, values, bound in (
            (ViolationName.VELOCITY_LIMITS, dq, limits.dq_max),
            (ViolationName.VELOCITY_DISCONTINUITY, ddq, limits.ddq_max),
            (ViolationName.ACCELERATION_DISCONTINUITY, dddq, limits.dddq_max),
        ):
            magnitude = np.abs(values)
            _collect(found, name, np.isfinite(magnitude) & (magnitude >= bound), magnitude, bound)
        if q_measured is not None:
            q_m = _stream(q_measured, "q_measured")
            if q_m.shape != q_c.shape:
                raise InvalidInputError(f"q_measured must match q's shape {q_c.shape}, got {q_m.shape}")
            seen = np.isfinite(q_m)
            _collect(found, ViolationName.MEASURED_POSITION_LIMITS, seen & (q_m <= limits.q_min), q_m, limits.q_min)
            _collect(found, ViolationName.MEASURED_POSITION_LIMITS, seen & (q_m >= limits.q_max), q_m, limits.q_max)
            dq_m = np.abs(np.diff(q_m, axis=0, prepend=(q_m[0] if q0 is None else q0)[None]) / DT_S)
            _collect(found, ViolationName.MEASURED_VELOCITY, np.isfinite(dq_m) & (dq_m >= limits.dq_max), dq_m, limits.dq_max)
    order = {name: i for i, name in enumerate(ViolationName)}
    found.sort(key=lambda v: (v.tick, v.joint, order[v.name]))
    return found


def summarize_violations(violations: list[Violation]) -> dict[str, int]:
    """{violation name: count}, in ViolationName order, names with no violation left out."""
    counts = Counter(v.name for v in violations)
    return {name.value: counts[name] for name in ViolationName if counts[name]}


# --- .npz streams -----------------------------------------------------------------------------

STREAM_KEYS = {
    "q_c": "(T, 7) float commanded joint positions, rad, one row per 1 ms tick (required)",
    "q_start": "(7,) measured q before tick 0, rad (optional; default q_c[0])",
    "dq_start": "(7,) commanded velocity before tick 0, rad/s (optional; default 0)",
    "ddq_start": "(7,) commanded acceleration before tick 0, rad/s^2 (optional; default 0)",
    "q_measured": "(T, 7) measured joint positions, rad (optional; adds the measured-signal checks)",
    "dt_s": "scalar sample time (optional; must be 0.001: Control runs at 1 kHz)",
}


@dataclass(frozen=True)
class CommandStream:
    """A stream as stored in ``.npz`` (keys: STREAM_KEYS); arrays are float64."""

    q_c: np.ndarray
    q_start: np.ndarray | None = None
    dq_start: np.ndarray | None = None
    ddq_start: np.ndarray | None = None
    q_measured: np.ndarray | None = None

    def check(self, limits: PandaLimits) -> list[Violation]:
        """check_stream on this stream's arrays."""
        return check_stream(self.q_c, limits, self.q_start, self.dq_start, self.ddq_start, self.q_measured)


def load_stream(path: str | Path, allow_non_finite: bool = False) -> CommandStream:
    """Read a ``.npz`` stream; InvalidInputError names the file and the key on any problem.

    NaN/Inf are refused unless ``allow_non_finite`` (then check_stream reports them per tick).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError as exc:
        raise InvalidInputError(f"stream file not found: {path}") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidInputError(f"stream {path} is not a readable .npz of plain arrays: {exc}") from exc
    unknown = sorted(set(data) - set(STREAM_KEYS))
    if unknown:
        raise InvalidInputError(f"stream {path}: unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(STREAM_KEYS)}")
    if "q_c" not in data:
        raise InvalidInputError(f"stream {path}: missing key 'q_c' ({STREAM_KEYS['q_c']}); keys present: {', '.join(data) or 'none'}")
    if "dt_s" in data:
        dt = np.asarray(data.pop("dt_s"))
        if dt.shape != () or dt.dtype.kind not in "fiu" or not np.isclose(float(dt), DT_S, rtol=1e-9, atol=0.0):
            raise InvalidInputError(f"stream {path}: dt_s must be the scalar {DT_S} (1 kHz), got {dt!r}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in data.items():
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            raise InvalidInputError(f"stream {path}: {key} must be numeric, got dtype {array.dtype}")
        want = (N_JOINTS,) if key.endswith("_start") else None
        if want is not None and array.shape != want:
            raise InvalidInputError(f"stream {path}: {key} must be {want}, got shape {array.shape}")
        if want is None and (array.ndim != 2 or array.shape[1] != N_JOINTS or array.shape[0] == 0):
            raise InvalidInputError(f"stream {path}: {key} must be (T, {N_JOINTS}) with T >= 1, got shape {array.shape}")
        array = array.astype(np.float64)
        bad = ~np.isfinite(array)
        if bad.any() and not (allow_non_finite and key in ("q_c", "q_measured")):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInputError(f"stream {path}: {key} contains NaN/Inf ({int(bad.sum())} values, first at index {first})")
        arrays[key] = array
    if "q_measured" in arrays and arrays["q_measured"].shape != arrays["q_c"].shape:
        raise InvalidInputError(
            f"stream {path}: q_measured must match q_c's shape {arrays['q_c'].shape}, got {arrays['q_measured'].shape}"
        )
    return CommandStream(**arrays)


def save_stream(path: str | Path, stream: CommandStream) -> Path:
    """Write ``stream`` as ``.npz`` (with dt_s = 0.001), the format load_stream reads."""
    path = Path(path)
    arrays = {key: getattr(stream, key) for key in ("q_c", "q_start", "dq_start", "ddq_start", "q_measured")}
    with path.open("wb") as handle:  # a handle keeps the name as given (np.savez would append .npz)
        np.savez(handle, dt_s=np.float64(DT_S), **{k: np.asarray(v, np.float64) for k, v in arrays.items() if v is not None})
    return path
