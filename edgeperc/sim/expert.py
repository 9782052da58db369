"""Scripted expert for ``pick`` and ``stack``: Cartesian waypoints → 10 Hz joint targets via DLS IK.

The expert reads privileged state (cube poses) from the simulator, moves a Cartesian reference
toward each waypoint at a bounded speed, solves IK for it from the previous command, and caps the
per-step joint change, so its targets are smooth enough to replay on a position-controlled arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgeperc.errors import InvalidInputError
from edgeperc.sim.env import (
    CUBE_HALF_M,
    CUBES,
    GRIPPER_MAX_WIDTH_M,
    HOME_Q_RAD,
    TABLE_Z_M,
    PandaTableEnv,
    Task,
)
from edgeperc.sim.ik import IkConfig, solve_ik

# Hand pointing down, fingers closing along world y: the TCP orientation of Franka's ready pose.
R_DOWN = np.diag([1.0, -1.0, -1.0])
PANDA_DQ_MAX_RAD_S = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # FER limits
R_DOWN.setflags(write=False)
PANDA_DQ_MAX_RAD_S.setflags(write=False)


class ExpertConfig(BaseModel):
    """Waypoint heights, speeds and waits of the scripted expert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approach_height_m: float = Field(0.10, gt=0, description="TCP above the cube centre before descending")
    lift_height_m: float = Field(0.15, gt=0.07, description="TCP height above the table after the grasp")
    grasp_depth_m: float = Field(
        -0.01, ge=-0.015, le=0.015,
        description="TCP below the cube centre when closing; -1 cm puts the TCP at z = 3 cm, 1 cm inside the "
        "runtime's workspace box (firmware_configs/robots/franka-panda.yaml: TCP z >= 2 cm), so a policy that "
        "imitates the grasp within a few mm is not clipped by the guard",
    )
    place_clearance_m: float = Field(0.004, ge=0, le=0.03, description="gap under the red cube before opening")
    transit_speed_m_s: float = Field(0.25, gt=0, le=1.0)
    fine_speed_m_s: float = Field(0.08, gt=0, le=0.5, description="speed of descend and lower, near contact")
    yaw_speed_rad_s: float = Field(1.5, gt=0, le=2.5)
    joint_speed_fraction: float = Field(
        0.35, gt=0, le=1,
        description="joint speed <= this x FER dq_max (0.76 / 0.91 rad/s: under the policy runtime's 1 rad/s cap, so "
        "demos are motions the runtime executes as they are)",
    )
    joint_accel_rad_s2: float = Field(
        1.8, gt=0, le=20,
        description="joint acceleration of the expert's command: under half the runtime's smallest cap (Panda "
        "joint 2: 0.5 x 7.5 rad/s^2), so its corners are rounded within the limiter's tracking tolerance",
    )
    close_steps: int = Field(8, ge=1, description="control steps with the hand closing (8: the policy runtime "
                             "ramps the width at 0.1 m/s, so a closing hand reaches a 4 cm cube after 4 steps)")
    release_steps: int = Field(4, ge=1)
    hold_steps: int = Field(5, ge=0, description="steps holding still at the end (pick: the 'held' check)")
    position_tolerance_m: float = Field(0.008, gt=0)
    phase_timeout_steps: int = Field(60, ge=1, description="a move ends after this many steps even if not reached")
    dart_noise_rad: float = Field(
        0.0, ge=0, le=0.1,
        description="DART (Laskey et al. 2017): per-step std (rad) of a random-walk offset added to the command "
        "sent to the arm, never to the recorded target, during the free-space phases (see DART_PHASE_SCALE), so "
        "demos show the expert's correction from states a little off its path; 0: off",
    )
    dart_noise_decay: float = Field(0.9, ge=0, lt=1, description="offset_t = decay * offset_t-1 + noise")
    dart_fraction: float = Field(1.0, ge=0, le=1, description="share of episodes perturbed (chosen by seed); the "
                                 "others are clean expert runs")
    ik: IkConfig = IkConfig()


# Scale of the DART offset's fresh noise per phase; elsewhere (close, lift, release, hold) it only
# decays, so the grasp itself is executed as the expert planned it.
DART_PHASE_SCALE = {"approach": 1.0, "descend": 1.0, "transport": 1.0, "lower": 1.0}
DART_SETTLE_M = 0.02  # no fresh noise once the reference is this close to its waypoint


@dataclass
class _Phase:
    name: str
    gripper_width_m: float
    goal: str | None = None  # which waypoint a "move" phase tracks; None: hold position
    speed_m_s: float = 0.0
    steps: int = 0  # for holds: how many control steps


def quarter_turn_yaw(yaw_rad: float) -> float:
    """A cube's yaw folded into [-pi/4, pi/4): a cube looks the same every quarter turn."""
    return float((yaw_rad + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def move_toward(current: np.ndarray, goal: np.ndarray, max_step: float) -> np.ndarray:
    """Point (3,) at most max_step closer to goal (3,)."""
    delta = goal - current
    dist = float(np.linalg.norm(delta))
    return goal.copy() if dist <= max_step else current + delta * (max_step / dist)


def limited_velocity(error: np.ndarray, velocity: np.ndarray, v_max: np.ndarray, a_max: float, dt: float) -> np.ndarray:
    """Next per-joint velocity (7,) toward closing ``error`` (7,) within one step: at most v_max, no
    faster than a stop at a_max still ends on the goal, changed by at most a_max * dt."""
    distance = np.abs(error)
    wanted = np.sign(error) * np.minimum(np.minimum(v_max, np.sqrt(2.0 * a_max * distance)), distance / dt)
    return velocity + np.clip(wanted - velocity, -a_max * dt, a_max * dt)


def yaw_rotation(yaw_rad: float) -> np.ndarray:
    """(3, 3) rotation of the downward hand turned by yaw about world z."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R_DOWN


def task_phases(task: Task, cfg: ExpertConfig) -> list[_Phase]:
    """The scripted sequence for a task."""
    open_w, closed_w = GRIPPER_MAX_WIDTH_M, 0.0
    phases = [
        _Phase("approach", open_w, "above_red", cfg.transit_speed_m_s),
        _Phase("descend", open_w, "grasp_red", cfg.fine_speed_m_s),
        _Phase("close", closed_w, steps=cfg.close_steps),
        _Phase("lift", closed_w, "lifted", cfg.transit_speed_m_s),
    ]
    if task == "pick":
        return phases + [_Phase("hold", closed_w, steps=cfg.hold_steps)]
    if task == "stack":
        return phases + [
            _Phase("transport", closed_w, "above_blue", cfg.transit_speed_m_s),
            _Phase("lower", closed_w, "place_on_blue", cfg.fine_speed_m_s),
            _Phase("release", open_w, steps=cfg.release_steps),
            _Phase("retreat", open_w, "retreat", cfg.transit_speed_m_s),
            _Phase("hold", open_w, steps=cfg.hold_steps),
        ]
    raise InvalidInputError(f"task must be 'pick' or 'stack', got {task!r}")


@dataclass
class ScriptedExpert:
    """Call ``act()`` once per control step (after env.reset); it returns (q_target (7,), width_m)."""

    env: PandaTableEnv
    task: Task
    config: ExpertConfig = field(default_factory=ExpertConfig)

    def __post_init__(self) -> None:
        self.phases = task_phases(self.task, self.config)
        self.reset()

    def reset(self) -> None:
        """Start over from the env's current state (call after env.reset)."""
        env = self.env
        self.phase_index = 0
        self.phase_steps = 0
        self.q_cmd = env.q_cmd_rad
        self.dq_cmd = np.zeros(7)
        self.pos_ref, _ = env.tcp_pose()
        self.yaw_ref = 0.0
        self.yaw_goal = quarter_turn_yaw(env.cube_yaw("cube_red"))
        self.red_in_hand = np.zeros(3)  # red cube centre minus TCP, measured when lifted
        self._dt = 1.0 / env.config.control_hz

    @property
    def done(self) -> bool:
        return self.phase_index >= len(self.phases)

    @property
    def phase(self) -> str:
        return "done" if self.done else self.phases[self.phase_index].name

    def _goal(self, name: str) -> np.ndarray:
        env, cfg = self.env, self.config
        red, blue = env.cube_position("cube_red"), env.cube_position("cube_blue")
        if name == "above_red":
            return red + np.array([0.0, 0.0, cfg.approach_height_m])
        if name == "grasp_red":
            return red - np.array([0.0, 0.0, cfg.grasp_depth_m])
        if name == "lifted":
            return np.array([self.pos_ref[0], self.pos_ref[1], TABLE_Z_M + cfg.lift_height_m])
        red_target = blue + np.array([0.0, 0.0, 2 * CUBE_HALF_M + cfg.place_clearance_m])
        if name == "above_blue":
            return np.array([*(red_target[:2] - self.red_in_hand[:2]), TABLE_Z_M + cfg.lift_height_m])
        if name == "place_on_blue":
            return red_target - self.red_in_hand
        if name == "retreat":
            return np.array([self.pos_ref[0], self.pos_ref[1], TABLE_Z_M + cfg.lift_height_m])
        raise KeyError(name)

    def _phase_finished(self, phase: _Phase) -> bool:
        if phase.goal is None:
            return self.phase_steps >= phase.steps
        if self.phase_steps >= self.config.phase_timeout_steps:
            return True
        goal = self._goal(phase.goal)
        tcp, _ = self.env.tcp_pose()
        reached_ref = np.linalg.norm(self.pos_ref - goal) < 1e-6
        return bool(reached_ref and np.linalg.norm(tcp - goal) < self.config.position_tolerance_m)

    def reference_to_go_m(self) -> float:
        """How far the Cartesian reference still has to travel to the current move's waypoint (0 in holds)."""
        if self.done or self.phases[self.phase_index].goal is None:
            return 0.0
        return float(np.linalg.norm(self._goal(self.phases[self.phase_index].goal) - self.pos_ref))

    def act(self) -> tuple[np.ndarray, float]:
        """Next control step's joint targets (7,) rad and gripper width (m)."""
        while not self.done and self._phase_finished(self.phases[self.phase_index]):
            if self.phases[self.phase_index].name == "lift":
                self.red_in_hand = self.env.cube_position("cube_red") - self.env.tcp_pose()[0]
            self.phase_index += 1
            self.phase_steps = 0
        if self.done:
            return self.q_cmd.copy(), self.phases[-1].gripper_width_m
        phase = self.phases[self.phase_index]
        self.phase_steps += 1
        if phase.goal is not None:
            self.pos_ref = move_toward(self.pos_ref, self._goal(phase.goal), phase.speed_m_s * self._dt)
        max_yaw_step = self.config.yaw_speed_rad_s * self._dt
        self.yaw_ref += float(np.clip(self.yaw_goal - self.yaw_ref, -max_yaw_step, max_yaw_step))
        env = self.env
        q_ik = solve_ik(
            env.mujoco, env.model, env.scratch, env.tcp_site, env.arm_qpos, env.arm_dof,
            q_seed=self.q_cmd, pos_target=self.pos_ref, rot_target=yaw_rotation(self.yaw_ref),
            q_min=env.q_min_rad, q_max=env.q_max_rad, q_rest=HOME_Q_RAD, config=self.config.ik,
        )  # fmt: skip
        self.dq_cmd = limited_velocity(q_ik - self.q_cmd, self.dq_cmd, self.config.joint_speed_fraction * PANDA_DQ_MAX_RAD_S,
                                       self.config.joint_accel_rad_s2, self._dt)
        self.q_cmd = self.q_cmd + self.dq_cmd * self._dt
        return self.q_cmd.copy(), phase.gripper_width_m


@dataclass
class Episode:
    """One rollout at the control rate; row t is the observation at step t and the command sent after it."""

    seed: int
    task: Task
    success: bool
    q_rad: np.ndarray  # (T, 7) float64 measured joint positions
    gripper_width_m: np.ndarray  # (T,) float64 measured finger opening
    q_target_rad: np.ndarray  # (T, 7) float64 joint targets commanded after observation t
    gripper_cmd_m: np.ndarray  # (T,) float64 gripper width commanded after observation t
    images: np.ndarray | None  # (T, H, W, 3) uint8, or None when not rendered
    # Privileged state at observation t (sim only; auxiliary targets for training, never a policy input):
    cube_pos: np.ndarray | None = None  # (T, 2, 3) float64 world positions of [cube_red, cube_blue]
    cube_yaw_rad: np.ndarray | None = None  # (T, 2) float64 yaw about world z of [cube_red, cube_blue]


def run_expert_episode(
    env: PandaTableEnv,
    task: Task,
    seed: int,
    config: ExpertConfig | None = None,
    render: bool = True,
    max_steps: int = 200,
) -> Episode:
    """Reset with ``seed``, run the expert until its script ends (or max_steps), judge success.

    With ``config.dart_noise_rad`` > 0 the arm is sent q_target + a random-walk offset (seeded by
    ``seed``) while q_target_rad records the expert's own target: the recorded action then carries
    the correction from the perturbed, measured state back to the expert's path.
    """
    config = config or ExpertConfig()
    obs = env.reset(seed, render=render)
    expert = ScriptedExpert(env, task, config)
    rng = np.random.default_rng([seed, 0xDA57])
    noise_rad = config.dart_noise_rad if rng.random() < config.dart_fraction else 0.0
    offset = np.zeros(7)
    qs, widths, targets, grips, images, cubes, yaws = [], [], [], [], [], [], []
    for _ in range(max_steps):
        q_target, width = expert.act()
        if expert.done:
            break
        qs.append(obs.q_rad)
        widths.append(obs.gripper_width_m)
        targets.append(q_target)
        grips.append(width)
        cubes.append([env.cube_position(c) for c in CUBES])
        yaws.append([env.cube_yaw(c) for c in CUBES])
        if render:
            images.append(obs.image)
        if noise_rad > 0:  # fresh noise only while the reference is en route, so waypoints are still met
            en_route = expert.reference_to_go_m() > DART_SETTLE_M
            scale = DART_PHASE_SCALE.get(expert.phase, 0.0) * noise_rad * en_route
            offset = config.dart_noise_decay * offset + rng.normal(0.0, 1.0, 7) * scale
        q_sent = np.clip(q_target + offset, env.q_min_rad, env.q_max_rad)
        obs = env.step(q_sent, width, render=render)
    return Episode(
        seed=seed,
        task=task,
        success=env.is_success(task),
        q_rad=np.array(qs),
        gripper_width_m=np.array(widths),
        q_target_rad=np.array(targets),
        gripper_cmd_m=np.array(grips),
        images=np.stack(images) if render else None,
        cube_pos=np.array(cubes).reshape(-1, len(CUBES), 3),
        cube_yaw_rad=np.array(yaws).reshape(-1, len(CUBES)),
    )
