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
    values = np.asarray(samples_ms, np.float64)
    if values.size == 0:
        raise ValueError("no latency samples")
    return LatencyStats(
        runs=int(values.size),
        median_ms=float(np.median(values)),
        mean_ms=float(values.mean()),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        min_ms=float(values.min()),
        max_ms=float(values.max()),
    )


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
