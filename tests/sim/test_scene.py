"""The MJCF: loads, has the Panda's joint ranges, and its TCP matches Franka's modified-DH FK."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

if not HAVE_MUJOCO:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from edgeperc.sim.env import ARM_JOINTS, HOME_Q_RAD, default_scene_path

# Franka docs, control-parameters-joint-fer.csv (FER = Panda).
FER_Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
FER_Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
FER_TAU_MAX = np.array([87, 87, 87, 87, 12, 12, 12], dtype=float)

# Franka's modified DH table (Craig): a, d, alpha per joint; then flange d = 0.107,
# and F_T_EE of the Franka Hand: -pi/4 about z, 0.1034 m along z.
MDH = [
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
]


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _trans(x: float = 0.0, z: float = 0.0) -> np.ndarray:
    t = np.eye(4)
    t[0, 3], t[2, 3] = x, z
    return t


def panda_mdh_fk(q: np.ndarray) -> np.ndarray:
    """(7,) rad → (4, 4) O_T_EE with the Franka Hand TCP."""
    t = np.eye(4)
    for (a, d, alpha), qi in zip(MDH, q):
        t = t @ _rot_x(alpha) @ _trans(x=a) @ _rot_z(qi) @ _trans(z=d)
    return t @ _trans(z=0.107) @ _rot_z(-np.pi / 4) @ _trans(z=0.1034)


def test_mjcf_loads_with_arm_gripper_cubes_cameras():
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(default_scene_path()))
    assert model.nu == 8  # 7 arm servos + gripper
    assert model.opt.timestep in (0.001, 0.002)
    for name in ("front", "top", "wrist", "workspace"):
        assert model.camera(name).id >= 0
    for name in ("cube_red", "cube_blue", "table", "finger_left_pad", "finger_right_pad"):
        assert model.geom(name).id >= 0
    assert model.site("tcp").id >= 0
    assert model.nmesh == 0  # primitives only
    width = 2 * model.jnt_range[model.joint("finger_left").id]
    assert width[0] == 0.0 and width[1] == pytest.approx(0.08)


def test_joint_ranges_and_torque_limits_match_the_panda_spec(env):
    model = env.model
    ids = [model.joint(j).id for j in ARM_JOINTS]
    np.testing.assert_allclose(model.jnt_range[ids, 0], FER_Q_MIN)
    np.testing.assert_allclose(model.jnt_range[ids, 1], FER_Q_MAX)
    np.testing.assert_allclose(model.actuator_ctrlrange[:7, 0], FER_Q_MIN)
    np.testing.assert_allclose(model.actuator_ctrlrange[:7, 1], FER_Q_MAX)
    np.testing.assert_allclose(model.actuator_forcerange[:7, 1], FER_TAU_MAX)


def test_home_pose_tcp_is_frankas_ready_pose(env):
    # Franka's ready pose puts the Hand's TCP at about (0.307, 0, 0.487), pointing down.
    pos, rot = env.ee_pose(HOME_Q_RAD)
    np.testing.assert_allclose(pos, [0.3069, 0.0, 0.4869], atol=1e-3)
    np.testing.assert_allclose(rot, np.diag([1.0, -1.0, -1.0]), atol=1e-6)


def test_sim_tcp_matches_modified_dh_fk(env):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(FER_Q_MIN, FER_Q_MAX)
        pos, rot = env.ee_pose(q)
        ref = panda_mdh_fk(q)
        np.testing.assert_allclose(pos, ref[:3, 3], atol=2e-3)
        np.testing.assert_allclose(rot, ref[:3, :3], atol=1e-3)
        np.testing.assert_allclose(env.ee_position(q), pos)


def test_position_servos_track_a_held_target(env):
    env.reset(seed=0, render=False)
    target = HOME_Q_RAD + np.array([0.2, 0.15, -0.2, 0.2, 0.3, -0.2, 0.3])
    for _ in range(600):  # 0.6 s
        env.apply_command(target, 0.08)
    np.testing.assert_allclose(env.observe(render=False).q_rad, target, atol=2e-3)


def test_workspace_camera_shows_a_cube_anywhere_in_the_region_at_8_px_or_more(env):
    """The policy's default view: a cube at each corner of reset()'s region, any yaw, lies wholly
    inside the 96 px frame and is at least 8 px across (the front camera gives it 3-4 px)."""
    import mujoco

    assert env.config.camera == "workspace" and env.config.image_hw == (96, 96)
    env.reset(seed=0, render=False)
    red, blue = env.model.joint("cube_red").qposadr[0], env.model.joint("cube_blue").qposadr[0]
    env.data.qpos[blue : blue + 3] = (2.0, 2.0, 0.02)  # out of view
    (x0, x1), (y0, y1) = env.config.cube_x_m, env.config.cube_y_m
    for x, y, yaw in [(x0, y0, 0.0), (x0, y1, 0.7), (x1, y0, -0.7), (x1, y1, 0.0), ((x0 + x1) / 2, 0.0, 0.3)]:
        env.data.qpos[red : red + 3] = (x, y, 0.02)
        env.data.qpos[red + 3 : red + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        mujoco.mj_forward(env.model, env.data)
        image = env.render().astype(int)
        ys, xs = np.nonzero((image[..., 0] > 120) & (image[..., 1] < 90) & (image[..., 2] < 90))
        assert len(xs), (x, y)
        assert 0 < xs.min() and xs.max() < 95 and 0 < ys.min() and ys.max() < 95, (x, y)
        assert xs.max() - xs.min() + 1 >= 8 and ys.max() - ys.min() + 1 >= 8, (x, y, xs, ys)
