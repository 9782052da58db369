"""Runs policy inference in a worker thread so that it never blocks the control loop.

One job at a time: the loop submits an observation when the worker is idle and polls at every
control step. ONNX Runtime releases the GIL while it runs, so a thread is enough for the ONNX
policy - provided the thread does nothing else: a policy with ``prepare``/``infer_prepared``
(OnnxPolicy) has its Python half (image normalisation, feed checks) run by ``submit`` on the
loop's thread, and the worker thread only makes the ONNX Runtime call. A pure-Python policy shares
the GIL with the loop (the wall-clock benchmark shows what that costs in tick jitter). ``nice``
lowers the worker thread's CPU priority (Linux), so that on few cores inference yields to the
1 kHz ticks; kept moderate, since a starved thread that holds the GIL stalls everyone.

Timing. ``wall``: a result is usable at the first control step after it finished; how long a job
has run is wall time. ``sim``: the loop's clock is simulated; a result's latency is its measured
wall time (x ``latency_scale``) or ``fixed_latency_s``, and it becomes usable at
``obs_step + max(1, ceil(latency / period))``. The loop never runs ahead of a job in wall time
(it waits at a step until the job finished or has run as long in wall time as in sim time), so a
stalling policy is seen in sim time exactly as long as it stalls. With a fixed latency and a
policy faster than it, runs are deterministic.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from edgeperc.runtime.policy.policies import Policy, PolicyInput

Timing = Literal["sim", "wall"]


@dataclass(frozen=True)
class Job:
    """One observation to infer on; ``q_obs`` anchors the chunk's joint deltas."""

    obs_step: int
    obs_time_s: float
    q_obs: np.ndarray
    policy_input: PolicyInput


@dataclass(frozen=True)
class Result:
    """A finished job: ``output`` (raw, unchecked) or ``error`` (the policy raised)."""

    job: Job
    output: object
    error: str | None
    inference_s: float  # wall time of the policy call
    latency_s: float  # latency on the loop's clock (sim: measured x scale or fixed; wall: measured)
    arrival_step: int  # first control step the result is usable at


class InferenceWorker:
    """A daemon thread calling ``policy.infer``; a policy that raises kills the worker (reported
    once as a Result with ``error``), one that hangs is reported by ``poll`` as a long silence."""

    def __init__(
        self,
        policy: Policy,
        period_s: float,
        timing: Timing = "sim",
        fixed_latency_s: float | None = None,
        latency_scale: float = 1.0,
        nice: int = 0,
    ) -> None:
        self.policy = policy
        self.nice = nice
        self.period_s = period_s
        self.timing = timing
        self.fixed_latency_s = fixed_latency_s
        self.latency_scale = latency_scale
        # A policy with prepare/infer_prepared (OnnxPolicy) has its Python half run on the caller's
        # thread at submit: the worker thread then holds the GIL only to start and end the call.
        self._split = callable(getattr(policy, "prepare", None)) and callable(getattr(policy, "infer_prepared", None))
        self._jobs: queue.Queue[tuple[Job, object, float] | None] = queue.Queue(maxsize=1)
        self._done = threading.Event()
        self._outcome: tuple[object, str | None, float] | None = None
        self._pending: Job | None = None
        self._submitted_wall = 0.0
        self._dead = False
        self._thread = threading.Thread(target=self._serve, name="policy-inference", daemon=True)
        self._thread.start()

    def _lower_priority(self) -> None:
        """Linux: raise this thread's nice value by ``nice`` (always allowed), so the 1 kHz ticks win
        the CPU over inference when cores are short. Elsewhere (per-process priorities) nothing."""
        if not self.nice or not sys.platform.startswith("linux"):
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
        except OSError:
            pass

    def _serve(self) -> None:
        self._lower_priority()
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, payload, prepare_s = item
            begin = time.perf_counter()
            try:
                if self._split:
                    output, error = self.policy.infer_prepared(payload), None  # type: ignore[attr-defined]
                else:
                    output, error = self.policy.infer(job.policy_input), None
            except BaseException as exc:  # noqa: BLE001 - any failure of the policy kills the worker, reported
                output, error = None, f"{type(exc).__name__}: {exc}"
            self._outcome = (output, error, prepare_s + time.perf_counter() - begin)
            self._done.set()
            if error is not None:
                return

    @property
    def idle(self) -> bool:
        """No job outstanding (in the loop's time) and the worker alive: a new one may be submitted."""
        return self._pending is None and not self._dead

    @property
    def alive(self) -> bool:
        return not self._dead and (self._thread.is_alive() or self._done.is_set())

    def submit(self, job: Job) -> None:
        if not self.idle:
            raise RuntimeError("the inference worker is busy or dead")  # a loop bug, not a user error
        self._pending = job
        self._done.clear()
        self._submitted_wall = begin = time.perf_counter()
        payload: object = None
        if self._split:
            try:
                payload = self.policy.prepare(job.policy_input)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - as if the policy raised on the worker: reported, worker ends
                self._outcome = (None, f"{type(exc).__name__}: {exc}", time.perf_counter() - begin)
                self._done.set()
                self._jobs.put(None)
                return
        self._jobs.put((job, payload, time.perf_counter() - begin))

    def poll(self, step: int) -> tuple[Result | None, float]:
        """At control step ``step``: (the result usable now, or None; seconds the pending job has run)."""
        job = self._pending
        if job is None:
            return None, 0.0
        ran_sim_s = (step - job.obs_step) * self.period_s
        if self.timing == "sim" and not self._done.is_set():
            ahead = ran_sim_s - (time.perf_counter() - self._submitted_wall)
            if ahead > 0.0:
                self._done.wait(ahead)
        if not self._done.is_set():
            if self.timing == "wall":
                return None, time.perf_counter() - self._submitted_wall
            return None, ran_sim_s
        output, error, inference_s = self._outcome  # type: ignore[misc]
        if self.timing == "wall":
            latency_s, arrival = inference_s, step
        else:
            latency_s = self.fixed_latency_s if self.fixed_latency_s is not None else inference_s * self.latency_scale
            arrival = max(job.obs_step + max(1, math.ceil(latency_s / self.period_s - 1e-9)), step)
            if arrival > step:
                return None, ran_sim_s
        self._pending = None
        if error is not None:
            self._dead = True
        return Result(job, output, error, inference_s, latency_s, arrival), 0.0

    def close(self, timeout_s: float = 0.1) -> None:
        """Ask the thread to finish; a hung policy is left behind (a daemon thread dies with the process)."""
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
