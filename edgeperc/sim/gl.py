"""Headless OpenGL choice for MuJoCo's offscreen renderer.

MuJoCo picks its GL platform (``MUJOCO_GL``: egl, osmesa, glfw) once, when ``mujoco`` is first
imported, so a process cannot retry another platform after a failure. ``import_mujoco`` therefore
sets a headless default before the first import, and ``probe_gl_backends`` tests each candidate in a
child process. Where none renders, ``PandaTableEnv`` falls back to ``edgeperc.sim.raster``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

HEADLESS_CANDIDATES = ("egl", "osmesa")

_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string(
    '<mujoco><visual><global offwidth="16" offheight="16"/></visual><worldbody>'
    '<geom type="box" size=".1 .1 .1" rgba="1 0 0 1"/><camera name="c" pos="0 0 1"/></worldbody></mujoco>')
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 16, 16)
r.update_scene(d, "c")
assert r.render()[8, 8, 0] > 0
"""


def import_mujoco() -> ModuleType:
    """Import mujoco; with no display and no MUJOCO_GL set, choose EGL first (it works headless)."""
    if "mujoco" not in sys.modules and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        # Process-wide by necessity: MuJoCo reads it at import time and offers no other switch.
        os.environ["MUJOCO_GL"] = "egl"
    import mujoco

    return mujoco


def probe_gl_backends(candidates: tuple[str, ...] = HEADLESS_CANDIDATES, timeout_s: float = 60.0) -> dict[str, bool]:
    """Render one frame under each MUJOCO_GL value in a fresh process → {backend: worked}."""
    results: dict[str, bool] = {}
    for backend in candidates:
        env = {**os.environ, "MUJOCO_GL": backend}
        env.pop("PYOPENGL_PLATFORM", None)
        try:
            cmd = [sys.executable, "-c", _PROBE]
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout_s, check=False)
            results[backend] = done.returncode == 0
        except subprocess.TimeoutExpired:
            results[backend] = False
    return results


if __name__ == "__main__":  # python -m edgeperc.sim.gl
    for name, ok in probe_gl_backends().items():
        print(f"MUJOCO_GL={name}: {'renders' if ok else 'fails'}")
