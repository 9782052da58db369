"""MuJoCo closed loop for a Panda-like arm on a table: the robot side of policy tests.

One physics tick is 1 ms, the rate of Franka's realtime interface. ``apply_command`` is that tick;
``step`` is one policy period (10 Hz by default) that linearly up-samples the previous target to
the new one at 1 kHz, as a runtime would between policy outputs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.sim.gl import import_mujoco
from edgeperc.sim.raster import rasterize_scene

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

log = logging.getLogger(__name__)
# Imported here, not lazily: MuJoCo fixes its GL platform at its first import, so the headless
# default must be in place before any later `import mujoco` in the caller's code.
mujoco = import_mujoco()

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
HOME_Q_RAD = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])  # Franka "ready"
HOME_Q_RAD.setflags(write=False)
CUBE_HALF_M = 0.02  # must match the cube geoms in panda_table.xml
GRIPPER_MAX_WIDTH_M = 0.08
TABLE_Z_M = 0.0
CUBES = ("cube_red", "cube_blue")  # the order of every per-cube array (demos' cube_pos, cube_yaw_rad)
Task = Literal["pick", "stack"]


def default_scene_path() -> Path:
    """The packaged MJCF (edgeperc/sim/assets/panda_table.xml)."""
    return Path(str(resources.files("edgeperc.sim") / "assets" / "panda_table.xml"))


class EnvConfig(BaseModel):
    """What an episode looks like: policy rate, image, and where reset() may put the cubes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_hz: float = Field(10.0, gt=0, le=1000, description="policy rate; step() lasts 1/control_hz s")
    image_hw: tuple[int, int] = (96, 96)
    camera: str = Field(
        "workspace",
        description="MJCF camera of Observation.image: workspace (the cube region fills the frame, a cube is "
        "8-13 px at 96 px; the policy's camera), front (whole arm, cube ~3-4 px), top, wrist",
    )
    renderer: Literal["auto", "mujoco", "raster"] = Field(
        "auto", description="auto: MuJoCo's GL renderer, or the numpy/OpenCV raster where no GL works"
    )
    cube_x_m: tuple[float, float] = (0.40, 0.62)
    cube_y_m: tuple[float, float] = (-0.18, 0.18)
    cube_yaw_rad: tuple[float, float] = (-np.pi / 4, np.pi / 4)
    min_cube_gap_m: float = Field(0.10, ge=0.06, description="centre distance between the two cubes")
    settle_s: float = Field(0.05, ge=0, le=2, description="physics run after reset so contacts come to rest")

    @model_validator(mode="after")
    def _check(self) -> EnvConfig:
        if min(self.image_hw) < 8 or max(self.image_hw) > 256:
            raise ValueError(f"image_hw {self.image_hw}: each side must be in [8, 256] (offscreen buffer is 256)")
        for name in ("cube_x_m", "cube_y_m", "cube_yaw_rad"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: low {lo} > high {hi}")
        return self


@dataclass(frozen=True)
class Observation:
    """What a policy sees at one control step."""

    q_rad: np.ndarray  # (7,) float64 measured arm joint positions
    gripper_width_m: float  # distance between the finger pads, 0-0.08
    image: np.ndarray | None  # (H, W, 3) uint8 RGB from config.camera (default "workspace"), None when not rendered
    time_s: float


class PandaTableEnv:
    """Panda-like arm, gripper, table, red and blue cube. Not thread-safe; one per process/thread."""

    def __init__(self, config: EnvConfig | None = None, scene_path: Path | str | None = None):
        self.mujoco = mujoco  # for callers (IK) that need the same module the env was built with
        self.config = config or EnvConfig()
        mj = mujoco
        self.model = mj.MjModel.from_xml_path(str(scene_path or default_scene_path()))
        self.data = mj.MjData(self.model)
        self.scratch = mj.MjData(self.model)  # for FK/IK queries that must not touch the live state
        self.physics_dt_s = float(self.model.opt.timestep)
        ticks = round(1.0 / (self.config.control_hz * self.physics_dt_s))
        if ticks < 1 or abs(ticks * self.physics_dt_s * self.config.control_hz - 1.0) > 1e-6:
            raise ConfigError(
                f"control_hz {self.config.control_hz} must divide the physics rate {1 / self.physics_dt_s:g} Hz"
            )
        self.ticks_per_step = ticks
        self.arm_qpos = np.array([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self.arm_dof = np.array([self.model.joint(j).dofadr[0] for j in ARM_JOINTS])
        self.q_min_rad = self.model.jnt_range[[self.model.joint(j).id for j in ARM_JOINTS], 0].copy()
        self.q_max_rad = self.model.jnt_range[[self.model.joint(j).id for j in ARM_JOINTS], 1].copy()
        self._finger_qpos = [self.model.joint(f).qposadr[0] for f in ("finger_left", "finger_right")]
        self._cube_qpos = {c: self.model.joint(c).qposadr[0] for c in CUBES}
        self._cube_geom = {c: self.model.geom(c).id for c in CUBES}
        self._finger_geoms = {self.model.geom("finger_left_pad").id, self.model.geom("finger_right_pad").id}
        self.tcp_site = self.model.site("tcp").id
        self._renderer = None
        self._extra_renderers: dict[tuple[int, int], object] = {}
        self.render_backend: str | None = None  # "mujoco" or "raster" once the first frame is drawn
        self._q_cmd = HOME_Q_RAD.copy()
        self._gripper_cmd_m = GRIPPER_MAX_WIDTH_M

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int, render: bool = True) -> Observation:
        """Home pose, open hand, cubes at random reachable poses; the same seed gives the same state."""
        mj = mujoco
        rng = np.random.default_rng(seed)
        mj.mj_resetDataKeyframe(self.model, self.data, self.model.key("home").id)
        for name, (x, y, yaw) in zip(CUBES, sample_cube_poses(rng, self.config)):
            adr = self._cube_qpos[name]
            self.data.qpos[adr : adr + 3] = (x, y, TABLE_Z_M + CUBE_HALF_M)
            self.data.qpos[adr + 3 : adr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        self._q_cmd = HOME_Q_RAD.copy()
        self._gripper_cmd_m = GRIPPER_MAX_WIDTH_M
        mj.mj_forward(self.model, self.data)
        for _ in range(round(self.config.settle_s / self.physics_dt_s)):
            self.apply_command(self._q_cmd, self._gripper_cmd_m)
        self.data.time = 0.0
        return self.observe(render=render)

    def apply_command(self, q_cmd_rad: np.ndarray, gripper_width_m: float) -> None:
        """One 1 ms physics tick with joint-position targets (7,) rad and a gripper width (m).

        Targets outside the joint ranges are clipped by the actuators' ctrlrange, as a servo would.
        """
        q_cmd = self._checked(q_cmd_rad, gripper_width_m)
        self._tick(q_cmd, float(gripper_width_m))

    def step(self, q_target_rad: np.ndarray, gripper_width_m: float, render: bool = True) -> Observation:
        """One policy period: ramp from the last command to these targets over 1/control_hz s at 1 kHz."""
        q_target = self._checked(q_target_rad, gripper_width_m)
        q_start, w_start = self._q_cmd, self._gripper_cmd_m
        n = self.ticks_per_step
        for k in range(1, n + 1):
            a = k / n
            self._tick(q_start + a * (q_target - q_start), w_start + a * (gripper_width_m - w_start))
        return self.observe(render=render)

    @staticmethod
    def _checked(q_rad: np.ndarray, gripper_width_m: float) -> np.ndarray:
        q = np.array(q_rad, dtype=np.float64)  # a copy: the env keeps it as the last command
        if q.shape != (7,) or not np.isfinite(q).all() or not np.isfinite(gripper_width_m):
            raise InvalidInputError(f"need 7 finite joint targets and a finite width, got {q!r}, {gripper_width_m!r}")
        return q

    def _tick(self, q_cmd: np.ndarray, gripper_width_m: float) -> None:
        ctrl = self.data.ctrl
        ctrl[:7] = q_cmd
        ctrl[7] = min(max(gripper_width_m, 0.0), GRIPPER_MAX_WIDTH_M) / 2.0
        self._q_cmd = q_cmd
        self._gripper_cmd_m = gripper_width_m
        mujoco.mj_step(self.model, self.data)

    def observe(self, render: bool = True) -> Observation:
        return Observation(
            q_rad=self.data.qpos[self.arm_qpos].copy(),
            gripper_width_m=self.gripper_width_m(),
            image=self.render() if render else None,
            time_s=float(self.data.time),
        )

    # ------------------------------------------------------------------ state queries
    @property
    def q_cmd_rad(self) -> np.ndarray:
        """(7,) the last joint-position command applied."""
        return self._q_cmd.copy()

    def gripper_width_m(self) -> float:
        return float(sum(self.data.qpos[a] for a in self._finger_qpos))

    def cube_position(self, name: str) -> np.ndarray:
        """(3,) world position of ``cube_red`` or ``cube_blue``."""
        adr = self._cube_qpos[name]
        return self.data.qpos[adr : adr + 3].copy()

    def cube_yaw(self, name: str) -> float:
        """Rotation about world z (rad) of a cube that stands on a face."""
        w, x, y, z = self.data.qpos[self._cube_qpos[name] + 3 : self._cube_qpos[name] + 7]
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Live TCP position (3,) and rotation matrix (3, 3) in the base/world frame."""
        return self.data.site_xpos[self.tcp_site].copy(), self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def ee_pose(self, q_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MuJoCo FK of the TCP for joint angles (7,): position (3,), rotation (3, 3). Live state untouched."""
        d = self.scratch
        d.qpos[:] = self.data.qpos
        d.qpos[self.arm_qpos] = np.asarray(q_rad, dtype=np.float64)
        self.mujoco.mj_kinematics(self.model, d)
        return d.site_xpos[self.tcp_site].copy(), d.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def ee_position(self, q_rad: np.ndarray) -> np.ndarray:
        """(3,) TCP position from MuJoCo for joint angles (7,), to cross-check other kinematics."""
        return self.ee_pose(q_rad)[0]

    def _contacts(self, geom: int) -> set[int]:
        """Geoms touching ``geom`` now."""
        pairs = self.data.contact.geom[: self.data.ncon]  # (ncon, 2)
        return {int(b) for a, b in pairs if a == geom} | {int(a) for a, b in pairs if b == geom}

    def is_success(self, task: Task) -> bool:
        """pick: red cube's bottom >= 5 cm above the table and held by both fingers.
        stack: red cube resting on the blue cube (centred within half an edge, released, at rest)."""
        red, blue = self.cube_position("cube_red"), self.cube_position("cube_blue")
        red_touch = self._contacts(self._cube_geom["cube_red"])
        if task == "pick":
            lifted = red[2] - CUBE_HALF_M - TABLE_Z_M >= 0.05
            return bool(lifted and self._finger_geoms <= red_touch)
        if task == "stack":
            centred = np.linalg.norm(red[:2] - blue[:2]) < CUBE_HALF_M
            on_top = centred and abs(red[2] - blue[2] - 2 * CUBE_HALF_M) < 0.005
            blue_on_table = abs(blue[2] - TABLE_Z_M - CUBE_HALF_M) < 0.005
            released = not (self._finger_geoms & red_touch)
            red_adr = self.model.joint("cube_red").dofadr[0]
            at_rest = np.linalg.norm(self.data.qvel[red_adr : red_adr + 3]) < 0.02
            return bool(on_top and blue_on_table and released and at_rest)
        raise InvalidInputError(f"task must be 'pick' or 'stack', got {task!r}")

    # ------------------------------------------------------------------ images
    def render(self, camera: str | None = None, hw: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the current state from ``camera`` (default config.camera), at
        ``hw`` (default config.image_hw; at most 256 x 320, the MJCF's offscreen buffer)."""
        camera = camera or self.config.camera
        h, w = hw or self.config.image_hw
        if not (8 <= h <= 256 and 8 <= w <= 320):
            raise InvalidInputError(f"render size {h}x{w}: height must be in [8, 256] and width in [8, 320]")
        if self.render_backend is None:
            self._open_renderer()
        if self.render_backend == "mujoco":
            renderer = self._renderer if (h, w) == tuple(self.config.image_hw) else self._extra_renderer(h, w)
            renderer.update_scene(self.data, camera)
            return renderer.render().copy()
        return rasterize_scene(self.model, self.data, camera, h, w)

    def _extra_renderer(self, h: int, w: int):
        """A renderer at another size than the policy's camera (kept: videos render every step)."""
        key = (h, w)
        if key not in self._extra_renderers:
            self._extra_renderers[key] = self.mujoco.Renderer(self.model, h, w)
        return self._extra_renderers[key]

    def _open_renderer(self) -> None:
        h, w = self.config.image_hw
        if self.config.renderer in ("auto", "mujoco"):
            try:
                self._renderer = self.mujoco.Renderer(self.model, h, w)
                self.render_backend = "mujoco"
                return
            except Exception as err:  # GL platform missing or broken: any failure means "no GL here"
                if self.config.renderer == "mujoco":
                    raise
                log.warning(
                    "MuJoCo GL renderer unavailable (MUJOCO_GL=%s: %s); using the raster fallback. "
                    "Headless, set MUJOCO_GL=egl (or osmesa) before mujoco is first imported.",
                    os.environ.get("MUJOCO_GL", "<unset>"), err,
                )  # fmt: skip
        self.render_backend = "raster"

    def close(self) -> None:
        for renderer in self._extra_renderers.values():
            renderer.close()
        self._extra_renderers = {}
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.render_backend = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_cube_poses(rng: np.random.Generator, config: EnvConfig) -> list[tuple[float, float, float]]:
    """[(x, y, yaw) red, (x, y, yaw) blue] inside the config's region, at least min_cube_gap_m apart."""
    poses: list[tuple[float, float, float]] = []
    for _ in range(10_000):
        if len(poses) == 2:
            return poses
        x, y = rng.uniform(*config.cube_x_m), rng.uniform(*config.cube_y_m)
        yaw = rng.uniform(*config.cube_yaw_rad)
        if all(np.hypot(x - px, y - py) >= config.min_cube_gap_m for px, py, _ in poses):
            poses.append((float(x), float(y), float(yaw)))
    raise ConfigError(
        f"cannot place two cubes {config.min_cube_gap_m} m apart in x {config.cube_x_m}, y {config.cube_y_m}"
    )
