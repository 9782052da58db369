"""Damped-least-squares inverse kinematics on MuJoCo's site Jacobian (mj_jacSite).

DLS (dq = J^T (J J^T + lambda^2 I)^-1 e) stays bounded near singularities where a plain
pseudo-inverse would command huge joint steps; the null-space term pulls the redundant seventh
degree of freedom toward a rest posture so repeated solves do not drift toward joint limits.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class IkConfig(BaseModel):
    """Solver settings; the defaults converge in a few iterations for 10 Hz Cartesian steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: int = Field(8, ge=1, le=200)
    damping: float = Field(0.05, gt=0, description="lambda of DLS (m-equivalent)")
    rotation_weight: float = Field(0.5, ge=0, description="metres per radian in the stacked 6-D error")
    nullspace_gain: float = Field(0.1, ge=0, le=1)
    limit_margin_rad: float = Field(0.05, ge=0, description="targets stay this far inside the joint ranges")
    tolerance_m: float = Field(1e-4, gt=0)


def rotation_error(r_target: np.ndarray, r_current: np.ndarray) -> np.ndarray:
    """(3, 3), (3, 3) → (3,) world-frame rotation vector that turns r_current into r_target."""
    r = r_target @ r_current.T
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    axis_sin = 0.5 * np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])  # sin(angle) * axis
    if angle < 1e-6:
        return axis_sin
    if np.pi - angle < 1e-3:  # sin ~ 0: read the axis from the symmetric part instead
        axis = np.sqrt(np.clip((np.diag(r) + 1.0) / 2.0, 0.0, None))
        k = int(np.argmax(axis))
        axis = (r[:, k] + np.eye(3)[k]) / 2.0
        return angle * axis / np.linalg.norm(axis)
    return angle * axis_sin / np.sin(angle)


def dls_step(jac: np.ndarray, error: np.ndarray, damping: float) -> np.ndarray:
    """(6, n) Jacobian, (6,) error → (n,) joint step of damped least squares."""
    jjt = jac @ jac.T
    return jac.T @ np.linalg.solve(jjt + (damping**2) * np.eye(jjt.shape[0]), error)


def solve_ik(
    mujoco,
    model,
    data,
    site_id: int,
    qpos_adr: np.ndarray,
    dof_adr: np.ndarray,
    q_seed: np.ndarray,
    pos_target: np.ndarray,
    rot_target: np.ndarray,
    q_min: np.ndarray,
    q_max: np.ndarray,
    q_rest: np.ndarray,
    config: IkConfig | None = None,
) -> np.ndarray:
    """Joint angles (n,) that put ``site_id`` at pos_target (3,) / rot_target (3, 3), from q_seed (n,).

    ``data`` is a scratch MjData (its qpos is overwritten); the result lies inside
    [q_min + margin, q_max - margin].
    """
    config = config or IkConfig()
    lo, hi = q_min + config.limit_margin_rad, q_max - config.limit_margin_rad
    q = np.clip(np.asarray(q_seed, dtype=np.float64), lo, hi)
    jacp = np.zeros((3, model.nv))
    jacr = np.zeros((3, model.nv))
    w = config.rotation_weight
    for _ in range(config.iterations):
        data.qpos[qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        pos = data.site_xpos[site_id]
        rot = data.site_xmat[site_id].reshape(3, 3)
        error = np.concatenate([pos_target - pos, w * rotation_error(rot_target, rot)])
        if np.linalg.norm(error) < config.tolerance_m:
            break
        mujoco.mj_jacSite(model, data, jacp, jacr, site_id)
        jac = np.vstack([jacp[:, dof_adr], w * jacr[:, dof_adr]])
        dq = dls_step(jac, error, config.damping)
        # Null-space posture term: moves the elbow without moving the hand (to first order).
        null = np.eye(len(q)) - np.linalg.pinv(jac) @ jac
        dq += null @ (config.nullspace_gain * (q_rest - q))
        q = np.clip(q + dq, lo, hi)
    return q
