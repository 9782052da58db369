"""The environment: seeded resets, command checks, success checks, images from both renderers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

if not HAVE_MUJOCO:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from edgeperc.errors import InvalidInputError
from edgeperc.sim.env import CUBE_HALF_M, EnvConfig, PandaTableEnv, sample_cube_poses


def test_reset_is_deterministic_per_seed(env):
    a = env.reset(seed=3)
    qpos_a = env.data.qpos.copy()
    b = env.reset(seed=3)
    np.testing.assert_array_equal(env.data.qpos, qpos_a)
    np.testing.assert_array_equal(a.image, b.image)
    env.reset(seed=4)
    assert not np.allclose(env.data.qpos, qpos_a)


def test_reset_puts_cubes_on_the_table_inside_the_region(env):
    cfg = env.config
    for seed in range(5):
        env.reset(seed=seed, render=False)
        red, blue = env.cube_position("cube_red"), env.cube_position("cube_blue")
        for cube in (red, blue):
            assert cfg.cube_x_m[0] - 0.01 <= cube[0] <= cfg.cube_x_m[1] + 0.01
            assert cfg.cube_y_m[0] - 0.01 <= cube[1] <= cfg.cube_y_m[1] + 0.01
            assert cube[2] == pytest.approx(CUBE_HALF_M, abs=2e-3)
        assert np.linalg.norm(red[:2] - blue[:2]) >= cfg.min_cube_gap_m - 0.01


def test_sample_cube_poses_keeps_the_gap():
    poses = sample_cube_poses(np.random.default_rng(0), EnvConfig(min_cube_gap_m=0.2))
    (x0, y0, _), (x1, y1, _) = poses
    assert np.hypot(x0 - x1, y0 - y1) >= 0.2


def test_observation_shapes(env):
    obs = env.reset(seed=0)
    h, w = env.config.image_hw
    assert env.config.camera == "workspace"  # the policy's view by default
    assert obs.q_rad.shape == (7,)
    assert obs.image.shape == (h, w, 3) and obs.image.dtype == np.uint8
    assert obs.gripper_width_m == pytest.approx(0.08, abs=1e-3)
    assert env.render_backend in ("mujoco", "raster")
    obs = env.step(obs.q_rad, 0.08, render=False)
    assert obs.image is None
    assert obs.time_s == pytest.approx(1.0 / env.config.control_hz)


def test_render_at_another_size_and_refuse_past_the_buffer(env):
    env.reset(seed=0)
    frame = env.render("side", (256, 320))
    assert frame.shape == (256, 320, 3) and frame.std() > 10  # a scene, not a blank buffer
    assert env.render().shape == (*env.config.image_hw, 3)  # the policy's camera is unchanged
    with pytest.raises(InvalidInputError, match="render size"):
        env.render("side", (300, 320))


def test_commands_must_be_seven_finite_values(env):
    env.reset(seed=0, render=False)
    with pytest.raises(InvalidInputError):
        env.step(np.zeros(6), 0.08)
    with pytest.raises(InvalidInputError):
        env.apply_command(np.full(7, np.nan), 0.08)


def test_success_checks_on_constructed_states(env):
    env.reset(seed=0, render=False)
    assert not env.is_success("pick")
    assert not env.is_success("stack")
    # Put the red cube on the blue one by hand and let it settle: that is a stack.
    blue = env.cube_position("cube_blue")
    adr = env.model.joint("cube_red").qposadr[0]
    env.data.qpos[adr : adr + 3] = blue + [0.0, 0.0, 2 * CUBE_HALF_M + 0.001]
    env.data.qpos[adr + 3 : adr + 7] = [1.0, 0.0, 0.0, 0.0]
    env.data.qvel[:] = 0.0
    for _ in range(300):
        env.apply_command(env.q_cmd_rad, 0.08)
    assert env.is_success("stack")
    assert not env.is_success("pick")


def test_raster_fallback_draws_the_cubes():
    with PandaTableEnv(EnvConfig(renderer="raster", image_hw=(64, 64))) as e:
        image = e.reset(seed=0).image
        assert e.render_backend == "raster"
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    blue = (image[..., 2] > 150) & (image[..., 0] < 80)
    assert red.sum() >= 2 and blue.sum() >= 2
