"""10 Hz targets -> 1 kHz references for the limiter: a ramp from the previous target to the new one.

The limiter (guard.limit_tick) is a position servo with jerk/acceleration/velocity caps; fed a
10 Hz step it would saturate at every target (that is what the caps are for, not what they should
do all day). Fed a ramp that ends where the next one starts, it sees a continuous reference moving
at the policy's own speed and, for a well-behaved policy, never reaches a cap.

- ``linear``: constant velocity within a period, a velocity corner at each target. The default:
  it keeps the policy's speed (no stop at every target) and the limiter rounds the corners.
- ``min_jerk``: 10x^3 - 15x^4 + 6x^5, zero velocity and acceleration at both ends: rest-to-rest per
  period, so a continuous motion becomes stop-and-go with 1.875x the mean speed at mid-period. For
  policies that command isolated set-points rather than trajectories.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

RampShape = Literal["linear", "min_jerk"]


def ramp_fractions(ticks: int, shape: RampShape) -> np.ndarray:
    """(ticks,) fractions s(k / ticks), k = 1..ticks: the last is exactly 1, the first > 0."""
    if ticks < 1:
        raise ValueError(f"ticks must be >= 1, got {ticks}")
    x = np.arange(1, ticks + 1, dtype=np.float64) / ticks
    if shape == "linear":
        fractions = x
    elif shape == "min_jerk":
        fractions = x**3 * (10.0 - 15.0 * x + 6.0 * x * x)
    else:
        raise ValueError(f"unknown ramp shape {shape!r}; allowed: linear, min_jerk")
    fractions[-1] = 1.0
    return fractions


def ramp(start: np.ndarray, end: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """(D,) start, (D,) end, (T,) fractions -> (T, D) references start + s (end - start); the last row
    is ``end`` bit for bit, so a held target repeats exactly and the limiter can arrive at rest."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    rows = start + np.asarray(fractions)[:, None] * (end - start)
    rows[-1] = end
    return rows


def blend_fraction(steps_running: int, blend_steps: int) -> float:
    """Share of the policy's target used ``steps_running`` steps after a (re)start (0-based):
    (k + 1) / (blend_steps + 1) while k < blend_steps, then 1. The rest stays at the hold pose, so
    the first targets after a stop or at start-up come in gradually instead of as one jump."""
    if steps_running >= blend_steps:
        return 1.0
    return (steps_running + 1) / (blend_steps + 1)
