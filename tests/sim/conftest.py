"""Sim tests need MuJoCo (the [sim] extra). Each module skips itself when it is absent.

Modules import ``edgeperc.sim`` before anything imports ``mujoco``: MuJoCo fixes its GL platform
at first import, and ``edgeperc.sim.gl`` sets the headless default (EGL) just before it.
"""

from __future__ import annotations

import importlib.util

import pytest

HAVE_MUJOCO = importlib.util.find_spec("mujoco") is not None
SKIP_REASON = "mujoco is not installed (pip install -e '.[sim]')"


@pytest.fixture(scope="session")
def env():
    """One env for the session: building the model and GL context once keeps the tests fast."""
    from edgeperc.sim.env import PandaTableEnv

    with PandaTableEnv() as e:
        yield e
