"""Signed distance primitives, compound solids and an analytic room, for vectorised sphere tracing.

Points travel as three (N,) float32 arrays (x, y, z) rather than (N, 3) rows: numpy is several
times faster on contiguous components. Distances are positive outside a solid. Every distance here
is exact or a lower bound of the true distance, which is what sphere tracing needs to never step
through a surface (smooth unions, rounded boxes and the room's union of pieces are bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

F32 = np.float32
_TETRA = ((1.0, -1.0, -1.0), (-1.0, -1.0, 1.0), (-1.0, 1.0, -1.0), (1.0, 1.0, 1.0))


def sd_box(x: np.ndarray, y: np.ndarray, z: np.ndarray, hx: float, hy: float, hz: float, rounding: float = 0.0) -> np.ndarray:
    """(N,) distance to an axis-aligned box centred at 0 with half extents h, edges rounded by ``rounding``."""
    qx = np.abs(x) - (hx - rounding)
    qy = np.abs(y) - (hy - rounding)
    qz = np.abs(z) - (hz - rounding)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(np.maximum(qx, qy), qz), 0)
    return outside + inside - rounding


def sd_sphere(x: np.ndarray, y: np.ndarray, z: np.ndarray, radius: float) -> np.ndarray:
    """(N,) distance to a sphere of ``radius`` centred at 0."""
    return np.sqrt(x * x + y * y + z * z) - radius


def sd_cylinder(x: np.ndarray, y: np.ndarray, z: np.ndarray, radius: float, hz: float, rounding: float = 0.0) -> np.ndarray:
    """(N,) distance to a capped cylinder along z (half height ``hz``), rims rounded by ``rounding``."""
    dr = np.sqrt(x * x + y * y) - (radius - rounding)
    dz = np.abs(z) - (hz - rounding)
    return np.minimum(np.maximum(dr, dz), 0) + np.sqrt(np.maximum(dr, 0) ** 2 + np.maximum(dz, 0) ** 2) - rounding


def sd_torus(x: np.ndarray, y: np.ndarray, z: np.ndarray, major: float, minor: float) -> np.ndarray:
    """(N,) distance to a torus lying in the xy plane (ring radius ``major``, tube radius ``minor``)."""
    q = np.sqrt(x * x + y * y) - major
    return np.sqrt(q * q + z * z) - minor


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth union of two distances with blend radius ``k`` (k = 0: hard union)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b + (a - b) * h - k * h * (1 - h)


@dataclass(frozen=True)
class Primitive:
    """One shape in a solid's local frame. ``size``: box half extents; sphere (r, r, r);
    cylinder (r, r, half height); torus (major, major, minor)."""

    kind: Literal["box", "sphere", "cylinder", "torus"]
    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    rounding: float = 0.0

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, cz = self.centre
        x, y, z = x - cx, y - cy, z - cz
        sx, sy, sz = self.size
        if self.kind == "box":
            return sd_box(x, y, z, sx, sy, sz, self.rounding)
        if self.kind == "sphere":
            return sd_sphere(x, y, z, sx)
        if self.kind == "cylinder":
            return sd_cylinder(x, y, z, sx, sz, self.rounding)
        return sd_torus(x, y, z, sx, sz)

    @property
    def half_extents(self) -> tuple[float, float, float]:
        """Half sizes of the primitive's axis-aligned bounding box about its centre."""
        sx, sy, sz = self.size
        if self.kind == "torus":
            return sx + sz, sx + sz, sz
        return sx, sy, sz


@dataclass
class Solid:
    """A compound object: primitives in a local frame (z up), hard or smooth union (``blend`` m),
    placed at ``position`` and turned by ``yaw`` about z. ``panel_axis``: for mirrors and glass, the
    thin local axis (its two faces carry the finish; the rims are the frame)."""

    primitives: tuple[Primitive, ...]
    position: tuple[float, float, float]
    yaw: float = 0.0
    blend: float = 0.0
    material: int = 0
    panel_axis: int | None = None
    role: str = "furniture"
    bound_centre: tuple[float, float, float] = field(init=False)
    bound_radius: float = field(init=False)

    def __post_init__(self) -> None:
        self.position = tuple(float(v) for v in self.position)
        self.yaw = float(self.yaw)
        self._cos, self._sin = math.cos(self.yaw), math.sin(self.yaw)
        # bounding sphere round the local bounding box (tighter than one round the origin, which
        # for furniture sits on the floor)
        lo = np.min([np.subtract(p.centre, p.half_extents) for p in self.primitives], axis=0) - self.blend
        hi = np.max([np.add(p.centre, p.half_extents) for p in self.primitives], axis=0) + self.blend
        self.local_lo = tuple(float(v) - 1e-3 for v in lo)
        self.local_hi = tuple(float(v) + 1e-3 for v in hi)
        cx, cy, cz = (lo + hi) / 2
        self.bound_centre = (self.position[0] + self._cos * cx - self._sin * cy,
                             self.position[1] + self._sin * cx + self._cos * cy, self.position[2] + cz)
        self.bound_centre = tuple(float(v) for v in self.bound_centre)
        self.bound_radius = float(np.linalg.norm(hi - lo) / 2) + 1e-3

    def to_local(self, x, y, z):
        """World points -> local frame (inverse yaw about the position)."""
        dx, dy = x - self.position[0], y - self.position[1]
        return self._cos * dx + self._sin * dy, -self._sin * dx + self._cos * dy, z - self.position[2]

    def vector_to_local(self, x, y, z):
        return self._cos * x + self._sin * y, -self._sin * x + self._cos * y, z

    def local_distance(self, lx: np.ndarray, ly: np.ndarray, lz: np.ndarray) -> np.ndarray:
        d = self.primitives[0].distance(lx, ly, lz)
        for prim in self.primitives[1:]:
            d = smooth_min(d, prim.distance(lx, ly, lz), self.blend)
        return d

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(N,) signed distance of world points."""
        return self.local_distance(*self.to_local(x, y, z))

    def normal(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, h: float = 1e-3):
        """Unit outward normals (three (N,) arrays) from the SDF gradient (tetrahedron differences, 4 evaluations)."""
        nx = np.zeros_like(x)
        ny = np.zeros_like(x)
        nz = np.zeros_like(x)
        for kx, ky, kz in _TETRA:
            d = self.distance(x + kx * h, y + ky * h, z + kz * h)
            nx += kx * d
            ny += ky * d
            nz += kz * d
        norm = np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-12
        return nx / norm, ny / norm, nz / norm


def _slabs(o, d, lo, hi):
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        a, b = (lo - o) * inv, (hi - o) * inv
    return np.minimum(a, b), np.maximum(a, b)


def ray_box(solid: Solid, ox, oy, oz, dx, dy, dz, pad=0.0):
    """Entry and exit distances of rays through the solid's local bounding box grown by ``pad``
    (scalar or (N,)); entry > exit where missed. Tighter than the bounding sphere for flat and
    long things (panels, tables, sofas)."""
    lx, ly, lz = solid.to_local(ox, oy, oz)
    vx, vy, vz = solid.vector_to_local(dx, dy, dz)
    (x0, y0, z0), (x1, y1, z1) = solid.local_lo, solid.local_hi
    ax, bx = _slabs(lx, vx, x0 - pad, x1 + pad)
    ay, by = _slabs(ly, vy, y0 - pad, y1 + pad)
    az, bz = _slabs(lz, vz, z0 - pad, z1 + pad)
    return np.maximum(np.maximum(ax, ay), az), np.minimum(np.minimum(bx, by), bz)


def march(solid: Solid, ox, oy, oz, dx, dy, dz, t_start: np.ndarray, t_end: np.ndarray,
          max_steps: int = 80, eps_m: float = 4e-4, eps_rel: float = 2e-4) -> np.ndarray:
    """Sphere-trace one solid along rays from t_start to t_end: (N,) hit distance, inf where missed.

    Origins may be scalars (one camera) or (N,) arrays; directions are unit (N,) arrays. Rays leave
    the active set as soon as they hit or pass t_end, so the cost follows the rays still marching.
    """
    n = t_start.shape[0]
    out = np.full(n, np.inf, F32)
    idx = np.arange(n)
    t = t_start.astype(F32, copy=True)
    end = t_end.astype(F32, copy=False)
    scalar_origin = np.ndim(ox) == 0
    ax, ay, az = (ox, oy, oz) if scalar_origin else (ox.copy(), oy.copy(), oz.copy())
    bx, by, bz = dx, dy, dz
    for step in range(max_steps):
        d = solid.distance(ax + bx * t, ay + by * t, az + bz * t)
        tol = eps_m + eps_rel * t
        last = step == max_steps - 1
        hit = d < (tol * 8 if last else tol)
        if hit.any():
            out[idx[hit]] = t[hit] + np.maximum(d[hit], 0)
        t = t + d
        keep = ~hit & (t < end)
        if last or not keep.any():
            break
        if not keep.all():
            idx, t, end = idx[keep], t[keep], end[keep]
            bx, by, bz = bx[keep], by[keep], bz[keep]
            if not scalar_origin:
                ax, ay, az = ax[keep], ay[keep], az[keep]
    return out


def soft_shadow(solid: Solid, lx: float, ly: float, lz: float, dx, dy, dz, t_start: np.ndarray, t_end: np.ndarray,
                dist: np.ndarray, sharpness: float = 14.0, max_steps: int = 24) -> np.ndarray:
    """(N,) light visibility in [0, 1] past one solid, marching from a point light (one scalar
    origin, cheap) along unit directions towards the lit points ``dist`` away. Quilez's penumbra
    estimate min(k·h / s), with s the distance left to the lit point. Rays must be chosen with the
    bound grown by dist / sharpness, where the penumbra can reach."""
    out = np.ones(t_start.shape[0], F32)
    idx = np.arange(t_start.shape[0])
    vis = out.copy()
    t = t_start.astype(F32, copy=True)
    end = t_end.astype(F32, copy=False)
    ref = dist.astype(F32, copy=False)
    bx, by, bz = dx, dy, dz
    for step in range(max_steps):
        h = solid.distance(lx + bx * t, ly + by * t, lz + bz * t)
        vis = np.minimum(vis, sharpness * h / np.maximum(ref - t, 1e-3))
        t = t + np.clip(h, 0.015, 0.5)
        keep = (vis > 0.02) & (t < end)
        if step == max_steps - 1 or not keep.any():
            out[idx] = vis
            break
        if not keep.all():
            out[idx[~keep]] = vis[~keep]
            idx, t, end, ref, vis = idx[keep], t[keep], end[keep], ref[keep], vis[keep]
            bx, by, bz = bx[keep], by[keep], bz[keep]
    return np.clip(out, 0, 1)


@dataclass(frozen=True)
class RoomPiece:
    """A convex piece of the room's free space: an axis-aligned box (lo, hi) or a vertical
    cylinder (centre xy, radius) between the floor and the ceiling."""

    kind: Literal["box", "cylinder"]
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    radius: float = 0.0

    @property
    def centre_xy(self) -> tuple[float, float]:
        return (self.lo[0] + self.hi[0]) / 2, (self.lo[1] + self.hi[1]) / 2

    def interval(self, ox, oy, oz, dx, dy, dz):
        """Entry/exit distances (t_in, t_out) of rays through the piece, and the exit normal
        (inward, i.e. towards the free space) as three arrays. t_in > t_out where missed."""
        with np.errstate(divide="ignore", invalid="ignore"):
            iz = 1.0 / dz
            tz0, tz1 = (self.lo[2] - oz) * iz, (self.hi[2] - oz) * iz
            z_in, z_out = np.minimum(tz0, tz1), np.maximum(tz0, tz1)
            if self.kind == "box":
                ix, iy = 1.0 / dx, 1.0 / dy
                tx0, tx1 = (self.lo[0] - ox) * ix, (self.hi[0] - ox) * ix
                ty0, ty1 = (self.lo[1] - oy) * iy, (self.hi[1] - oy) * iy
                x_in, x_out = np.minimum(tx0, tx1), np.maximum(tx0, tx1)
                y_in, y_out = np.minimum(ty0, ty1), np.maximum(ty0, ty1)
                t_in = np.maximum(np.maximum(x_in, y_in), z_in)
                t_out = np.minimum(np.minimum(x_out, y_out), z_out)
                axis = np.where(x_out <= y_out, np.where(x_out <= z_out, 0, 2), np.where(y_out <= z_out, 1, 2))
                nx = np.where(axis == 0, -np.sign(dx), 0).astype(F32)
                ny = np.where(axis == 1, -np.sign(dy), 0).astype(F32)
                nz = np.where(axis == 2, -np.sign(dz), 0).astype(F32)
                return t_in, t_out, (nx, ny, nz)
            cx, cy = self.centre_xy
            px, py = ox - cx, oy - cy
            a = np.maximum(dx * dx + dy * dy, 1e-12)  # vertical rays meet only floor and ceiling
            b = px * dx + py * dy
            c = px * px + py * py - self.radius**2
            root = np.sqrt(np.maximum(b * b - a * c, 0))
            s_in, s_out = (-b - root) / a, (-b + root) / a
            side_hit = b * b - a * c > 0
            s_in = np.where(side_hit, s_in, np.inf)
            s_out = np.where(side_hit, s_out, -np.inf)
            t_in, t_out = np.maximum(s_in, z_in), np.minimum(s_out, z_out)
            side = s_out <= z_out
            hx, hy = px + dx * t_out, py + dy * t_out
            nx = np.where(side, -hx / self.radius, 0).astype(F32)
            ny = np.where(side, -hy / self.radius, 0).astype(F32)
            nz = np.where(side, 0, -np.sign(dz)).astype(F32)
            return t_in, t_out, (nx, ny, nz)

    def free_distance(self, x, y, z) -> np.ndarray:
        """(N,) distance from inside points to this piece's boundary (negative outside)."""
        if self.kind == "box":
            cx, cy = self.centre_xy
            cz = (self.lo[2] + self.hi[2]) / 2
            return -sd_box(x - cx, y - cy, z - cz, (self.hi[0] - self.lo[0]) / 2, (self.hi[1] - self.lo[1]) / 2, (self.hi[2] - self.lo[2]) / 2)
        cx, cy = self.centre_xy
        half = (self.hi[2] - self.lo[2]) / 2
        return -sd_cylinder(x - cx, y - cy, z - (self.lo[2] + half), self.radius, half)


@dataclass
class Room:
    """The room's free space as a union of overlapping convex pieces; rays start inside it and
    leave it where the last overlapping piece ends (exact, no marching)."""

    shape: str
    pieces: tuple[RoomPiece, ...]
    width_m: float
    depth_m: float
    height_m: float

    @property
    def convex(self) -> bool:
        return self.shape != "l_shape"

    def exit(self, ox, oy, oz, dx, dy, dz):
        """Rays from inside: (t, (nx, ny, nz), piece index) where they meet a wall, floor or ceiling."""
        n = dx.shape[0]
        t = np.zeros(n, F32)
        normal = [np.zeros(n, F32), np.zeros(n, F32), np.zeros(n, F32)]
        piece = np.zeros(n, np.int16)
        spans = [p.interval(ox, oy, oz, dx, dy, dz) for p in self.pieces]
        if self.convex:  # the ray's stretch inside a convex union is one interval: the latest exit ends it
            for index, (t_in, t_out, nrm) in enumerate(spans):
                grow = (t_in < t_out) & (t_out > t)
                t = np.where(grow, t_out, t).astype(F32)
                for k in range(3):
                    normal[k] = np.where(grow, nrm[k], normal[k])
                piece = np.where(grow, index, piece)
            return t, tuple(normal), piece
        for _ in range(len(self.pieces)):
            for index, (t_in, t_out, nrm) in enumerate(spans):
                grow = (t_in <= t + 1e-4) & (t_out > t)
                if grow.any():
                    t = np.where(grow, t_out, t).astype(F32)
                    for k in range(3):
                        normal[k] = np.where(grow, nrm[k], normal[k])
                    piece = np.where(grow, index, piece)
        return t, tuple(normal), piece

    def free_distance(self, x, y, z) -> np.ndarray:
        """(N,) lower bound of the distance from a point inside the room to its nearest surface."""
        d = self.pieces[0].free_distance(x, y, z)
        for p in self.pieces[1:]:
            d = np.maximum(d, p.free_distance(x, y, z))
        return d


@dataclass
class RayCones:
    """Rays from one origin grouped in consecutive chunks, each bounded by a cone (axis, half
    angle). Testing a bounding sphere against a few thousand cones first spares the exact per-ray
    test on all rays: feed rays in tile order (see ``tile_order``) so that chunks are tight."""

    ax: np.ndarray  # (k,) unit cone axes
    ay: np.ndarray
    az: np.ndarray
    cos_half: np.ndarray  # (k,)
    sin_half: np.ndarray
    n: int
    chunk: int

    @classmethod
    def of(cls, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, chunk: int = 64) -> "RayCones":
        n = dx.shape[0]
        k = -(-n // chunk)
        pad = k * chunk - n
        parts = []
        for d in (dx, dy, dz):
            d = np.concatenate([d, np.repeat(d[-1:], pad)]) if pad else d
            parts.append(d.reshape(k, chunk))
        sx, sy, sz = (p.sum(1) for p in parts)
        norm = np.sqrt(sx * sx + sy * sy + sz * sz) + 1e-12
        ax, ay, az = sx / norm, sy / norm, sz / norm
        cos_half = np.clip((parts[0] * ax[:, None] + parts[1] * ay[:, None] + parts[2] * az[:, None]).min(1) - 1e-4, -1, 1)
        return cls(ax, ay, az, cos_half, np.sqrt(1 - cos_half * cos_half), n, chunk)

    def chunk_max(self, values: np.ndarray) -> np.ndarray:
        """(k,) maximum of a per-ray (n,) array over each chunk."""
        pad = self.ax.shape[0] * self.chunk - self.n
        if pad:
            values = np.concatenate([values, np.repeat(values[-1:], pad)])
        return values.reshape(-1, self.chunk).max(1)

    def candidates(self, ox: float, oy: float, oz: float, centre, radius) -> np.ndarray:
        """Indices of the rays whose chunk's cone meets the sphere (centre, radius); ``radius``
        may be (k,) per chunk."""
        vx, vy, vz = centre[0] - ox, centre[1] - oy, centre[2] - oz
        dist = math.sqrt(vx * vx + vy * vy + vz * vz)
        radius = np.broadcast_to(np.asarray(radius, np.float64), self.ax.shape)
        sin_a = np.minimum(radius / max(dist, 1e-9), 1.0)
        cos_a = np.sqrt(1 - sin_a * sin_a)
        cos_theta = (self.ax * vx + self.ay * vy + self.az * vz) / max(dist, 1e-9)
        # angle to the centre <= cone half angle + sphere's angular radius (or the origin is inside)
        limit = cos_a * self.cos_half - sin_a * self.sin_half
        wide = (sin_a >= 1.0) | (np.arcsin(sin_a) + np.arccos(self.cos_half) >= math.pi)
        hit = np.flatnonzero(wide | (cos_theta >= limit))
        if hit.size == 0:
            return hit
        idx = (hit[:, None] * self.chunk + np.arange(self.chunk)[None, :]).ravel()
        return idx[idx < self.n]


def tile_order(hw: tuple[int, int], tile: int = 8) -> np.ndarray:
    """(H*W,) permutation of raster indices into tile-major order (tile x tile blocks)."""
    height, width = hw
    rows, cols = np.divmod(np.arange(height * width), width)
    key = (rows // tile) * (-(-width // tile)) + cols // tile
    return np.argsort(key, kind="stable")
