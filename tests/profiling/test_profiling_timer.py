"""Stage timers: exact bookkeeping with a fake clock, no growth on the hot path, a disabled timer
that does nothing."""

import tracemalloc

import numpy as np
import pytest

from edgeperc.profiling.timer import NullTimer, StageTimer, make_timer


class TickClock:
    """A clock that advances by a fixed step per read: every duration is known exactly."""

    def __init__(self, step_ns: int = 1000) -> None:
        self.now, self.step = 0, step_ns

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def test_stage_times_and_end_to_end_are_exact():
    timer = StageTimer(["a", "b"], capacity=3, clock=TickClock(1000))
    for _ in range(3):
        timer.begin()  # read 1
        timer.start(0)  # read 2
        timer.stop(0)  # read 3: a = 1000 ns
        with timer.stage("b"):  # reads 4, 5: b = 1000 ns
            pass
        timer.start(1)  # read 6
        timer.stop(1)  # read 7: b accumulates to 2000 ns
        timer.add_ms("a", 0.5)  # a += 500000 ns
        timer.end()  # read 8: total = 7000 ns
    stages = timer.stage_ms()
    np.testing.assert_allclose(stages["a"], [0.501] * 3)
    np.testing.assert_allclose(stages["b"], [0.002] * 3)
    np.testing.assert_allclose(timer.total_ms(), [0.007] * 3)
    np.testing.assert_allclose(timer.begin_s(), [0, 8e-6, 16e-6])


def test_full_timer_refuses_more_iterations():
    timer = StageTimer(["a"], capacity=1)
    timer.begin()
    timer.end()
    with pytest.raises(RuntimeError, match="full"):
        timer.begin()
        timer.end()


def test_duplicate_stage_names_are_refused():
    with pytest.raises(ValueError):
        StageTimer(["a", "a"], capacity=2)


def test_hot_path_does_not_grow_buffers():
    timer = StageTimer(["a", "b"], capacity=2000)
    buffers = [id(timer.stage_ns), id(timer._acc), id(timer._starts)]
    span = timer.stage("a")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(2000):
        timer.begin()
        timer.start(1)
        timer.stop(1)
        with span:
            pass
        timer.end()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename") if "timer.py" in str(stat.traceback))
    assert grown < 1024, f"timer.py allocated {grown} bytes over 2000 iterations"
    assert [id(timer.stage_ns), id(timer._acc), id(timer._starts)] == buffers
    assert timer.stage("a") is span  # one context manager per stage, reused


def test_disabled_timer_is_a_no_op():
    timer = make_timer(["a", "b"], capacity=10, enabled=False)
    assert isinstance(timer, NullTimer) and timer.enabled is False
    timer.begin()
    timer.start(0)
    timer.stop(0)
    timer.add_ms("a", 3.0)
    with timer.stage("b") as inside:
        assert inside is None
    timer.end()
    assert timer.count == 0
    assert timer.stage("a") is timer.stage("b")  # one shared null context, nothing allocated per call
    assert isinstance(make_timer(["a"], 1), StageTimer)
