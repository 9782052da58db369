"""runtime/policy: the safety core of the robot-policy runtime (Franka Panda, 7 joints + hand).

limits (PandaLimits from firmware_configs/robots/franka-panda.yaml) -> kinematics (FK) -> guard (10 Hz
target checks, 1 kHz limiter, stop profile) -> stream_check (offline replay of a 1 kHz stream
the way Franka Control checks it). Import the modules directly; nothing is re-exported here.

The runtime around them: chunks (latency compensation, temporal ensembling) -> interpolate (10 Hz
targets -> 1 kHz ramps) -> watchdog (RUNNING / STOPPING / HOLDING) -> loop (ControlLoop over a
plant from plants and a policy from policies, inference in worker's thread).
"""
