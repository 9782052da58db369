"""The 1 kHz side of a wall-clock run: a thread that sends one command per 1 ms slot, apart from the
10 Hz planning.

The planner (the loop's own thread) observes, takes inference results, asks the watchdog, guards
the step's target and ramps it, then runs ``limit_tick`` for each of the step's ticks ahead of
time (a pure function of the limiter state and the reference) and ``push``-es the rows. The ticker
only waits for each slot, takes the next row and calls ``plant.apply_command``: tens of
microseconds a tick, so planning work - observe, guard_target, a slow camera - never sits in a
slot. The planner observes step s a lead of some ticks before its first slot, so the step's rows
are queued before they are due.

If the planner falls behind all the same (a stall longer than the lead), the ticker does not
wait: it runs ``limit_tick`` itself toward the reference of the last row it sent (it holds the
previous ramp's end; a stop stays a stop) and marks the tick *held*. The planner takes those rows
over (``taken_over``) and continues its ramp from the first tick still its own, so the stream stays
one continuous chain of limited commands.

The GIL: a thread waking for its slot while another runs Python gets the GIL only after
``sys.getswitchinterval()`` (5 ms by default) or when the other blocks. ``quiet()``, called by the
planner between its pieces of work, sleeps across each slot instead, so the ticker finds the GIL
free; pieces that take most of a period (guard_target) start right after a tick went out.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
from edgeperc.runtime.policy.guard import Flag, LimiterState, limit_tick
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS, PandaLimits
from edgeperc.runtime.policy.plants import Plant

_WAKE_S = 5e-5  # sleep this much past a slot: the tick has gone out by then unless the ticker is late
_LATEST_START_S = 0.85e-3  # a piece longer than the margin allows starts at most this long before a slot


@dataclass(frozen=True)
class Row:
    """One tick of the stream: its global index, the command, the width, the limiter state after
    it, the reference it tracked (None = stop) and its flag bits."""

    index: int
    command: np.ndarray
    width: float
    state: LimiterState
    ref: np.ndarray | None
    mask: int


def wait_until(deadline: float, spin_s: float) -> None:
    """Sleep until ``spin_s`` before ``deadline`` (the GIL released), then busy-wait to it."""
    remaining = deadline - time.perf_counter()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while time.perf_counter() < deadline:
        pass


def set_fifo_priority(priority: int) -> None:
    """The calling thread to SCHED_FIFO ``priority`` (Linux; raises OSError without the right)."""
    if not sys.platform.startswith("linux"):
        raise OSError(f"SCHED_FIFO thread priorities are Linux-only (this is {sys.platform})")
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))


class Ticker:
    """Sends the rows the planner pushes, one per 1 ms slot, from a thread of its own.

    ``start_state``/``start_width``: limiter state and width before tick 0 (where a held tick
    starts from if the planner is late from the outset). ``max_ticks``: the most ticks the run may
    have. ``bits``: Flag -> bit, for held ticks' flag masks. ``plant_lock``: held around
    ``apply_command`` (the planner holds it around ``observe``); None for a plant that allows both
    at once. ``priority``: SCHED_FIFO priority of the tick thread (None: normal scheduling).
    """

    def __init__(
        self,
        plant: Plant,
        limits: PandaLimits,
        start_state: LimiterState,
        start_width: float,
        max_ticks: int,
        bits: dict[Flag, int],
        spin_s: float = 2e-4,
        plant_lock: threading.Lock | None = None,
        priority: int | None = None,
    ) -> None:
        self.plant = plant
        self.limits = limits
        self.max_ticks = max_ticks
        self.spin_s = spin_s
        self.priority = priority
        self._bits = bits
        self._plant_lock: AbstractContextManager = plant_lock if plant_lock is not None else nullcontext()
        self._margin_s = spin_s + 1.5e-4  # the planner keeps off the GIL this long before a slot
        self.t0 = 0.0  # first slot, set by start()
        self._lock = threading.Lock()
        self._rows: list[Row] = []  # pushed, not yet sent
        self._head = 0  # next row of _rows to send
        self._held: dict[int, Row] = {}  # held rows the planner has not taken over yet
        self._last = Row(-1, start_state.q, start_width, start_state, None, 0)
        self.next_index = 0  # ticks sent so far
        self.q_c = np.empty((max_ticks, N_JOINTS))
        self.widths = np.empty(max_ticks)
        self.masks = np.zeros(max_ticks, np.uint32)
        self.lateness = np.zeros(max_ticks)
        self.held = np.zeros(max_ticks, bool)
        self.error: BaseException | None = None
        self._finish = False  # the planner pushed its last row: send what is queued, then end
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="policy-ticker", daemon=True)

    # --- tick thread ---------------------------------------------------------------------------

    def start(self, delay_s: float) -> None:
        """Start the thread (raises OSError if its priority cannot be set); the first slot is
        ``delay_s`` from now, time for the planner to queue step 0."""
        self._thread.start()
        self._ready.wait()
        if self.error is not None:
            self._thread.join()
            raise self.error
        self.t0 = time.perf_counter() + delay_s
        self._go.set()

    def _serve(self) -> None:
        try:
            if self.priority is not None:
                set_fifo_priority(self.priority)
        except BaseException as exc:  # noqa: BLE001 - raised by start(), on the planner's thread
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        self._go.wait()
        try:
            for index in range(self.max_ticks):
                if self._stop.is_set():
                    return
                slot = self.t0 + index * DT_S
                wait_until(slot, self.spin_s)
                row, held = self._next_row(index)
                if row is None:
                    return
                late = time.perf_counter() - slot
                with self._plant_lock:
                    self.plant.apply_command(row.command, row.width)
                self.lateness[index] = late
                self.q_c[index] = row.command
                self.widths[index] = row.width
                self.masks[index] = row.mask
                self.held[index] = held
        except BaseException as exc:  # noqa: BLE001 - handed to the planner, which raises it
            self.error = exc
        finally:
            self._stop.set()

    def _next_row(self, index: int) -> tuple[Row | None, bool]:
        """(the row to send at ``index`` - the planner's, or one held toward the last reference -, held)."""
        with self._lock:
            held = False
            if self._head < len(self._rows):
                row = self._rows[self._head]
                self._head += 1
                if self._head >= 256:  # forget what was sent
                    del self._rows[: self._head]
                    self._head = 0
            elif self._finish:
                return None, False
            else:
                held = True
                last = self._last
                command, state, flags = limit_tick(last.state, last.ref, self.limits)
                mask = 0
                for flag in flags:
                    mask |= self._bits[flag]
                row = Row(index, command, last.width, state, last.ref, mask)
                self._held[index] = row
            self._last = row
            self.next_index = index + 1
            return row, held

    # --- planner side --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def check(self) -> None:
        """Raise what the tick thread raised (an exception in ``plant.apply_command``)."""
        if self.error is not None:
            raise self.error

    def push(self, row: Row) -> bool:
        """Queue the planner's next row (rows come in index order, none skipped); False if the
        ticker already sent a held row at that index: take that one over instead."""
        with self._lock:
            if row.index < self.next_index:
                return False
            self._rows.append(row)
            return True

    def taken_over(self, index: int) -> Row | None:
        """The held row sent at ``index``, handed to the planner once; None if there is none."""
        with self._lock:
            return self._held.pop(index, None)

    def quiet(self, need_s: float = 0.0) -> None:
        """Before a piece of planning work expected to hold the GIL ``need_s``: if the next slot
        is too close for it, sleep (the GIL released) until that tick went out. A piece too long
        for any gap starts right after a tick. Raises what the tick thread raised."""
        self.check()
        index = self.next_index
        due = self.t0 + index * DT_S
        if due - time.perf_counter() > min(self._margin_s + need_s, _LATEST_START_S):
            return
        while self.next_index <= index and self.running:  # at most until this one tick went out
            now = time.perf_counter()
            if now > due + 0.01:
                break  # the tick thread is stuck (in apply_command?): stop waiting on it
            time.sleep(max(due - now, 0.0) + _WAKE_S)
        self.check()

    def wait_sent(self, count: int) -> None:
        """Sleep until ``count`` ticks went out (the planner's cue to observe the next step)."""
        while self.next_index < count and self.running:
            due = self.t0 + count * DT_S
            time.sleep(max(due - time.perf_counter(), 0.0) + _WAKE_S)
        self.check()

    def finish(self, timeout_s: float) -> None:
        """The planner pushed its last row: let the queued rows go out, then end the thread."""
        with self._lock:
            self._finish = True
        self._thread.join(timeout_s)
        self._stop.set()
        self.check()

    def stop(self) -> None:
        """End now (the planner failed)."""
        self._stop.set()
        self._go.set()
        if self._thread.is_alive():
            self._thread.join(0.1)

    @property
    def sent(self) -> int:
        return self.next_index

    @property
    def last_state(self) -> LimiterState:
        """The limiter state after the last tick sent."""
        return self._last.state
