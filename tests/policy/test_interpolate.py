"""Ramps from one 10 Hz target to the next, against their closed forms, and what they buy: the
limiter follows a ramped reference without reaching a cap where a stepped one saturates."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.runtime.policy.guard import LimiterState, limit_tick
from edgeperc.runtime.policy.interpolate import blend_fraction, ramp, ramp_fractions

from .support import READY, shipped_limits

LIMITS = shipped_limits()


def test_linear_fractions_are_k_over_n():
    np.testing.assert_allclose(ramp_fractions(100, "linear"), np.arange(1, 101) / 100, rtol=0, atol=1e-15)


def test_min_jerk_fractions_reference():
    x = np.arange(1, 101) / 100
    want = 10 * x**3 - 15 * x**4 + 6 * x**5
    got = ramp_fractions(100, "min_jerk")
    np.testing.assert_allclose(got, want, atol=1e-14)
    assert got[-1] == 1.0
    assert np.all(np.diff(got) > 0)  # monotone: never backs up
    np.testing.assert_allclose(got[:49] + got[50:99][::-1], 1.0, atol=1e-12)  # point-symmetric about x = 1/2
    assert got[0] < 1e-4  # starts (and ends) at rest: tiny first step
    assert np.diff(np.concatenate([[0.0], got])).max() == pytest.approx(1.875 / 100, rel=1e-3)


@pytest.mark.parametrize("shape", ["linear", "min_jerk"])
def test_ramp_ends_exactly_on_the_target(shape):
    start = READY
    end = READY + np.linspace(-0.3, 0.3, 7) / 3.0
    rows = ramp(start, end, ramp_fractions(100, shape))
    assert rows.shape == (100, 7)
    np.testing.assert_array_equal(rows[-1], end)
    assert np.all(np.abs(rows[0] - start) <= np.abs(end - start) / 50)
    np.testing.assert_array_equal(ramp(end, end, ramp_fractions(100, shape)), np.repeat(end[None], 100, axis=0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="ticks"):
        ramp_fractions(0, "linear")
    with pytest.raises(ValueError, match="allowed: linear, min_jerk"):
        ramp_fractions(10, "cubic")  # type: ignore[arg-type]


def test_blend_fraction_sequence():
    assert [blend_fraction(k, 5) for k in range(7)] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0, 1.0])
    assert blend_fraction(0, 0) == 1.0


def _capped_ticks(targets: list[np.ndarray], shape: str | None) -> int:
    """Limiter ticks at a cap while following 10 Hz targets, stepped (shape None) or ramped."""
    state = LimiterState.at_rest(READY)
    previous, capped = READY, 0
    fractions = None if shape is None else ramp_fractions(100, shape)  # type: ignore[arg-type]
    for target in targets:
        refs = np.repeat(target[None], 100, axis=0) if fractions is None else ramp(previous, target, fractions)
        for ref in refs:
            _, state, flags = limit_tick(state, ref, LIMITS)
            capped += bool(flags)
        previous = target
    return capped


def test_a_ramped_slow_trajectory_never_reaches_a_cap_where_steps_do():
    t = np.arange(1, 41) * 0.1
    targets = [READY + 0.25 * np.sin(2 * np.pi * ti / 3.0) * np.array([1, 0.5, 0, 0.5, 0, 0.5, 1]) for ti in t]
    assert _capped_ticks(targets, "linear") == 0
    assert _capped_ticks(targets, None) > 100  # 10 Hz steps: the jerk/acceleration caps at every target
