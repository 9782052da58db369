"""Panda forward kinematics, vectorised: joint angles (..., 7) -> frame poses in the base frame.

Modified DH (Craig), frankarobotics/docs ``source/robot_specifications.rst`` (franka-facts.md §3):
each link is RotX(alpha) * TransX(a) * RotZ(theta) * TransZ(d). The guard needs every frame origin,
not only the hand, to keep the whole arm above the table, and the chain gives them for free.
"""

from __future__ import annotations

import numpy as np

# Rows J1..J7, flange (theta = 0): a (m), d (m), alpha (rad) - franka-facts.md §3.
DH_A_M = np.array([0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088, 0.0])
DH_D_M = np.array([0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0, 0.107])
DH_ALPHA_RAD = np.array([0.0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2, 0.0])
# Franka Hand mount: -pi/4 about the flange z axis (F_T_EE in getting_started.rst; franka_robot.xacro).
HAND_YAW_RAD = -np.pi / 4

FRAME_NAMES = ("J1", "J2", "J3", "J4", "J5", "J6", "J7", "flange", "tcp")
N_FRAMES = len(FRAME_NAMES)
TCP = N_FRAMES - 1
FLANGE = N_FRAMES - 2


def _dh(theta: np.ndarray, a: float, d: float, alpha: float) -> np.ndarray:
    """(...,) angles -> (..., 4, 4) RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    t = np.zeros(theta.shape + (4, 4))
    t[..., 0, 0], t[..., 0, 1], t[..., 0, 3] = ct, -st, a
    t[..., 1, 0], t[..., 1, 1], t[..., 1, 2], t[..., 1, 3] = st * ca, ct * ca, -sa, -sa * d
    t[..., 2, 0], t[..., 2, 1], t[..., 2, 2], t[..., 2, 3] = st * sa, ct * sa, ca, ca * d
    t[..., 3, 3] = 1.0
    return t


def frame_poses(q_rad: np.ndarray, tcp_offset_m: float = 0.1034) -> np.ndarray:
    """(..., 7) joint angles -> (..., 9, 4, 4) base-frame poses of J1..J7, flange and TCP.

    The TCP is the Franka Hand's: yawed -pi/4 and ``tcp_offset_m`` along the flange z axis.
    """
    q = np.asarray(q_rad, dtype=np.float64)
    if q.shape[-1:] != (7,):
        raise ValueError(f"q_rad must be (..., 7), got shape {q.shape}")
    batch = q.shape[:-1]
    out = np.empty(batch + (N_FRAMES, 4, 4))
    pose = np.broadcast_to(np.eye(4), batch + (4, 4))
    for i in range(8):
        theta = q[..., i] if i < 7 else np.zeros(batch)
        pose = pose @ _dh(theta, DH_A_M[i], DH_D_M[i], DH_ALPHA_RAD[i])
        out[..., i, :, :] = pose
    hand = _dh(np.full(batch, HAND_YAW_RAD), 0.0, tcp_offset_m, 0.0)
    out[..., TCP, :, :] = pose @ hand
    return out


def frame_origins(q_rad: np.ndarray, tcp_offset_m: float = 0.1034) -> np.ndarray:
    """(..., 7) -> (..., 9, 3) origins of J1..J7, flange, TCP (m, base frame)."""
    return frame_poses(q_rad, tcp_offset_m)[..., :3, 3]


def tcp_position(q_rad: np.ndarray, tcp_offset_m: float = 0.1034) -> np.ndarray:
    """(..., 7) -> (..., 3) TCP position (m, base frame)."""
    return frame_origins(q_rad, tcp_offset_m)[..., TCP, :]
