"""Adversarial policies: numpy objects implementing the Policy protocol, one benign and one per way
a learned policy or its worker goes wrong. The control-loop tests drive the runtime with them (real
inputs, not mocks), and `edgeperc policy sim --adversary NAME` runs one in the MuJoCo loop to show
the guard and the watchdog at work.

Each returns (16, 8) chunks: joint deltas relative to the observation's q, plus a gripper width.
The step of the observation is ``round(time_s / 0.1)`` (10 Hz), so absolute schedules line up.
"""

from __future__ import annotations

import time

import numpy as np
from edgeperc.runtime.policy.policies import PolicyInput

H, A = 16, 8
READY = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])  # Franka "ready" pose
PERIOD_S = 0.1
# Which joints the benign sine moves, and how much of its amplitude each gets.
SINE_SHAPE = np.array([1.0, 0.5, 0.0, 0.5, 0.0, 0.5, 1.0])


def sine_q(step: np.ndarray | int, amp: float = 0.3, period_s: float = 4.0) -> np.ndarray:
    """(..., 7) the benign trajectory at control step(s) ``step``: READY + a slow sine."""
    t = np.asarray(step, dtype=np.float64) * PERIOD_S
    return READY + amp * np.sin(2 * np.pi * t / period_s)[..., None] * SINE_SHAPE


def _chunk(q_targets: np.ndarray, q_obs: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    out = np.empty((H, A))
    out[:, :7] = q_targets - q_obs
    out[:, 7] = width
    return out


class Counting:
    """Counts calls (the loop's warm-up call is call 0)."""

    calls = 0

    def _next_call(self) -> int:
        self.calls += 1
        return self.calls - 1


class SinePolicy(Counting):
    """Well-behaved: the absolute sine schedule for the chunk's steps, gripper half open."""

    def __init__(self, amp: float = 0.3, period_s: float = 4.0) -> None:
        self.amp, self.period_s = amp, period_s

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        steps = round(obs.time_s / PERIOD_S) + np.arange(H)
        return _chunk(sine_q(steps, self.amp, self.period_s), obs.q_rad, 0.04)


class RandomPolicy(Counting):
    """Uniform noise: deltas in +-scale rad, widths in [-0.05, 0.15] m (outside the hand's range too)."""

    def __init__(self, seed: int, scale: float = 0.5) -> None:
        self.rng = np.random.default_rng(seed)
        self.scale = scale

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        out = self.rng.uniform(-self.scale, self.scale, (H, A))
        out[:, 7] = self.rng.uniform(-0.05, 0.15, H)
        return out


class HugePolicy(Counting):
    """Finite but absurd: +-1e6 rad deltas, 1e3 m widths."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        out = self.rng.choice([-1e6, 1e6], size=(H, A))
        out[:, 7] = 1e3
        return out


class NanBurstPolicy(SinePolicy):
    """The benign sine, except ``burst`` calls out of every ``every`` return NaN/Inf: alternately a
    whole chunk of NaN and one poisoned entry (a partial NaN is still a broken network)."""

    def __init__(self, every: int = 40, burst: int = 8, start: int = 20) -> None:
        super().__init__()
        self.every, self.burst, self.start = every, burst, start

    def infer(self, obs: PolicyInput) -> np.ndarray:
        call = self.calls
        out = super().infer(obs)
        phase = call - self.start
        if phase >= 0 and phase % self.every < self.burst:
            if call % 2:
                out[:] = np.nan
            else:
                out[call % H, call % 7] = np.inf
        return out


class DriftPolicy(Counting):
    """Always a bit further along one joint: every action asks ``rate`` rad per step more than the
    q it saw, so the arm creeps to the joint limit (or out of the workspace) and keeps pushing."""

    def __init__(self, joint: int, rate_rad_per_step: float) -> None:
        self.joint, self.rate = joint, rate_rad_per_step

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        targets = np.repeat(obs.q_rad[None], H, axis=0)
        targets[:, self.joint] += self.rate * np.arange(1, H + 1)
        return _chunk(targets, obs.q_rad, 0.04)


class OscillationPolicy(Counting):
    """A square wave of +-amp about READY on one joint, flipping every ``half_period_steps``.
    With one step per half period it is the Nyquist wave of a 10 Hz policy (5 Hz): at a given
    amplitude the fastest, hence the highest acceleration and jerk demand a 10 Hz policy can make."""

    def __init__(self, joint: int, amp_rad: float, half_period_steps: int = 1) -> None:
        self.joint, self.amp, self.half = joint, amp_rad, half_period_steps

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        steps = round(obs.time_s / PERIOD_S) + np.arange(H)
        sign = np.where((steps // self.half) % 2 == 0, 1.0, -1.0)
        targets = np.repeat(READY[None], H, axis=0)
        targets[:, self.joint] += self.amp * sign
        return _chunk(targets, obs.q_rad, 0.04)


class StallPolicy(SinePolicy):
    """The benign sine, but call ``stall_call`` sleeps ``stall_s`` first (past the deadline)."""

    def __init__(self, stall_call: int, stall_s: float) -> None:
        super().__init__()
        self.stall_call, self.stall_s = stall_call, stall_s

    def infer(self, obs: PolicyInput) -> np.ndarray:
        if self.calls == self.stall_call:
            time.sleep(self.stall_s)
        return super().infer(obs)


class DyingPolicy(SinePolicy):
    """The benign sine until call ``die_call``, which raises."""

    def __init__(self, die_call: int) -> None:
        super().__init__()
        self.die_call = die_call

    def infer(self, obs: PolicyInput) -> np.ndarray:
        if self.calls == self.die_call:
            self.calls += 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().infer(obs)


class ShapePolicy(Counting):
    """Returns zeros of a fixed (wrong or right) shape."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def infer(self, obs: PolicyInput) -> np.ndarray:
        self._next_call()
        return np.zeros(self.shape)


ADVERSARIES = ("random", "huge", "nan-burst", "drift", "oscillation", "stall", "die")


def make_adversary(name: str, seed: int = 0):
    """The named adversary with the settings the tests use (see each class)."""
    from edgeperc.errors import ConfigError

    factories = {
        "random": lambda: RandomPolicy(seed),
        "huge": lambda: HugePolicy(seed),
        "nan-burst": lambda: NanBurstPolicy(),
        "drift": lambda: DriftPolicy(joint=6, rate_rad_per_step=0.05),
        "oscillation": lambda: OscillationPolicy(joint=1, amp_rad=0.3),
        "stall": lambda: StallPolicy(stall_call=20, stall_s=1.3),
        "die": lambda: DyingPolicy(die_call=30),
    }
    if name not in factories:
        raise ConfigError(f"--adversary '{name}' must be one of {', '.join(ADVERSARIES)}")
    return factories[name]()
