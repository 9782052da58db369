"""MuJoCo closed loop for a Panda-like arm: scene, env, scripted expert, demos, GIFs ([sim] extra).

Modules import mujoco only where they need it; import ``edgeperc.sim.env`` before your own
``import mujoco`` so the headless GL default (EGL) is set first (see ``edgeperc.sim.gl``).
"""
