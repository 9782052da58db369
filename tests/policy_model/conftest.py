"""Shared fixtures of the rpt-policy tests: a tiny config and two expert episodes (MuJoCo, once)."""

from __future__ import annotations

import importlib.util

import pytest

HAVE_MUJOCO = importlib.util.find_spec("mujoco") is not None
# Small enough that export and a few training steps take well under a second on two cores.
TINY = {"base_width": 4, "d_model": 32, "heads": 2, "layers": 1, "ff_dim": 64, "image_tokens": 4, "dropout": 0.0}


@pytest.fixture(scope="session")
def pick_demos(tmp_path_factory):
    """Path of a 2-episode pick demo file at the policy's 96x96 (about 2 s)."""
    if not HAVE_MUJOCO:
        pytest.skip("mujoco is not installed (pip install -e '.[sim]')")
    from edgeperc.sim.demos import generate_demos
    from edgeperc.sim.env import EnvConfig

    out = tmp_path_factory.mktemp("policy_demos") / "pick.npz"
    generate_demos(out, "pick", episodes=2, seed=3, env_config=EnvConfig(image_hw=(96, 96)), progress=False)
    return out
