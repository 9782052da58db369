"""Demo files have the documented keys and shapes; GIFs of their frames are written."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

if not HAVE_MUJOCO:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from PIL import Image

from edgeperc.errors import InvalidInputError
from edgeperc.sim.demos import (
    ACTION_DIM,
    DEMO_KEYS,
    episode_slice,
    generate_demos,
    load_demos,
)
from edgeperc.sim.env import EnvConfig
from edgeperc.sim.render import write_gif


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "pick.npz"
    summary = generate_demos(out, "pick", episodes=2, seed=5, env_config=EnvConfig(image_hw=(32, 32)), progress=False)
    assert summary.episodes == 2
    return out, summary


def test_demo_npz_has_the_documented_shapes(demo_file):
    path, summary = demo_file
    with np.load(path) as npz:
        assert set(npz.files) == set(DEMO_KEYS)
    data = load_demos(path)
    t = summary.steps
    assert data["images"].shape == (t, 32, 32, 3) and data["images"].dtype == np.uint8
    assert data["q_rad"].shape == (t, 7) and data["q_rad"].dtype == np.float32
    assert data["gripper_width_m"].shape == (t,)
    assert data["actions"].shape == (t, ACTION_DIM) and data["actions"].dtype == np.float32
    assert data["q_target_rad"].shape == (t, 7)
    assert data["cube_pos"].shape == (t, 2, 3) and data["cube_pos"].dtype == np.float32
    assert data["cube_yaw_rad"].shape == (t, 2)
    starts = np.r_[0, data["episode_ends"][:-1]]
    np.testing.assert_allclose(data["cube_pos"][starts, :, 2], 0.02, atol=2e-3)  # both cubes on the table at t=0
    assert data["meta"]["camera"] == "workspace" and data["meta"]["cubes"] == ["cube_red", "cube_blue"]
    np.testing.assert_array_equal(data["episode_seeds"], [5, 6])
    assert data["episode_ends"][-1] == t and data["episode_success"].dtype == bool
    np.testing.assert_allclose(data["q_rad"] + data["actions"][:, :7], data["q_target_rad"], atol=1e-5)
    assert set(np.unique(data["actions"][:, 7])) <= {0.0, np.float32(0.08)}
    assert data["meta"]["task"] == "pick" and data["meta"]["control_hz"] == 10.0
    assert data["meta"]["renderer"] in ("mujoco", "raster")
    # Actions are 10 Hz deltas of a smooth expert: far below a Panda joint's 0.2 rad per 100 ms.
    assert np.abs(data["actions"][:, :7]).max() < 0.2


def test_episode_slice_splits_the_step_axis(demo_file):
    data = load_demos(demo_file[0])
    ends = data["episode_ends"]
    first, second = episode_slice(ends, 0), episode_slice(ends, 1)
    assert first.start == 0 and first.stop == second.start and second.stop == len(data["q_rad"])


def test_write_gif_round_trips(demo_file, tmp_path):
    data = load_demos(demo_file[0])
    frames = data["images"][episode_slice(data["episode_ends"], 0)]
    path = write_gif(frames, tmp_path / "ep.gif", fps=10, scale=2)
    with Image.open(path) as gif:
        assert gif.size == (64, 64)
        total_ms = 0
        for i in range(gif.n_frames):  # Pillow merges identical neighbours and adds their delays
            gif.seek(i)
            total_ms += gif.info["duration"]
    assert total_ms == 100 * len(frames)


def test_write_gif_rejects_bad_frames(tmp_path):
    with pytest.raises(InvalidInputError):
        write_gif(np.zeros((3, 8, 8), np.uint8), tmp_path / "x.gif")
    with pytest.raises(InvalidInputError, match="one per frame"):
        write_gif(np.zeros((3, 8, 8, 3), np.uint8), tmp_path / "x.gif", captions=[["a"]])


def test_captions_draw_a_band_with_text(tmp_path):
    frames = np.full((2, 64, 96, 3), 200, np.uint8)
    path = write_gif(frames, tmp_path / "c.gif", captions=[["step 0"], []])
    with Image.open(path) as gif:
        first = np.asarray(gif.convert("RGB")).astype(int)
        gif.seek(1)
        second = np.asarray(gif.convert("RGB")).astype(int)
    band = first[:16]
    assert band.mean() < 60 and band.max() > 200  # dark band, light text
    assert (second == 200).all()  # no caption, untouched
