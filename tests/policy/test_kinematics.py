"""Panda FK (modified DH, franka-facts.md §3) against hand-computed poses, a literal transcription
of Craig's product, and geometric invariants."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.runtime.policy.kinematics import (
    DH_A_M,
    DH_ALPHA_RAD,
    DH_D_M,
    FLANGE,
    TCP,
    frame_origins,
    frame_poses,
    tcp_position,
)

from .support import READY


def _rot_x(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])


def _rot_z(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _trans(x=0.0, z=0.0):
    t = np.eye(4)
    t[0, 3], t[2, 3] = x, z
    return t


def _reference_poses(q, tcp_offset_m=0.1034):
    """One configuration, literally RotX(alpha) TransX(a) RotZ(theta) TransZ(d) per row."""
    pose, out = np.eye(4), []
    for i in range(8):
        theta = q[i] if i < 7 else 0.0
        pose = pose @ _rot_x(DH_ALPHA_RAD[i]) @ _trans(x=DH_A_M[i]) @ _rot_z(theta) @ _trans(z=DH_D_M[i])
        out.append(pose)
    out.append(pose @ _rot_z(-np.pi / 4) @ _trans(z=tcp_offset_m))
    return np.array(out)


def test_zero_pose_by_hand():
    # q = 0: the arm stands straight up; J4 steps out 0.0825, J5 steps back, J7's 0.088 offset points
    # +x and the flange z axis points down: flange at z = 0.333 + 0.316 + 0.384 - 0.107.
    points = frame_origins(np.zeros(7))
    expected = [
        [0, 0, 0.333], [0, 0, 0.333], [0, 0, 0.649], [0.0825, 0, 0.649], [0, 0, 1.033], [0, 0, 1.033],
        [0.088, 0, 1.033], [0.088, 0, 0.926], [0.088, 0, 0.926 - 0.1034],
    ]
    np.testing.assert_allclose(points, expected, atol=1e-12)


def test_ready_pose_tcp_points_down_at_known_position():
    pose = frame_poses(READY)[TCP]
    # libfranka/franka_ros ready pose: O_T_EE translation (0.307, 0, 0.487), hand z axis down.
    np.testing.assert_allclose(pose[:3, 3], [0.30689, 0.0, 0.48688], atol=1e-5)
    np.testing.assert_allclose(pose[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-12)


def test_vectorised_matches_literal_product():
    rng = np.random.default_rng(3)
    qs = rng.uniform(-3, 3, size=(4, 5, 7))
    poses = frame_poses(qs, tcp_offset_m=0.2)
    assert poses.shape == (4, 5, 9, 4, 4)
    for index in np.ndindex(4, 5):
        np.testing.assert_allclose(poses[index], _reference_poses(qs[index], 0.2), atol=1e-12)
    np.testing.assert_allclose(tcp_position(qs, 0.2), poses[..., TCP, :3, 3])


def test_rigid_body_invariants():
    rng = np.random.default_rng(4)
    qs = rng.uniform(-3, 3, size=(200, 7))
    poses = frame_poses(qs)
    rotations = poses[..., :3, :3]
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, -1, -2), np.broadcast_to(np.eye(3), rotations.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)
    p = poses[..., :3, 3]
    dist = lambda i, j: np.linalg.norm(p[:, i] - p[:, j], axis=-1)
    np.testing.assert_allclose(dist(0, 2), 0.316)  # upper arm
    np.testing.assert_allclose(dist(2, 3), 0.0825)
    np.testing.assert_allclose(dist(3, 4), np.hypot(0.0825, 0.384))  # forearm with its offset
    np.testing.assert_allclose(dist(6, FLANGE), 0.107)
    np.testing.assert_allclose(dist(FLANGE, TCP), 0.1034)
    np.testing.assert_allclose(p[:, 0], np.broadcast_to([0, 0, 0.333], (200, 3)), atol=1e-12)


def test_joint_1_turns_everything_about_the_base_z_axis():
    turned = READY.copy()
    turned[0] = 0.7
    c, s = np.cos(0.7), np.sin(0.7)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    np.testing.assert_allclose(frame_origins(turned), frame_origins(READY) @ rz.T, atol=1e-12)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        frame_poses(np.zeros(6))
