"""Action chunks -> one target per control step: latency compensation and temporal ensembling.

A policy maps the observation taken at control step ``t`` to a chunk of H actions, action ``i``
meant for step ``t + i``: 7 joint deltas relative to the q measured at ``t`` plus a gripper width.
Everything here is pure and immutable; the control loop owns one ``ChunkQueue`` value.

Latency compensation: a chunk that becomes usable at step ``t + d`` has its first ``d`` actions
dropped - they were meant for steps already executed. This is the measured arrival, not an
estimate of latency (LeRobot PR #4223 skipped 21 of 30 actions on a *predicted* delay and jumped
0.7 s ahead; the loop's blend-in after a (re)start bounds the effect of a large, real ``d``).

Ensembling (ACT's idea, franka-facts.md §4.4): every chunk that covers a step has a prediction for
it; they are averaged with weights exp(-age / tau), age = control steps by which the chunk's
observation is older than the newest covering chunk's. ``tau = 0`` uses the newest chunk only.
Unlike ACT's m = 0.01 (older weighs slightly more), newer weighs more here: with 100+ ms between
observation and use, the newest chunk is the best informed, and averaging alone already removes
most of the splice jump each new chunk brings (axol PR #191: 20-70 mrad yanks ~5x/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from edgeperc.runtime.policy.limits import N_JOINTS


class ChunkVerdict(str, Enum):
    """What became of one inference result."""

    ACCEPTED = "accepted"
    LATE = "late"  # its observation is older than the deadline, or no action is left for now or later
    NON_FINITE = "non_finite"  # any NaN/Inf: the whole chunk is refused (a partial NaN means a broken net)
    MALFORMED = "malformed"  # not a (chunk_length, action_dim) array of numbers
    WORKER_ERROR = "worker_error"  # the policy raised; the worker is dead

    def __str__(self) -> str:
        return self.value


def check_actions(actions: object, chunk_length: int, action_dim: int) -> tuple[np.ndarray | None, ChunkVerdict]:
    """A raw policy output -> ((chunk_length, action_dim) float64 copy, ACCEPTED) or (None, why not)."""
    try:
        array = np.array(actions, dtype=np.float64)
    except (TypeError, ValueError):
        return None, ChunkVerdict.MALFORMED
    if array.shape != (chunk_length, action_dim):
        return None, ChunkVerdict.MALFORMED
    if not np.isfinite(array).all():
        return None, ChunkVerdict.NON_FINITE
    return array, ChunkVerdict.ACCEPTED


def absolute_targets(actions: np.ndarray, q_obs_rad: np.ndarray) -> np.ndarray:
    """(H, 8) [joint deltas rad (7), gripper width m] + q at observation time (7,) -> (H, 8) absolute.

    Deltas are relative to the q measured when the observation was taken, not to the q when the chunk
    arrives: the arm has moved in between, and re-anchoring to the later q would shift the whole chunk.
    """
    targets = np.array(actions, dtype=np.float64)
    targets[:, :N_JOINTS] += np.asarray(q_obs_rad, dtype=np.float64)
    return targets


@dataclass(frozen=True)
class Chunk:
    """Absolute targets (n, 8) for steps ``start_step .. start_step + n - 1`` (read-only), from the
    observation taken at ``obs_step``. ``start_step - obs_step`` actions were dropped as elapsed."""

    obs_step: int
    start_step: int
    targets: np.ndarray

    @property
    def end_step(self) -> int:
        """First step this chunk no longer covers."""
        return self.start_step + len(self.targets)

    def covers(self, step: int) -> bool:
        return self.start_step <= step < self.end_step


def make_chunk(targets: np.ndarray, obs_step: int, arrival_step: int) -> Chunk | None:
    """Absolute targets (H, 8) of the observation at ``obs_step``, usable from ``arrival_step``:
    drop the first ``arrival_step - obs_step`` rows (already past). None when nothing is left."""
    dropped = max(arrival_step - obs_step, 0)
    kept = np.array(targets[dropped:], dtype=np.float64)
    if len(kept) == 0:
        return None
    kept.setflags(write=False)
    return Chunk(obs_step, obs_step + dropped, kept)


def ensemble_weights(ages_steps: np.ndarray, tau_steps: float) -> np.ndarray:
    """(N,) ages (>= 0, 0 = newest) -> (N,) weights summing to 1: exp(-age / tau); tau 0 = newest only."""
    ages = np.asarray(ages_steps, dtype=np.float64)
    if tau_steps <= 0.0:
        weights = (ages == ages.min()).astype(np.float64)
    else:
        weights = np.exp(-(ages - ages.min()) / tau_steps)
    return weights / weights.sum()


@dataclass(frozen=True)
class ChunkQueue:
    """The chunks that may still cover a step, oldest observation first. Immutable: ``add`` and
    ``prune`` return new queues."""

    chunks: tuple[Chunk, ...] = ()

    def add(self, chunk: Chunk) -> ChunkQueue:
        """Insert in observation order (a result can only be newer, but order is not assumed)."""
        kept = sorted((*self.chunks, chunk), key=lambda c: c.obs_step)
        return ChunkQueue(tuple(kept))

    def prune(self, step: int) -> ChunkQueue:
        """Drop chunks with no action for ``step`` or later."""
        kept = tuple(c for c in self.chunks if c.end_step > step)
        return self if len(kept) == len(self.chunks) else ChunkQueue(kept)

    def newest_obs_step(self) -> int | None:
        """Observation step of the newest chunk held (covering now or later), None when empty."""
        return self.chunks[-1].obs_step if self.chunks else None

    def target_at(self, step: int, tau_steps: float) -> np.ndarray | None:
        """(8,) ensembled absolute target for ``step``, or None when no chunk covers it (the queue
        ran dry: what to do then is the watchdog's decision, not a guess here)."""
        covering = [c for c in self.chunks if c.covers(step)]
        if not covering:
            return None
        if len(covering) == 1:
            return covering[0].targets[step - covering[0].start_step].copy()
        newest = max(c.obs_step for c in covering)
        ages = np.array([newest - c.obs_step for c in covering], dtype=np.float64)
        rows = np.stack([c.targets[step - c.start_step] for c in covering])
        base = rows[int(np.argmin(ages))]
        # newest + weighted deviations: chunks that agree give exactly their value (a held pose stays
        # bit-for-bit still, so the limiter can rest), where a plain weighted sum would round.
        return base + ensemble_weights(ages, tau_steps) @ (rows - base)


def chunk_age_s(queue: ChunkQueue, step: int, period_s: float) -> float:
    """Seconds since the newest held chunk's observation at ``step``; inf when the queue is empty."""
    newest = queue.newest_obs_step()
    return math.inf if newest is None else (step - newest) * period_s
