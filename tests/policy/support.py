"""Shared helpers for the policy tests: poses, limits variants and the clean-stream assertion."""

from __future__ import annotations

import numpy as np
from edgeperc.runtime.policy.limits import PandaLimits, load_panda_limits
from edgeperc.runtime.policy.stream_check import (
    check_stream,
    replay_derivatives,
    summarize_violations,
)

# franka_ros / libfranka examples' "ready" pose: TCP at (0.307, 0, 0.487), hand pointing down.
READY = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


def shipped_limits() -> PandaLimits:
    return load_panda_limits()


def joint_only_limits() -> PandaLimits:
    """Shipped limits with the Cartesian checks out of the way, so joint limits are what binds."""
    return shipped_limits().model_copy(
        update={"workspace_min_m": [-5.0, -5.0, -5.0], "workspace_max_m": [5.0, 5.0, 5.0], "floor_z_m": -5.0}
    )


def assert_clean(q_c: np.ndarray, limits: PandaLimits, q_start: np.ndarray) -> None:
    """Zero checker violations from rest at q_start, and within the guard's own (scaled) caps."""
    violations = check_stream(q_c, limits, q_start=q_start)
    assert not violations, f"{summarize_violations(violations)}; first: {violations[0]}"
    dq, ddq, dddq = replay_derivatives(q_c, q_start)
    # Float rounding of the backward differences: ~ulp(q) / dt^n, i.e. ~1e-12, 1e-9, 1e-5 at most.
    assert (np.abs(dq) <= limits.dq_cap + 1e-9).all()
    assert (np.abs(ddq) <= limits.ddq_cap + 1e-6).all()
    assert (np.abs(dddq) <= limits.dddq_cap + 1e-3).all()
    half = 0.5 * limits.position_margin_rad
    assert (q_c >= limits.q_min + half).all() and (q_c <= limits.q_max - half).all()


def assert_at_rest(q_c: np.ndarray, ticks: int = 3) -> None:
    """The last ``ticks`` commands are bit-for-bit equal: velocity, acceleration and jerk exactly zero."""
    tail = q_c[-ticks:]
    assert (tail == tail[-1]).all(), f"not at rest: last rows differ by {np.abs(np.diff(tail, axis=0)).max():g}"
