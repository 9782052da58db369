"""Latency statistics over repeated calls: medians and tails, never a single run."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    runs: int
    median_ms: float
    mean_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarise_ms(samples_ms: np.ndarray | list[float]) -> LatencyStats:
    """(N,) latencies in ms -> percentiles (linear interpolation, numpy's default)."""
    s = summarise_latency(samples_ms)  # one implementation of the statistics; this is its short view
    return LatencyStats(runs=s.count, median_ms=s.p50_ms, mean_ms=s.mean_ms, p90_ms=s.p90_ms, p99_ms=s.p99_ms,
                        min_ms=s.min_ms, max_ms=s.max_ms)


def time_calls(call: Callable[[], object], runs: int, warmup: int = 2) -> np.ndarray:
    """(runs,) wall-clock ms of ``call()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    samples = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        call()
        samples[index] = (time.perf_counter() - start) * 1e3
    return samples


def time_interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int = 2) -> dict[str, np.ndarray]:
    """Time several callables A B C A B C ... so machine drift hits all of them alike."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {name: np.empty(runs) for name in calls}
    for index in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name][index] = (time.perf_counter() - start) * 1e3
    return samples


# --- the full summary used by `edgeperc profile` and `edgeperc latency-test` ---------------------

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


@dataclass(frozen=True)
class LatencySummary:
    """Statistics of (N,) latencies in ms.

    Percentiles use numpy's linear interpolation (so p99 of 20 samples lies between the two
    largest). ``std_ms`` is the population standard deviation (ddof=0). ``jitter_ms`` is the
    standard deviation of successive differences, std(x[i+1] - x[i]): it measures how much one
    iteration differs from the next (what a control loop feels) and, unlike std, ignores slow
    drift such as thermal throttling, which ``latency over time`` shows instead. ``tail_ms`` is
    p99 - p50, the tail a budget must absorb. ``throughput_per_s`` is count / wall time of the
    timed loop when the wall time is known, else 1000 / mean (one stream, back to back).
    """

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p99_9_ms: float
    max_ms: float
    jitter_ms: float
    tail_ms: float
    throughput_per_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def statistic(self, name: str) -> float:
        """'p50' / 'p99' / 'mean' ... -> value in ms."""
        return float(getattr(self, f"{name}_ms"))


def jitter_ms(samples_ms: np.ndarray) -> float:
    """std of successive differences of (N,) ms; 0.0 for fewer than 3 samples (one difference has no spread)."""
    values = np.asarray(samples_ms, np.float64)
    if values.size < 3:
        return 0.0
    return float(np.std(np.diff(values)))


def summarise_latency(samples_ms: np.ndarray | list[float], wall_s: float | None = None) -> LatencySummary:
    """(N,) latencies in ms (N >= 1) -> LatencySummary; see the class for the definitions."""
    values = np.asarray(samples_ms, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of latencies, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("latency samples contain NaN/Inf")
    p50, p90, p99, p999 = (float(v) for v in np.percentile(values, list(PERCENTILES.values())))
    mean = float(values.mean())
    if wall_s is not None and wall_s > 0:
        throughput = values.size / wall_s
    else:
        throughput = 1e3 / mean if mean > 0 else float("inf")
    return LatencySummary(
        count=int(values.size), mean_ms=mean, std_ms=float(values.std()), min_ms=float(values.min()),
        p50_ms=p50, p90_ms=p90, p99_ms=p99, p99_9_ms=p999, max_ms=float(values.max()),
        jitter_ms=jitter_ms(values), tail_ms=p99 - p50, throughput_per_s=float(throughput),
    )
