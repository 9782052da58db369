"""Latency statistics against numpy references, and the old helpers benchmarks still use."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgeperc.profiling.latency import jitter_ms, summarise_latency, summarise_ms, time_calls, time_interleaved

finite_ms = arrays(np.float64, st.integers(1, 200), elements=st.floats(0.001, 5000, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(finite_ms)
def test_summary_matches_numpy(samples):
    s = summarise_latency(samples)
    assert s.count == samples.size
    assert s.p50_ms == pytest.approx(np.percentile(samples, 50))
    assert s.p90_ms == pytest.approx(np.percentile(samples, 90))
    assert s.p99_ms == pytest.approx(np.percentile(samples, 99))
    assert s.p99_9_ms == pytest.approx(np.percentile(samples, 99.9))
    assert s.max_ms == samples.max() and s.min_ms == samples.min()
    assert s.mean_ms == pytest.approx(samples.mean())
    assert s.std_ms == pytest.approx(samples.std(), abs=1e-9)
    assert s.tail_ms == pytest.approx(s.p99_ms - s.p50_ms)
    expected_jitter = np.std(np.diff(samples)) if samples.size >= 3 else 0.0
    assert s.jitter_ms == pytest.approx(expected_jitter, abs=1e-9)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.p99_9_ms <= s.max_ms
    assert s.throughput_per_s == pytest.approx(1e3 / samples.mean())


def test_jitter_ignores_slow_drift_std_does_not():
    drift = np.linspace(10, 20, 101)  # thermal drift: steady, no iteration-to-iteration noise
    assert jitter_ms(drift) == pytest.approx(0, abs=1e-9) and np.std(drift) > 2
    alternating = np.array([10.0, 12.0] * 50)
    assert jitter_ms(alternating) == pytest.approx(2.0, rel=1e-3)  # diffs are +2, -2


def test_throughput_from_wall_time():
    assert summarise_latency([100.0, 100.0], wall_s=0.5).throughput_per_s == pytest.approx(4.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [[1.0, 2.0]]])
def test_bad_samples_are_refused(bad):
    with pytest.raises(ValueError):
        summarise_latency(bad)


def test_old_helpers_keep_working():
    stats = summarise_ms([1.0, 2.0, 3.0])
    assert stats.median_ms == 2.0 and stats.runs == 3
    assert time_calls(lambda: None, runs=4, warmup=1).shape == (4,)
    out = time_interleaved({"a": lambda: None, "b": lambda: None}, runs=3, warmup=0)
    assert set(out) == {"a", "b"} and out["a"].shape == (3,)
