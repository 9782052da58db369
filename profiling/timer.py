"""Stage timers: monotonic nanoseconds into buffers allocated up front.

``StageTimer(stages, capacity)`` holds a (capacity, n_stages) int64 array and one end-to-end
column; a run does ``begin() ... start(i)/stop(i) or `with timer.stage(name)` ... end()`` per
iteration. Nothing grows on the hot path: ``start``/``stop`` write into two preallocated Python
lists (cheaper than numpy scalar writes, ~2 clock reads each) and ``end`` copies the row into the
numpy buffer element by element. The context managers are built once per stage at construction.

``NullTimer`` has the same interface and does nothing: pipelines can keep their timing calls in
production and pay one no-op method call per call (see benchmarks/bench_timer_overhead.py).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np

Clock = Callable[[], int]


class _Span:
    """``with timer.stage("x"):`` -> start/stop of one stage (one object per stage, reused).
    Holds the timer's lists and clock itself: two attribute reads fewer than calling start/stop."""

    __slots__ = ("_starts", "_acc", "_clock", "_index")

    def __init__(self, timer: "StageTimer", index: int) -> None:
        self._starts, self._acc, self._clock, self._index = timer._starts, timer._acc, timer._clock, index

    def __enter__(self) -> None:
        self._starts[self._index] = self._clock()

    def __exit__(self, *exc: object) -> None:
        self._acc[self._index] += self._clock() - self._starts[self._index]


class _NullSpan:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL_SPAN = _NullSpan()


class StageTimer:
    """Per-iteration, per-stage durations in ns; ``clock`` defaults to time.perf_counter_ns
    (monotonic, the highest resolution Python offers)."""

    enabled = True

    def __init__(self, stages: Iterable[str], capacity: int, clock: Clock = time.perf_counter_ns) -> None:
        self.stages: tuple[str, ...] = tuple(stages)
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stage names must be unique, got {self.stages}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.index = {name: i for i, name in enumerate(self.stages)}
        self.stage_ns = np.zeros((self.capacity, len(self.stages)), np.int64)
        self.total_ns = np.zeros(self.capacity, np.int64)
        self.begin_ns = np.zeros(self.capacity, np.int64)  # when each iteration started (clock units)
        self.count = 0
        self._clock = clock
        self._starts = [0] * len(self.stages)
        self._acc = [0] * len(self.stages)
        self._iteration_start = 0
        self._spans = {name: _Span(self, i) for i, name in enumerate(self.stages)}

    # --- hot path -------------------------------------------------------------------------
    def start(self, index: int) -> None:
        self._starts[index] = self._clock()

    def stop(self, index: int) -> None:
        self._acc[index] += self._clock() - self._starts[index]

    def stage(self, name: str) -> _Span:
        """Context manager timing stage ``name`` (accumulates if entered twice in one iteration)."""
        return self._spans[name]

    def add_ms(self, name: str, ms: float) -> None:
        """Record a duration measured elsewhere (e.g. a pipeline's own per-stage report)."""
        self._acc[self.index[name]] += int(ms * 1e6)

    def begin(self) -> None:
        acc = self._acc
        for i in range(len(acc)):
            acc[i] = 0
        self._iteration_start = self._clock()

    def end(self) -> None:
        now = self._clock()
        row = self.count
        if row >= self.capacity:
            raise RuntimeError(f"StageTimer is full ({self.capacity} iterations)")
        self.begin_ns[row] = self._iteration_start
        self.total_ns[row] = now - self._iteration_start
        stage_row = self.stage_ns[row]
        for i, value in enumerate(self._acc):
            stage_row[i] = value
        self.count = row + 1

    # --- results --------------------------------------------------------------------------
    def stage_ms(self) -> dict[str, np.ndarray]:
        """{stage: (count,) float64 ms} of the recorded iterations."""
        return {name: self.stage_ns[: self.count, i] / 1e6 for i, name in enumerate(self.stages)}

    def total_ms(self) -> np.ndarray:
        """(count,) float64 end-to-end ms (begin -> end, including anything between stages)."""
        return self.total_ns[: self.count] / 1e6

    def begin_s(self) -> np.ndarray:
        """(count,) float64 seconds of each iteration's start since the first one."""
        if self.count == 0:
            return np.zeros(0)
        return (self.begin_ns[: self.count] - self.begin_ns[0]) / 1e9


class NullTimer:
    """A disabled timer: every method is a no-op, ``stage()`` returns one shared null context."""

    enabled = False

    def __init__(self, stages: Iterable[str] = (), capacity: int = 0, clock: Clock | None = None) -> None:
        self.stages = tuple(stages)
        self.count = 0

    def start(self, index: int) -> None:
        return None

    def stop(self, index: int) -> None:
        return None

    def stage(self, name: str) -> _NullSpan:
        return _NULL_SPAN

    def add_ms(self, name: str, ms: float) -> None:
        return None

    def begin(self) -> None:
        return None

    def end(self) -> None:
        return None


def make_timer(stages: Iterable[str], capacity: int, enabled: bool = True) -> StageTimer | NullTimer:
    """A StageTimer, or a NullTimer when ``enabled`` is False."""
    return StageTimer(stages, capacity) if enabled else NullTimer(stages)
