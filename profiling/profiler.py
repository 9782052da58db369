"""Run a prepared pipeline: warm-up, timed iterations (stage timer + end to end), peers
interleaved on the same inputs, probes sampled in the background. Pure measurement; the
report module turns the result into files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from edgeperc.profiling.latency import LatencySummary, summarise_latency
from edgeperc.profiling.pipelines import PipelineRunner
from edgeperc.profiling.probes import Probe, ProbeRecord, ProbeSampler, energy_per_inference, summarise_probes
from edgeperc.profiling.timer import NullTimer, StageTimer

END_TO_END = "end_to_end"


@dataclass
class ProfileRun:
    """Everything one profile measured. Times in ms unless the name says otherwise."""

    pipeline: str
    iterations: int
    warmup: int
    stages: tuple[str, ...]
    stage_ms: dict[str, np.ndarray]  # {stage: (N,)}
    total_ms: np.ndarray  # (N,) end to end, begin -> end of each iteration
    begin_s: np.ndarray  # (N,) start of each iteration, seconds since the first
    wall_s: float  # the timed loop, peers included
    peers_ms: dict[str, np.ndarray] = field(default_factory=dict)
    probe_records: dict[str, ProbeRecord] = field(default_factory=dict)
    window_ns: tuple[int, int] = (0, 0)  # the timed loop on the perf_counter_ns clock
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def other_ms(self) -> np.ndarray:
        """(N,) end-to-end time outside the named stages (call overhead, result assembly)."""
        named = np.sum([self.stage_ms[s] for s in self.stages], axis=0) if self.stages else 0.0
        return np.clip(self.total_ms - named, 0.0, None)

    def summary(self) -> LatencySummary:
        # With peers interleaved the wall clock also holds their time: throughput is then 1000 / mean.
        wall = None if self.peers_ms else self.wall_s
        return summarise_latency(self.total_ms, wall_s=wall)

    def stage_summaries(self) -> dict[str, LatencySummary]:
        return {name: summarise_latency(values) for name, values in self.stage_ms.items()}

    def peer_summaries(self) -> dict[str, LatencySummary]:
        return {name: summarise_latency(values) for name, values in self.peers_ms.items()}

    def probes(self) -> dict[str, dict]:
        return summarise_probes(self.probe_records, *self.window_ns)

    def energy(self) -> dict[str, Any]:
        return energy_per_inference(self.probe_records, *self.window_ns, float(np.mean(self.total_ms)))


def run_profile(
    pipeline: str,
    runner: PipelineRunner,
    iterations: int,
    warmup: int = 2,
    probes: Iterable[Probe] = (),
    probe_interval_s: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
    on_iteration: Callable[[int], None] | None = None,
) -> ProfileRun:
    """Warm up ``warmup`` times (ours and peers, untimed), then time ``iterations`` runs.

    Per iteration: our run inside the stage timer, then each peer on the same input (A B A B ...,
    so drift and other load hit both alike). ``progress(done, total)`` is called after each
    step; ``on_iteration(i)`` after each timed iteration (tests use it to break a probe mid-run).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    peers = runner.peers()
    sampler = ProbeSampler(probes, probe_interval_s)
    timer = StageTimer(runner.stages, iterations)
    peer_ns = {name: np.zeros(iterations, np.int64) for name in peers}
    clock = time.perf_counter_ns
    total_steps = warmup + iterations
    sampler.start()
    try:
        null = NullTimer(runner.stages)
        for index in range(warmup):
            runner.run(index, null)
            for call in peers.values():
                call(index)
            if progress:
                progress(index + 1, total_steps)
        t0 = clock()  # the probe window holds the edge samples, so counters cover the whole loop
        sampler.sample_now()
        loop_start = clock()
        for index in range(iterations):
            timer.begin()
            runner.run(index, timer)
            timer.end()
            for name, call in peers.items():
                start = clock()
                call(index)
                peer_ns[name][index] = clock() - start
            if on_iteration:
                on_iteration(index)
            if progress:
                progress(warmup + index + 1, total_steps)
        loop_end = clock()
        sampler.sample_now()
        t1 = clock()
    finally:
        sampler.stop()
    return ProfileRun(
        pipeline=pipeline, iterations=iterations, warmup=warmup, stages=tuple(runner.stages),
        stage_ms=timer.stage_ms(), total_ms=timer.total_ms(), begin_s=timer.begin_s(), wall_s=(loop_end - loop_start) / 1e9,
        peers_ms={name: values / 1e6 for name, values in peer_ns.items()}, probe_records=sampler.records,
        window_ns=(t0, t1), info=dict(runner.info), notes=list(runner.notes), outputs=runner.outputs_summary(),
    )
