"""Fallback renderer for machines where no OpenGL platform works (``MUJOCO_GL`` egl/osmesa fail).

It draws the MuJoCo state as seen from a model camera: a pinhole projection (the camera's fovy) of
box, sphere, capsule and cylinder geoms, filled with OpenCV in painter's order (static world geoms
first, then far to near), box faces shaded by their angle to the view. No textures, shadows,
meshes or planes (the background takes the floor's colour). Images therefore differ from GL
renders: do not mix the two in one dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SHIFT = 4  # OpenCV sub-pixel bits for smooth edges at 64-96 px
_RING = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
_BOX_FACES = (  # corner indices of each face of a box whose corners are the sign patterns below
    (0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3),
)
_BOX_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


@dataclass(frozen=True)
class PinholeCamera:
    """World → pixel projection. ``rotation`` columns are the camera x (right), y (up), z (backward) axes."""

    position: np.ndarray  # (3,) float64, world
    rotation: np.ndarray  # (3, 3) float64
    focal_px: float
    height: int
    width: int

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points → (N, 3) camera-frame points (looking along -z)."""
        return (points - self.position) @ self.rotation

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) world points → (N, 2) float pixel (x, y) and (N,) depth along the view (m)."""
        p = self.to_camera(points)
        depth = -p[:, 2]
        safe = np.maximum(depth, 1e-6)
        u = self.focal_px * p[:, 0] / safe + self.width / 2.0
        v = -self.focal_px * p[:, 1] / safe + self.height / 2.0
        return np.stack([u, v], axis=1), depth


def camera_from_model(model, data, camera: str, height: int, width: int) -> PinholeCamera:
    """The named MuJoCo camera (after mj_forward / mj_kinematics) as a PinholeCamera."""
    cam = model.camera(camera).id
    fovy = np.deg2rad(model.cam_fovy[cam])
    return PinholeCamera(
        position=data.cam_xpos[cam].copy(),
        rotation=data.cam_xmat[cam].reshape(3, 3).copy(),
        focal_px=(height / 2.0) / np.tan(fovy / 2.0),
        height=height,
        width=width,
    )


def _fill(image: np.ndarray, pixels: np.ndarray, color: np.ndarray) -> None:
    hull = cv2.convexHull(np.round(pixels * (1 << _SHIFT)).astype(np.int32))
    cv2.fillConvexPoly(image, hull, [int(c) for c in color], lineType=cv2.LINE_AA, shift=_SHIFT)


def _geom_polygons(kind: str, pos: np.ndarray, rot: np.ndarray, size: np.ndarray, cam: PinholeCamera):
    """Yield (world points (N, 3), shade 0-1) of the visible parts of one geom."""
    if kind == "box":
        corners = pos + (_BOX_SIGNS * size) @ rot.T
        for face in _BOX_FACES:
            pts = corners[list(face)]
            centre = pts.mean(axis=0)
            normal = centre - pos  # outward: a face centre lies along its normal from the box centre
            normal /= np.linalg.norm(normal) + 1e-12
            view = cam.position - centre
            facing = np.dot(normal, view / (np.linalg.norm(view) + 1e-12))
            if facing <= 0:
                continue
            shade = 0.45 + 0.55 * facing
            yield pts, shade
    elif kind == "sphere":
        ring = np.stack([np.cos(_RING), np.sin(_RING), np.zeros_like(_RING)], axis=1) * size[0]
        yield pos + ring @ cam.rotation.T, 0.9  # a disc facing the camera
    elif kind in ("capsule", "cylinder"):
        axis = rot[:, 2] * size[1]
        ring = np.stack([np.cos(_RING), np.sin(_RING), np.zeros_like(_RING)], axis=1) * size[0]
        if kind == "capsule":  # sphere silhouettes at both ends, facing the camera
            disc = ring @ cam.rotation.T
            yield np.concatenate([pos + axis + disc, pos - axis + disc]), 0.85
        else:
            disc = ring @ rot.T
            yield np.concatenate([pos + axis + disc, pos - axis + disc]), 0.8


def rasterize_scene(model, data, camera: str, height: int, width: int) -> np.ndarray:
    """MuJoCo model + data (kinematics up to date) → (height, width, 3) uint8 RGB from ``camera``."""
    import mujoco  # the caller already imported it (through edgeperc.sim.gl)

    cam = camera_from_model(model, data, camera, height, width)
    kinds = {
        int(mujoco.mjtGeom.mjGEOM_BOX): "box",
        int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
        int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule",
        int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
    }
    background = np.array([90, 94, 102], dtype=np.float64)
    for g in range(model.ngeom):
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE:
            background = model.geom_rgba[g, :3] * 255.0
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = background.astype(np.uint8)

    # Static world geoms (table) first: one big face's mean depth says little about what it hides.
    polygons: list[tuple[bool, float, np.ndarray, np.ndarray]] = []
    for g in range(model.ngeom):
        kind = kinds.get(int(model.geom_type[g]))
        rgba = model.geom_rgba[g]
        if kind is None or rgba[3] <= 0 or model.geom_group[g] > 2:
            continue
        pos, rot = data.geom_xpos[g], data.geom_xmat[g].reshape(3, 3)
        for pts, shade in _geom_polygons(kind, pos, rot, model.geom_size[g], cam):
            pixels, depth = cam.project(pts)
            if np.any(depth < 0.02):
                continue  # crosses the camera plane: skip rather than draw it inverted
            moving = bool(model.geom_bodyid[g] != 0)
            polygons.append((moving, float(depth.mean()), pixels, np.clip(rgba[:3] * 255.0 * shade, 0, 255)))
    for _, _, pixels, color in sorted(polygons, key=lambda item: (item[0], -item[1])):
        _fill(image, pixels, color)
    return image
