"""The native 1 kHz sender (runtime/policy/native, libedgeperc_joint_stream.so) behind the same
interface as ticker.Ticker, so the wall-clock loop runs with either.

Why: the Python tick thread needs the GIL and loses slots whenever the planner, the inference
worker or the collector holds it (2.2 % of the slots on a 2-core VM). The native sender is a
pthread outside Python - optionally SCHED_FIFO - that sleeps to each slot on CLOCK_MONOTONIC, sends
the queued row (or makes a held tick itself with the C++ port of the limiter) and never waits for
Python. "Sending" writes the command into logs the planner reads; ``sync_plant`` hands the commands
sent so far to the plant in order, on the planner's thread (for the kinematic and simulated plants
here; on a robot the sender's rows are what goes on the wire).
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from ctypes import (
    POINTER,
    byref,
    c_double,
    c_int32,
    c_int64,
    c_uint8,
    c_uint32,
    c_void_p,
)

import numpy as np
from edgeperc.kernels.library import open_library
from edgeperc.runtime.policy import guard
from edgeperc.runtime.policy.guard import Flag, LimiterState, _frozen
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS, PandaLimits
from edgeperc.runtime.policy.plants import Plant
from edgeperc.runtime.policy.ticker import Row

from edgeperc.errors import EdgepercError

JOINT_STREAM_LIB = "libedgeperc_joint_stream.so"
ABI_VERSION = 1
STATUS = {0: "ok", 1: "null pointer", 5: "bad argument", 20: "real-time priority not permitted", 21: "wrong state",
          22: "queue full", 23: "thread creation failed"}
PERMISSION = 20
# EpLimiterBit order (joint_limiter.h) -> the flag each bit stands for.
LIMITER_BIT_FLAGS = (Flag.VELOCITY_LIMITED, Flag.ACCELERATION_LIMITED, Flag.JERK_LIMITED, Flag.POSITION_BRAKING,
                     Flag.POSITION_CLIPPED, Flag.STOPPING)
_STATE = 3 * N_JOINTS
_POLL_S = 2e-4


class LimiterParams(ctypes.Structure):
    """EpLimiterParams: the caps and the limiter's constants, read from the Python limiter."""

    _fields_ = [("caps", (c_double * 7) * N_JOINTS), ("dt", c_double), ("k_p", c_double), ("k_v", c_double),
                ("track_acc_share", c_double), ("track_jerk_share", c_double), ("bound_acc_share", c_double),
                ("rest_dq", c_double), ("rest_ddq", c_double), ("rest_q", c_double)]

    @classmethod
    def of(cls, limits: PandaLimits) -> LimiterParams:
        params = cls()
        for j, caps in enumerate(limits.joint_caps):
            for k, value in enumerate(caps):
                params.caps[j][k] = value
        params.dt, params.k_p, params.k_v = DT_S, guard.K_P_PER_S, guard.K_V_PER_S
        params.track_acc_share, params.track_jerk_share = guard.TRACK_ACC_SHARE, guard.TRACK_JERK_SHARE
        params.bound_acc_share = guard.BOUND_ACC_SHARE
        params.rest_dq, params.rest_ddq, params.rest_q = guard.REST_DQ, guard.REST_DDQ, guard.REST_Q
        return params


class JointStreamError(EdgepercError):
    """The native sender refused a call (its status name says why)."""


_D = POINTER(c_double)


@functools.cache
def joint_stream_library() -> ctypes.CDLL:
    """Load (once) and declare libedgeperc_joint_stream.so; BackendUnavailableError with the build
    command when it is not built or was built from other headers."""
    lib = open_library(JOINT_STREAM_LIB, "ep_joint_stream_abi", ABI_VERSION)
    params = POINTER(LimiterParams)
    lib.ep_limit_hold.argtypes = [params, _D, _D, POINTER(c_int32)]
    lib.ep_joint_sender_create.argtypes = [params, POINTER(c_uint32), _D, c_double, c_int64, c_int32, _D, _D,
                                           POINTER(c_uint32), _D, POINTER(c_uint8), POINTER(c_void_p)]
    lib.ep_joint_sender_start.argtypes = [c_void_p, c_double, c_int32, c_double, c_int32, c_int32, _D]
    lib.ep_joint_sender_push.argtypes = [c_void_p, c_int64, _D, _D, c_double, c_uint32, POINTER(c_int32)]
    lib.ep_joint_sender_sent.argtypes, lib.ep_joint_sender_sent.restype = [c_void_p], c_int64
    lib.ep_joint_sender_row.argtypes = [c_void_p, c_int64, _D, _D, POINTER(c_int32), _D, POINTER(c_uint32), POINTER(c_int32)]
    for name in ("finish", "running", "stop"):
        getattr(lib, f"ep_joint_sender_{name}").argtypes = [c_void_p]
    lib.ep_joint_sender_destroy.argtypes, lib.ep_joint_sender_destroy.restype = [c_void_p], None
    for name in ("ep_limit_hold", "ep_joint_sender_create", "ep_joint_sender_start", "ep_joint_sender_push",
                 "ep_joint_sender_row", "ep_joint_sender_finish", "ep_joint_sender_running", "ep_joint_sender_stop"):
        getattr(lib, name).restype = c_int32
    return lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise JointStreamError(f"native joint sender: {what}: {STATUS.get(status, f'status {status}')}")


def _ptr(array: np.ndarray, ctype: type) -> ctypes._Pointer:
    return array.ctypes.data_as(POINTER(ctype))


def _mask(bits: int, flag_bits: dict[Flag, int]) -> int:
    return sum(flag_bits[flag] for i, flag in enumerate(LIMITER_BIT_FLAGS) if bits & (1 << i))


def native_hold_tick(state: LimiterState, ref: np.ndarray | None, limits: PandaLimits) -> tuple[LimiterState, tuple[Flag, ...]]:
    """One hold tick by the C++ limiter (what the native sender runs when the planner is late):
    the counterpart of ``guard.limit_tick(state, ref, limits)``, for tests that compare the two."""
    lib = joint_stream_library()
    buffer = np.ascontiguousarray(np.concatenate([state.q, state.dq, state.ddq]), np.float64)
    goal = None if ref is None else np.ascontiguousarray(ref, np.float64)
    bits = c_int32(0)
    params = LimiterParams.of(limits)
    _check(lib.ep_limit_hold(byref(params), _ptr(buffer, c_double), None if goal is None else _ptr(goal, c_double), byref(bits)),
           "hold tick")
    flags = tuple(flag for i, flag in enumerate(LIMITER_BIT_FLAGS) if bits.value & (1 << i))
    new = LimiterState(_frozen(buffer[:N_JOINTS]), _frozen(buffer[N_JOINTS:2 * N_JOINTS]), _frozen(buffer[2 * N_JOINTS:]))
    return new, flags


class NativeTicker:
    """ticker.Ticker's interface over the native sender. ``plant`` gets the sent commands through
    ``sync_plant`` (the planner calls it before each observation) instead of from the tick thread."""

    def __init__(
        self,
        plant: Plant,
        limits: PandaLimits,
        start_state: LimiterState,
        start_width: float,
        max_ticks: int,
        bits: dict[Flag, int],
        spin_s: float = 2e-4,
        priority: int | None = None,
        cpu: int | None = None,
        lock_memory: bool = False,
        capacity: int = 4096,
    ) -> None:
        self._lib = joint_stream_library()
        self.plant = plant
        self.limits = limits
        self.max_ticks = max_ticks
        self.spin_s = spin_s
        self.priority = priority
        self.cpu = cpu
        self.lock_memory = lock_memory
        self._bits = bits
        self.q_c = np.zeros((max_ticks, N_JOINTS))
        self.widths = np.zeros(max_ticks)
        self.masks = np.zeros(max_ticks, np.uint32)
        self.lateness = np.zeros(max_ticks)
        self.held = np.zeros(max_ticks, np.uint8)
        self._params = LimiterParams.of(limits)
        flag_bits = np.array([bits.get(flag, 0) for flag in LIMITER_BIT_FLAGS], np.uint32)
        start = np.ascontiguousarray(np.concatenate([start_state.q, start_state.dq, start_state.ddq]), np.float64)
        self._start_state = start_state
        handle = c_void_p()
        _check(self._lib.ep_joint_sender_create(
            byref(self._params), _ptr(flag_bits, c_uint32), _ptr(start, c_double), float(start_width), int(max_ticks),
            int(capacity), _ptr(self.q_c, c_double), _ptr(self.widths, c_double), _ptr(self.masks, c_uint32),
            _ptr(self.lateness, c_double), _ptr(self.held, c_uint8), byref(handle)), "create")
        self._handle = handle
        self._synced = 0
        self._taken: set[int] = set()
        self._row_state = np.zeros(_STATE)
        self._row_ref = np.zeros(N_JOINTS)
        self.t0 = 0.0
        self.error: BaseException | None = None

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.ep_joint_sender_destroy(handle)
            self._handle = None

    def start(self, delay_s: float) -> None:
        """Start the sender thread; OSError when SCHED_FIFO or mlockall is not permitted (as Ticker.start)."""
        t0 = c_double(0.0)
        cpu = -1 if self.cpu is None else int(self.cpu)
        status = self._lib.ep_joint_sender_start(self._handle, float(delay_s), int(self.priority or 0), float(self.spin_s),
                                                 cpu, int(self.lock_memory), byref(t0))
        if status == PERMISSION:
            raise PermissionError(f"SCHED_FIFO priority {self.priority} or mlockall not permitted for the native sender thread")
        if status == 5 and self.cpu is not None:
            raise OSError(f"cannot pin the native sender thread to CPU {self.cpu} (this machine has {os.cpu_count()} CPUs)")
        _check(status, "start")
        self.t0 = t0.value  # CLOCK_MONOTONIC seconds = time.monotonic() on Linux

    @property
    def next_index(self) -> int:
        return int(self._lib.ep_joint_sender_sent(self._handle))

    sent = next_index

    @property
    def running(self) -> bool:
        return bool(self._lib.ep_joint_sender_running(self._handle))

    def check(self) -> None:
        """The native thread raises nothing; kept for Ticker's interface."""

    def push(self, row: Row) -> bool:
        """Queue the planner's next row; False if the sender already sent a held row at its index."""
        state = np.concatenate([row.state.q, row.state.dq, row.state.ddq])
        ref = None if row.ref is None else np.ascontiguousarray(row.ref, np.float64)
        accepted = c_int32(0)
        _check(self._lib.ep_joint_sender_push(self._handle, int(row.index), _ptr(state, c_double),
                                              None if ref is None else _ptr(ref, c_double), float(row.width),
                                              int(row.mask), byref(accepted)), f"push row {row.index}")
        return bool(accepted.value)

    def _row(self, index: int) -> tuple[Row, bool]:
        has_ref, width, mask, held = c_int32(0), c_double(0.0), c_uint32(0), c_int32(0)
        _check(self._lib.ep_joint_sender_row(self._handle, int(index), _ptr(self._row_state, c_double),
                                             _ptr(self._row_ref, c_double), byref(has_ref), byref(width), byref(mask),
                                             byref(held)), f"row {index}")
        s = self._row_state.copy()
        state = LimiterState(_frozen(s[:N_JOINTS]), _frozen(s[N_JOINTS:2 * N_JOINTS]), _frozen(s[2 * N_JOINTS:]))
        ref = self._row_ref.copy() if has_ref.value else None
        return Row(int(index), state.q, width.value, state, ref, int(mask.value)), bool(held.value)

    def taken_over(self, index: int) -> Row | None:
        """The held row sent at ``index``, handed to the planner once; None if there is none."""
        if index >= self.next_index or index in self._taken or not self.held[index]:
            return None
        self._taken.add(index)
        row, _held = self._row(index)
        return row

    def quiet(self, need_s: float = 0.0) -> None:
        """Nothing to keep off: the native sender does not need the GIL."""

    def wait_sent(self, count: int) -> None:
        """Sleep until ``count`` ticks went out (the planner's cue to observe the next step)."""
        while self.next_index < count and self.running:
            due = self.t0 + count * DT_S
            time.sleep(max(due - time.monotonic(), 0.0) + _POLL_S)

    def sync_plant(self) -> None:
        """Apply the commands sent since the last call to the plant, in order."""
        sent = self.next_index
        for index in range(self._synced, sent):
            self.plant.apply_command(self.q_c[index], float(self.widths[index]))
        self._synced = sent

    def finish(self, timeout_s: float) -> None:
        """The planner pushed its last row: let the queued rows go out, then end the thread."""
        self._lib.ep_joint_sender_finish(self._handle)
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.001)
        self._lib.ep_joint_sender_stop(self._handle)
        self.sync_plant()

    def stop(self) -> None:
        """End now (the planner failed)."""
        self._lib.ep_joint_sender_stop(self._handle)

    @property
    def last_state(self) -> LimiterState:
        """The limiter state after the last tick sent."""
        sent = self.next_index
        if sent == 0:
            return self._start_state
        return self._row(sent - 1)[0].state
