"""The robot side of the control loop: a plant protocol, a perfect-tracking plant for tests, and an
adapter for edgeperc.sim's MuJoCo table (or anything with the same observe/apply_command)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
from edgeperc.runtime.policy.limits import DT_S, N_JOINTS

from edgeperc.errors import InvalidInputError


class PlantObservation(NamedTuple):
    """q_rad (7,) measured joints, gripper_width_m, image (H, W, 3) uint8 or None, time_s: when it
    was measured (for a camera frame: when it was captured). The loop's clock starts at the first
    observation's time_s and advances one control period per step; the watchdog calls an
    observation stale when its time_s falls too far behind."""

    q_rad: np.ndarray
    gripper_width_m: float
    image: np.ndarray | None
    time_s: float


class Plant(Protocol):
    """What the loop drives: one ``apply_command`` is one 1 ms tick of the realtime interface."""

    def observe(self) -> PlantObservation: ...

    def apply_command(self, q_cmd_rad: np.ndarray, gripper_width_m: float) -> None: ...


class KinematicPlant:
    """Perfect tracking without physics: the measured q is the last command, the gripper width the
    last width command clamped to [0, max]. The clock counts ticks. ``image_hw`` None: no image
    (numpy policies need none); else a constant mid-grey frame for image-taking models."""

    def __init__(
        self,
        q_start_rad: np.ndarray,
        gripper_width_m: float = 0.08,
        image_hw: tuple[int, int] | None = None,
        gripper_max_m: float = 0.08,
    ) -> None:
        q = np.array(q_start_rad, dtype=np.float64)
        if q.shape != (N_JOINTS,) or not np.isfinite(q).all():
            raise InvalidInputError(f"q_start_rad must be ({N_JOINTS},) finite values, got {q_start_rad!r}")
        self.q_rad = q
        self.gripper_max_m = float(gripper_max_m)
        self.gripper_width_m = min(max(float(gripper_width_m), 0.0), self.gripper_max_m)
        self.ticks = 0
        self._image = None if image_hw is None else np.full((*image_hw, 3), 128, np.uint8)

    def observe(self) -> PlantObservation:
        return PlantObservation(self.q_rad.copy(), self.gripper_width_m, self._image, self.ticks * DT_S)

    def apply_command(self, q_cmd_rad: np.ndarray, gripper_width_m: float) -> None:
        self.q_rad = np.array(q_cmd_rad, dtype=np.float64)
        self.gripper_width_m = min(max(float(gripper_width_m), 0.0), self.gripper_max_m)
        self.ticks += 1


class EnvPlant:
    """Adapts an env with ``observe(render) -> obs(q_rad, gripper_width_m, image, time_s)`` and
    ``apply_command(q, width)`` (edgeperc.sim.env.PandaTableEnv) to the Plant protocol."""

    def __init__(self, env: Any, render: bool = True) -> None:
        self.env = env
        self.render = render

    def observe(self) -> PlantObservation:
        obs = self.env.observe(render=self.render)
        return PlantObservation(np.asarray(obs.q_rad, np.float64), float(obs.gripper_width_m), obs.image, float(obs.time_s))

    def apply_command(self, q_cmd_rad: np.ndarray, gripper_width_m: float) -> None:
        self.env.apply_command(q_cmd_rad, gripper_width_m)
