"""Synthetic equirectangular panoramas with metric depth for the drone depth + uncertainty model.

A room (box, L-shape, rounded rectangle or cylinder: a union of convex pieces, intersected
analytically) is furnished with signed-distance solids (rounded boxes, cylinders, spheres, tori,
smooth unions), wall panels (doors, pictures, mirrors) and free-standing glass, lit by point lights
with soft shadows and ambient occlusion, and sphere-traced in bulk with numpy: float32, rays in
8x8 tiles culled per solid by a cone-vs-sphere test, then marched one solid at a time inside its
bounding box with a shrinking set of active rays.

What makes depth ambiguous, so that an aleatoric head has something to learn, is on by default:
textureless surfaces, mirrors (colour of the reflected scene, depth of the mirror), glass (colour
of what is behind, depth of the glass), depth edges (with "flying pixels" mixed across them) and a
sensor-like depth noise whose σ = a + b·d² grows with distance; pixels past the sensor's range are
marked invalid.

Convention: longitude along W from -π to π,
latitude along H from +π/2 (top row) to -π/2, z up, pixel centres at +0.5. Column 0 and column W-1
are neighbours in the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeperc.synth.sdf import F32, Primitive, RayCones, Room, RoomPiece, Solid, march, ray_box, soft_shadow, tile_order

RoomShape = Literal["box", "l_shape", "rounded", "cylinder"]
TextureKind = Literal["checker", "stripes", "tiles", "noise", "wood"]

LABEL_TEXTURED, LABEL_TEXTURELESS, LABEL_MIRROR, LABEL_GLASS, LABEL_LAMP = 0, 1, 2, 3, 4
LABEL_NAMES = {LABEL_TEXTURED: "textured", LABEL_TEXTURELESS: "textureless", LABEL_MIRROR: "mirror",
               LABEL_GLASS: "glass", LABEL_LAMP: "lamp"}
_SHADOW_SHARPNESS = 14.0  # k of the soft-shadow estimate: larger = harder shadows


def _range(lo_min: float, hi_max: float):
    """Validator body for (lo, hi) pairs: lo <= hi, both within [lo_min, hi_max]."""

    def check(name: str, pair) -> None:
        lo, hi = pair
        if not (lo_min <= lo <= hi <= hi_max):
            raise ValueError(f"{name} {tuple(pair)} must satisfy {lo_min} <= low <= high <= {hi_max}")

    return check


class PanoramaRecipe(BaseModel):
    """How a panorama is made. Ranges are (low, high), drawn uniformly per panorama."""

    model_config = ConfigDict(extra="forbid")

    size_hw: tuple[int, int] = Field((256, 512), description="(H, W) with W = 2 H (equirectangular)")
    room_shapes: tuple[RoomShape, ...] = Field(("box", "box", "l_shape", "rounded", "cylinder"),
                                               min_length=1, description="drawn uniformly; repeat a name to weight it")
    room_width_m: tuple[float, float] = (3.0, 9.0)
    room_depth_m: tuple[float, float] = (3.0, 9.0)
    room_height_m: tuple[float, float] = (2.4, 3.4)
    camera_height_m: tuple[float, float] = Field((0.8, 2.0), description="drone altitude above the floor (kept 0.4 m under the ceiling)")
    objects_per_10m2: float = Field(2.5, ge=0, le=20, description="Poisson mean of furniture per 10 m² of floor")
    max_objects: int = Field(30, ge=0, le=200)
    light_count: tuple[int, int] = (1, 3)
    light_intensity: tuple[float, float] = (1.0, 2.2)
    light_warmth: tuple[float, float] = Field((-0.1, 0.15), description="red-blue tilt of each light's colour")
    ambient: tuple[float, float] = (0.08, 0.2)
    textures: tuple[TextureKind, ...] = Field(("checker", "stripes", "tiles", "noise", "wood"), min_length=1)
    texture_scale_m: tuple[float, float] = Field((0.08, 0.6), description="period of a texture in metres")
    texture_contrast: tuple[float, float] = (0.25, 0.8)
    textureless_fraction: float = Field(0.25, ge=0, le=1, description="chance that a surface is plain (no texture)")
    wall_panels_mean: float = Field(2.5, ge=0, le=20, description="Poisson mean of doors and pictures on the walls")
    mirrors: tuple[int, int] = Field((0, 2), description="mirror panels per room (on walls or free-standing)")
    glass: tuple[int, int] = Field((0, 2), description="glass partitions or glass table tops per room")
    chrome_fraction: float = Field(0.1, ge=0, le=1, description="chance a round object has a mirror finish")
    glass_valid: bool = Field(True, description="False marks glass pixels invalid, as sensors that see through it")
    noise_a_m: float = Field(0.01, ge=0, le=1, description="depth noise σ = a + b·d² (metres)")
    noise_b_per_m: float = Field(0.003, ge=0, le=1)
    edge_mix_fraction: float = Field(0.3, ge=0, le=1, description="share of depth-edge pixels whose reading mixes both sides")
    max_range_m: float = Field(10.0, gt=0, description="farther pixels are invalid (depth 0)")
    rgb_noise: float = Field(0.01, ge=0, le=0.2, description="σ of the image noise, fraction of full scale")
    shadows: bool = True
    ambient_occlusion: bool = True
    max_steps: int = Field(80, ge=8, le=512, description="sphere-tracing iterations per solid")

    @model_validator(mode="after")
    def _check(self) -> PanoramaRecipe:
        height, width = self.size_hw
        if height < 8 or width != 2 * height:
            raise ValueError(f"size_hw {tuple(self.size_hw)} must be (H, 2H) with H >= 8: equirectangular panoramas are 1:2")
        _range(1.5, 50.0)("room_width_m", self.room_width_m)
        _range(1.5, 50.0)("room_depth_m", self.room_depth_m)
        _range(1.8, 20.0)("room_height_m", self.room_height_m)
        _range(0.2, 19.0)("camera_height_m", self.camera_height_m)
        _range(0, 16)("light_count", self.light_count)
        _range(0.0, 20.0)("light_intensity", self.light_intensity)
        _range(-0.5, 0.5)("light_warmth", self.light_warmth)
        _range(0.0, 2.0)("ambient", self.ambient)
        _range(0.005, 10.0)("texture_scale_m", self.texture_scale_m)
        _range(0.0, 1.0)("texture_contrast", self.texture_contrast)
        _range(0, 10)("mirrors", self.mirrors)
        _range(0, 10)("glass", self.glass)
        return self


RECIPES: dict[str, dict] = {
    "default": {},
    # Generalisation set: bigger and taller rooms, dimmer and warmer light from more lamps, denser
    # furniture, more glass and mirrors; the sensor model stays the same.
    "shifted": {
        "room_width_m": (5.0, 12.0), "room_depth_m": (4.0, 11.0), "room_height_m": (3.0, 4.5),
        "room_shapes": ("l_shape", "rounded", "cylinder", "box"), "objects_per_10m2": 4.0,
        "light_count": (2, 5), "light_intensity": (0.5, 1.2), "light_warmth": (0.1, 0.3),
        "ambient": (0.04, 0.12), "texture_scale_m": (0.05, 0.4), "mirrors": (1, 3), "glass": (1, 3),
    },
}


def panorama_recipe(name: str = "default", size_hw: tuple[int, int] | None = None, **overrides) -> PanoramaRecipe:
    """The named recipe (``RECIPES``) at ``size_hw``; mistakes raise ConfigError naming the field."""
    from pydantic import ValidationError

    from edgeperc.errors import ConfigError

    if name not in RECIPES:
        raise ConfigError(f"panorama recipe '{name}' must be one of {', '.join(RECIPES)}")
    fields = {**RECIPES[name], **overrides}
    if size_hw is not None:
        fields["size_hw"] = tuple(size_hw)
    try:
        return PanoramaRecipe(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'recipe'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"panorama recipe '{name}': {problems}") from None


def depth_noise_sigma(depth_m: np.ndarray, recipe: PanoramaRecipe) -> np.ndarray:
    """σ (metres) of the sensor model at each true depth: a + b·d² (stereo/ToF-like growth)."""
    depth_m = np.asarray(depth_m, F32)
    return (recipe.noise_a_m + recipe.noise_b_per_m * depth_m * depth_m).astype(F32)


@dataclass
class Panorama:
    """One rendered panorama. ``depth`` is the noisy sensor reading (0 where invalid),
    ``clean_depth`` the exact ray length; ``noise_sigma`` is the sensor model's σ per pixel and
    ``labels`` the surface kind (LABEL_NAMES) the primary ray met."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres
    clean_depth: np.ndarray  # (H, W) float32 metres
    valid: np.ndarray  # (H, W) bool
    noise_sigma: np.ndarray  # (H, W) float32 metres
    labels: np.ndarray  # (H, W) uint8
    metadata: dict = field(default_factory=dict)


def panorama_directions(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit ray directions of an equirectangular image as three (H, W) float32 arrays (x, y, z),
    (the depth pipeline's sector summary uses the same convention)."""
    height, width = hw
    lon = (np.arange(width) + 0.5) / width * 2 * np.pi - np.pi
    lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    cos_lat = np.cos(lat)[:, None]
    x = (cos_lat * np.cos(lon)[None, :]).astype(F32)
    y = (cos_lat * np.sin(lon)[None, :]).astype(F32)
    z = np.broadcast_to(np.sin(lat)[:, None], (height, width)).astype(F32)
    return x, y, z


# --------------------------------------------------------------------------------------------
# Materials and procedural textures


@dataclass(frozen=True)
class Material:
    """Surface look. ``texture`` None = textureless; colours are linear RGB in [0, 1]."""

    colour: tuple[float, float, float]
    second: tuple[float, float, float]
    texture: str | None = None
    scale_m: float = 0.3
    finish: Literal["matte", "mirror", "glass", "emissive"] = "matte"
    seed: int = 0


def _srgb_to_linear(c) -> np.ndarray:
    return np.asarray(c, np.float64) ** 2.2


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> linear RGB."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    rgb = v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)
    return _srgb_to_linear(rgb)


def _hash2(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic [0, 1) values on an integer lattice (integer hash, no tables)."""
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + seed * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).astype(F32) / F32(16777216.0)


def _value_noise(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1) with unit lattice spacing."""
    fu, fv = np.floor(u), np.floor(v)
    ru, rv = u - fu, v - fv
    ru = ru * ru * (3 - 2 * ru)
    rv = rv * rv * (3 - 2 * rv)
    iu, iv = fu.astype(np.int64), fv.astype(np.int64)
    a, b = _hash2(iu, iv, seed), _hash2(iu + 1, iv, seed)
    c, d = _hash2(iu, iv + 1, seed), _hash2(iu + 1, iv + 1, seed)
    return (a + (b - a) * ru) + ((c + (d - c) * ru) - (a + (b - a) * ru)) * rv


def _fade(footprint: np.ndarray, period: float) -> np.ndarray:
    """Weight of a texture detail of ``period`` metres seen through a pixel footprint: 1 when the
    period spans 6 pixels or more, 0 at 2 pixels or fewer, where it would alias into moiré
    (texture detail shrinks with distance, then fades to its mean)."""
    return np.clip((period / np.maximum(footprint, 1e-6) - 2.0) * 0.25, 0, 1)


def _pattern(material: Material, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """(n,) pattern value in [0, 1] (0.5 = mean) of a textured material at surface coordinates (u, v) metres."""
    s = material.scale_m
    kind = material.texture
    if kind == "checker":
        c = (np.floor(u / s) + np.floor(v / s)) % 2
        return 0.5 + (c - 0.5) * _fade(footprint, 2 * s)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(u * (2 * np.pi / s)) * _fade(footprint, s)
    if kind == "tiles":
        gu, gv = (u / s) % 1.0, (v / s) % 1.0
        grout = ((gu < 0.06) | (gv < 0.06)).astype(F32)
        tone = _hash2(np.floor(u / s), np.floor(v / s), material.seed) - 0.5
        return 0.72 + (0.15 * tone - 0.85 * (grout - 0.12)) * _fade(footprint, 0.2 * s)
    if kind == "noise":
        total = np.full(u.shape, 0.5, F32)
        amp, freq = 0.5, 1.0 / s
        for octave in range(3):
            total += amp * (_value_noise(u * freq, v * freq, material.seed + octave) - 0.5) * _fade(footprint, 1.0 / freq)
            amp, freq = amp * 0.5, freq * 2.3
        return total
    # wood: planks of width s along v, each its own tone, with grain lines along u
    plank = np.floor(v / s)
    tone = _hash2(plank, plank * 7 + 3, material.seed)
    grain_pos = u * (3.0 / s) + 3.0 * _value_noise(u * (0.8 / s), v * (4.0 / s), material.seed + 11)
    grain = 0.5 + 0.5 * np.sin(grain_pos * 2 * np.pi)
    gap = ((v / s) % 1.0 < 0.04).astype(F32)
    detail = 0.35 * (grain - 0.5) * _fade(footprint, s / 3.0) - 0.7 * (gap - 0.04) * _fade(footprint, 0.1 * s)
    return 0.3 + 0.45 * tone + detail


def _albedo(material: Material, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """(n, 3) linear albedo."""
    base = np.asarray(material.colour, F32)
    if material.texture is None:
        return np.broadcast_to(base, (u.shape[0], 3)).copy()
    mix = np.clip(_pattern(material, u, v, footprint), 0, 1)[:, None]
    return base + (np.asarray(material.second, F32) - base) * mix


# --------------------------------------------------------------------------------------------
# Scene construction


@dataclass
class _Light:
    position: tuple[float, float, float]
    colour: np.ndarray  # (3,) float32 intensity × tint
    lamp_radius: float


@dataclass
class Scene:
    """Everything ``render_scene`` needs; drawn by ``build_scene``."""

    room: Room
    solids: list[Solid]
    materials: list[Material]
    frame_material: dict[int, int]  # panel solid index -> material of its rim
    floor_material: int
    ceiling_material: int
    wall_materials: tuple[int, int, int, int]  # by inward normal +x, -x, +y, -y
    baseboard_material: int
    baseboard_m: float
    lights: list[_Light]
    ambient: float
    camera: tuple[float, float, float]
    camera_yaw: float
    pixel_rad: float
    recipe: PanoramaRecipe
    counts: dict = field(default_factory=dict)


class _Builder:
    """Draws a scene from the rng in a fixed order (room, camera, walls, panels, furniture, lights)."""

    def __init__(self, rng: np.random.Generator, recipe: PanoramaRecipe):
        self.rng = rng
        self.recipe = recipe
        self.materials: list[Material] = []
        self.solids: list[Solid] = []
        self.frame_material: dict[int, int] = {}
        self.footprints: list[np.ndarray] = []  # (k, 3) sample points inside each placed solid

    # materials --------------------------------------------------------------------------
    def material(self, kind: str, finish: str = "matte") -> int:
        rng, recipe = self.rng, self.recipe
        if finish == "mirror":
            colour = _srgb_to_linear([0.82, 0.85, 0.88])
            return self._add(Material(tuple(colour), tuple(colour), None, 1.0, "mirror"))
        if finish == "glass":
            colour = _srgb_to_linear([0.9, 0.97, 0.95])
            return self._add(Material(tuple(colour), tuple(colour), None, 1.0, "glass"))
        if kind == "wall":
            colour = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.55, 0.92))
        elif kind == "ceiling":
            colour = _hsv(rng.uniform(), rng.uniform(0.0, 0.08), rng.uniform(0.82, 0.95))
        elif kind == "floor":
            colour = _hsv(rng.uniform(0.03, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.25, 0.75))
        else:
            colour = _hsv(rng.uniform(), rng.uniform(0.1, 0.85), rng.uniform(0.2, 0.9))
        # ceilings are plain most of the time whatever the recipe says, as real ones are
        textureless = kind == "ceiling" and rng.uniform() < 0.85 or rng.uniform() < recipe.textureless_fraction
        if textureless:
            return self._add(Material(tuple(colour), tuple(colour), None))
        texture = str(rng.choice(recipe.textures))
        if kind == "floor" and "wood" in recipe.textures and rng.uniform() < 0.5:
            texture = "wood"  # floors are often boards
        contrast = rng.uniform(*recipe.texture_contrast)
        if rng.uniform() < 0.5:
            second = colour * (1 - contrast)
        else:
            second = colour + (_hsv(rng.uniform(), rng.uniform(0, 0.9), rng.uniform(0.3, 1.0)) - colour) * contrast
        scale = math.exp(rng.uniform(*np.log(recipe.texture_scale_m)))
        return self._add(Material(tuple(colour), tuple(np.clip(second, 0, 1)), texture, scale, "matte", int(rng.integers(1 << 20))))

    def _add(self, material: Material) -> int:
        self.materials.append(material)
        return len(self.materials) - 1

    # room --------------------------------------------------------------------------------
    def room(self) -> Room:
        rng, recipe = self.rng, self.recipe
        shape = str(rng.choice(recipe.room_shapes))
        w, d, h = rng.uniform(*recipe.room_width_m), rng.uniform(*recipe.room_depth_m), rng.uniform(*recipe.room_height_m)
        if shape == "box":
            pieces = (RoomPiece("box", (0, 0, 0), (w, d, h)),)
        elif shape == "l_shape":
            fw, fd = w * rng.uniform(0.45, 0.7), d * rng.uniform(0.45, 0.7)
            pieces = (RoomPiece("box", (0, 0, 0), (w, fd, h)), RoomPiece("box", (0, 0, 0), (fw, d, h)))
        elif shape == "rounded":
            r = min(w, d) * rng.uniform(0.15, 0.4)
            pieces = (RoomPiece("box", (r, 0, 0), (w - r, d, h)), RoomPiece("box", (0, r, 0), (w, d - r, h)),
                      *(RoomPiece("cylinder", (cx - r, cy - r, 0), (cx + r, cy + r, h), r)
                        for cx, cy in ((r, r), (w - r, r), (r, d - r), (w - r, d - r))))
        else:
            w = d = (w + d) / 2
            pieces = (RoomPiece("cylinder", (0, 0, 0), (w, d, h), w / 2),)
        pieces = tuple(RoomPiece(p.kind, tuple(float(v) for v in p.lo), tuple(float(v) for v in p.hi), float(p.radius)) for p in pieces)
        return Room(shape, pieces, float(w), float(d), float(h))

    def inside(self, room: Room, margin: float) -> tuple[float, float]:
        """A random floor position at least ``margin`` from every wall (walls are vertical, so the
        distance is taken at mid-height, where floor and ceiling are farthest)."""
        z = room.height_m / 2
        margin = min(margin, z - 0.01)
        for _ in range(4):
            xy = self.rng.uniform((0, 0), (room.width_m, room.depth_m), size=(64, 2)).astype(F32)
            ok = np.flatnonzero(room.free_distance(xy[:, 0], xy[:, 1], np.full(64, z, F32)) >= margin)
            if ok.size:
                return float(xy[ok[0], 0]), float(xy[ok[0], 1])
        return room.pieces[0].centre_xy

    def wall_spot(self, room: Room, z: float):
        """A point on a flat wall at height z: ((x, y), inward normal (nx, ny)) or None."""
        x, y = self.inside(room, 0.3)
        angle = self.rng.uniform(-np.pi, np.pi)
        dx, dy = np.array([math.cos(angle)], F32), np.array([math.sin(angle)], F32)
        t, (nx, ny, nz), piece = room.exit(F32(x), F32(y), F32(z), dx, dy, np.zeros(1, F32))
        if room.pieces[int(piece[0])].kind != "box" or abs(float(nz[0])) > 0.5:
            return None
        return (x + float(dx[0] * t[0]), y + float(dy[0] * t[0])), (float(nx[0]), float(ny[0]))

    # placement checks -----------------------------------------------------------------------
    @staticmethod
    def _box_samples(x: float, y: float, yaw: float, hx: float, hy: float, z0: float, z1: float) -> np.ndarray:
        """(27, 3) points over an upright box footprint: corners, edge midpoints and centre at three heights."""
        c, s = math.cos(yaw), math.sin(yaw)
        points = []
        for z in (z0 + 0.03, (z0 + z1) / 2, z1 - 0.03):
            for a in (-1.0, 0.0, 1.0):
                for b in (-1.0, 0.0, 1.0):
                    lx, ly = a * hx, b * hy
                    points.append((x + c * lx - s * ly, y + s * lx + c * ly, z))
        return np.asarray(points, F32)

    def fits(self, room: Room, samples: np.ndarray, solids: list[Solid], camera, wall_ok: float = 0.01) -> bool:
        px, py, pz = samples[:, 0], samples[:, 1], samples[:, 2]
        if room.free_distance(px, py, pz).min() < wall_ok:
            return False
        cam = np.asarray(camera, F32)[:, None]
        for solid in self.solids:  # what stands already must stay clear of the newcomer's footprint
            if solid.distance(px, py, pz).min() < 0.02:
                return False
        for solid in solids:  # and the newcomer clear of the camera and of the footprints placed
            if solid.distance(*cam)[0] < 0.45:
                return False
            for other in self.footprints:
                if solid.distance(other[:, 0], other[:, 1], other[:, 2]).min() < 0.02:
                    return False
        return True

    def place(self, room: Room, camera, parts: list[Solid], samples: np.ndarray, wall_ok: float = 0.01) -> bool:
        if not self.fits(room, samples, parts, camera, wall_ok):
            return False
        self.solids.extend(parts)
        self.footprints.append(samples)
        return True

    # panels ----------------------------------------------------------------------------------
    def panel(self, room: Room, camera, width: float, height: float, bottom: float, thickness: float,
              material: int, frame: int, role: str, on_wall: bool, tries: int = 40) -> bool:
        """A thin box (its thin axis is local x) on a flat wall or standing on the floor."""
        rng = self.rng
        height = min(height, room.height_m - bottom - 0.05)
        if height < 0.2:
            return False
        zc = bottom + height / 2
        for _ in range(tries):
            if on_wall:
                spot = self.wall_spot(room, zc)
                if spot is None:
                    continue
                (wx, wy), (nx, ny) = spot
                yaw = math.atan2(ny, nx)
                cx, cy = wx + nx * (thickness / 2 + 0.01), wy + ny * (thickness / 2 + 0.01)
                tx, ty = -ny, nx
                ends = np.array([[cx + s * tx * width / 2 - nx * k, cy + s * ty * width / 2 - ny * k, zc]
                                 for s in (-1.0, 1.0) for k in (0.0, 0.12)], F32)
                free = room.free_distance(ends[:, 0], ends[:, 1], ends[:, 2])
                if free[0] < 0.005 or free[2] < 0.005 or free[1] > -0.01 or free[3] > -0.01:
                    continue  # an end runs past a corner or floats beyond the wall
                wall_ok = 0.0
            else:
                cx, cy = self.inside(room, width / 2 + 0.1)
                yaw = rng.uniform(-np.pi, np.pi)
                wall_ok = 0.01
            solid = Solid((Primitive("box", (0.0, 0.0, 0.0), (thickness / 2, width / 2, height / 2), 0.002),),
                          (cx, cy, zc), yaw, material=material, panel_axis=0, role=role)
            samples = self._box_samples(cx, cy, yaw, thickness / 2, width / 2, bottom, bottom + height)
            if self.place(room, camera, [solid], samples, wall_ok):
                self.frame_material[len(self.solids) - 1] = frame
                return True
        return False

    # furniture -------------------------------------------------------------------------------
    def furniture(self, room: Room, camera, glass_top: bool = False) -> tuple[bool, str]:
        """One furniture-like object, against a wall or free-standing. Returns (placed, kind)."""
        rng = self.rng
        kind = str(rng.choice(["cabinet", "cabinet", "table", "chair", "sofa", "round", "round", "ball", "sculpture", "bed"]))
        if glass_top:
            kind = "table"
        round_kind = kind in ("round", "ball", "sculpture")
        chrome = round_kind and rng.uniform() < self.recipe.chrome_fraction
        mat = self.material("object", "mirror" if chrome else "matte")
        parts: list[tuple[tuple[Primitive, ...], float, int, int | None, str]] = []  # prims, blend, material, panel axis, role
        if kind == "cabinet":
            hx, hy, hz = rng.uniform(0.2, 0.5), rng.uniform(0.25, 1.0), rng.uniform(0.2, 1.1)
            r = rng.uniform(0.005, 0.04)
            prims = [Primitive("box", (0, 0, hz), (hx, hy, hz), r)]
            if rng.uniform() < 0.4:  # a plinth in another material look
                prims.append(Primitive("box", (0.0, 0.0, 0.04), (hx - 0.03, hy - 0.03, 0.04), 0.0))
            parts.append((tuple(prims), 0.0, mat, None, "furniture"))
            height = 2 * hz
        elif kind == "table":
            hx, hy = rng.uniform(0.3, 0.6), rng.uniform(0.4, 1.0)
            height, top = rng.uniform(0.7, 0.78), rng.uniform(0.015, 0.03)  # top: half thickness
            leg = rng.uniform(0.02, 0.04)
            legs = tuple(Primitive("cylinder", (sx * (hx - 0.08), sy * (hy - 0.08), (height - 2 * top) / 2), (leg, leg, (height - 2 * top) / 2), 0.0)
                         for sx in (-1, 1) for sy in (-1, 1))
            top_prim = Primitive("box", (0.0, 0.0, height - top), (hx, hy, top), 0.005)
            if glass_top:  # a horizontal pane 1-2 cm thick: its thin axis is local z
                glass = self.material("object", "glass")
                pane = top / 3
                parts.append(((Primitive("box", (0.0, 0.0, height - pane), (hx, hy, pane), 0.002),), 0.0, glass, 2, "glass"))
                parts.append((legs, 0.0, mat, None, "furniture"))
            else:
                parts.append(((top_prim,) + legs, 0.0, mat, None, "furniture"))
        elif kind == "chair":
            hx = hy = 0.22
            height = rng.uniform(0.85, 1.0)
            seat = rng.uniform(0.42, 0.48)
            prims = (Primitive("box", (0.0, 0.0, seat), (hx, hy, 0.025), 0.01),
                     Primitive("box", (-hx + 0.02, 0.0, (seat + height) / 2), (0.02, hy, (height - seat) / 2), 0.01),
                     *(Primitive("cylinder", (sx * (hx - 0.03), sy * (hy - 0.03), seat / 2), (0.02, 0.02, seat / 2), 0.0)
                       for sx in (-1, 1) for sy in (-1, 1)))
            parts.append((prims, 0.0, mat, None, "furniture"))
        elif kind == "sofa":
            hx, hy = rng.uniform(0.4, 0.5), rng.uniform(0.7, 1.2)
            height = 0.8
            prims = (Primitive("box", (0.0, 0.0, 0.22), (hx, hy, 0.2), 0.06),
                     Primitive("box", (-hx + 0.12, 0.0, 0.5), (0.12, hy, 0.3), 0.06),
                     Primitive("box", (0.0, hy - 0.12, 0.32), (hx, 0.12, 0.3), 0.06),
                     Primitive("box", (0.0, -hy + 0.12, 0.32), (hx, 0.12, 0.3), 0.06))
            parts.append((prims, 0.05, mat, None, "furniture"))
        elif kind == "bed":
            hx, hy = rng.uniform(0.95, 1.05), rng.uniform(0.45, 0.9)
            height = 1.0
            prims = (Primitive("box", (0.0, 0.0, 0.25), (hx, hy, 0.25), 0.08),
                     Primitive("box", (-hx + 0.04, 0.0, 0.5), (0.04, hy, 0.5), 0.02))
            parts.append((prims, 0.0, mat, None, "furniture"))
        elif kind == "round":
            r = rng.uniform(0.15, 0.45)
            hx = hy = r
            pillar = rng.uniform() < 0.25
            height = room.height_m if pillar else rng.uniform(0.4, 1.2)
            parts.append(((Primitive("cylinder", (0.0, 0.0, height / 2), (r, r, height / 2), 0.0 if pillar else rng.uniform(0.0, 0.05)),),
                          0.0, mat, None, "furniture"))
        elif kind == "ball":
            r = rng.uniform(0.15, 0.5)
            hx = hy = r
            height = 2 * r
            parts.append(((Primitive("sphere", (0.0, 0.0, r), (r, r, r)),), 0.0, mat, None, "furniture"))
        else:  # sculpture: smooth union of a plinth, a ring and a ball
            r = rng.uniform(0.2, 0.35)
            hx = hy = r + 0.1
            height = 0.6 + 2 * r
            prims = (Primitive("cylinder", (0.0, 0.0, 0.3), (0.22, 0.22, 0.3), 0.02),
                     Primitive("torus", (0.0, 0.0, 0.62), (0.25, 0.25, 0.06)),
                     Primitive("sphere", (0.0, 0.0, 0.6 + r), (r, r, r)))
            parts.append((prims, rng.uniform(0.05, 0.15), mat, None, "furniture"))
        height = min(height, room.height_m)
        against_wall = kind in ("cabinet", "sofa", "bed", "chair") and rng.uniform() < 0.6
        for _ in range(25):
            if against_wall:
                spot = self.wall_spot(room, 0.5)
                if spot is None:
                    continue
                (wx, wy), (nx, ny) = spot
                yaw = math.atan2(ny, nx)
                x, y = wx + nx * (hx + 0.03), wy + ny * (hx + 0.03)
            else:
                x, y = self.inside(room, max(hx, hy) + 0.05)
                yaw = rng.uniform(-np.pi, np.pi)
            solids = [Solid(prims, (x, y, 0.0), yaw, blend=blend, material=material, panel_axis=axis, role=role)
                      for prims, blend, material, axis, role in parts]
            if self.place(room, camera, solids, self._box_samples(x, y, yaw, hx, hy, 0.0, height)):
                return True, kind
        return False, kind


def build_scene(rng: np.random.Generator, recipe: PanoramaRecipe) -> Scene:
    """Draw a room, its contents, lights and the camera from ``rng`` (fixed draw order)."""
    b = _Builder(rng, recipe)
    room = b.room()
    cam_z = float(min(rng.uniform(*recipe.camera_height_m), room.height_m - 0.4))
    cam_x, cam_y = b.inside(room, 0.6)
    camera = (cam_x, cam_y, cam_z)
    camera_yaw = float(rng.uniform(-np.pi, np.pi))
    floor, ceiling = b.material("floor"), b.material("ceiling")
    wall = b.material("wall")
    walls = [wall] * 4
    if room.shape in ("box", "l_shape") and rng.uniform() < 0.4:
        walls[int(rng.integers(4))] = b.material("wall")  # an accent wall
    trim = tuple(_hsv(rng.uniform(), rng.uniform(0, 0.2), rng.uniform(0.15, 0.9)))
    baseboard = b._add(Material(trim, trim))
    counts = {"doors": 0, "pictures": 0, "mirrors": 0, "glass": 0, "objects": 0}
    # mirrors first, so that their count is met before the walls fill up
    for _ in range(int(rng.integers(recipe.mirrors[0], recipe.mirrors[1] + 1))):
        mirror, frame = b.material("object", "mirror"), b.material("object")
        on_wall = room.shape in ("box", "l_shape", "rounded") and rng.uniform() < 0.7
        width, height = rng.uniform(0.5, 1.5), rng.uniform(0.8, 1.7)
        bottom = rng.uniform(0.3, 0.9) if on_wall else 0.02
        placed = b.panel(room, camera, width, height, bottom, 0.03, mirror, frame, "mirror", on_wall)
        if not placed:
            placed = b.panel(room, camera, width, height, 0.02, 0.03, mirror, frame, "mirror", False, tries=200)
        counts["mirrors"] += placed
    for _ in range(int(rng.integers(recipe.glass[0], recipe.glass[1] + 1))):
        if rng.uniform() < 0.5:
            placed = b.furniture(room, camera, glass_top=True)[0]
        else:
            glass = b.material("object", "glass")
            placed = b.panel(room, camera, rng.uniform(0.8, 2.2), rng.uniform(1.0, 2.2), 0.0, rng.uniform(0.012, 0.02),
                             glass, glass, "glass", False, tries=200)
        counts["glass"] += placed
    for _ in range(int(rng.poisson(recipe.wall_panels_mean))):
        if rng.uniform() < 0.4:  # a door
            counts["doors"] += b.panel(room, camera, rng.uniform(0.8, 1.0), rng.uniform(1.95, 2.1), 0.0, 0.04,
                                       b.material("object"), b.material("object"), "door", True)
        else:  # a picture
            picture = b.material("object")
            counts["pictures"] += b.panel(room, camera, rng.uniform(0.3, 1.4), rng.uniform(0.3, 1.0), rng.uniform(1.0, 1.6), 0.03,
                                          picture, b.material("object"), "picture", True)
    area_m2 = _floor_area(room)
    for _ in range(min(int(rng.poisson(recipe.objects_per_10m2 * area_m2 / 10)), recipe.max_objects)):
        counts["objects"] += b.furniture(room, camera)[0]
    lights = []
    for _ in range(int(rng.integers(recipe.light_count[0], recipe.light_count[1] + 1))):
        radius = float(rng.uniform(0.06, 0.12))
        z = room.height_m - radius - rng.uniform(0.02, 0.6)
        for _ in range(50):
            x, y = b.inside(room, 0.4)
            p = np.array([[x], [y], [z]], F32)
            if all(s.distance(*p)[0] > radius + 0.2 for s in b.solids) and math.dist((x, y, z), camera) > radius + 0.4:
                break
        else:
            continue
        warmth = rng.uniform(*recipe.light_warmth)
        intensity = rng.uniform(*recipe.light_intensity)
        tint = np.array([1 + warmth, 1.0, 1 - warmth], F32)
        lamp = b._add(Material(tuple(np.clip(tint * 1.5, 0, 3)), tuple(np.clip(tint * 1.5, 0, 3)), None, 1.0, "emissive"))
        b.solids.append(Solid((Primitive("sphere", (0.0, 0.0, 0.0), (radius,) * 3),), (x, y, z), material=lamp, role="lamp"))
        lights.append(_Light((float(x), float(y), float(z)), (tint * intensity).astype(F32), radius))
    counts["lights"] = len(lights)
    height = recipe.size_hw[0]
    return Scene(room, b.solids, b.materials, b.frame_material, floor, ceiling, tuple(walls), baseboard,
                  float(rng.uniform(0.06, 0.14)), lights, float(rng.uniform(*recipe.ambient)), camera, camera_yaw,
                  math.pi / height, recipe, counts)


def _floor_area(room: Room) -> float:
    """Floor area in m² of the shapes built here."""
    w, d = room.width_m, room.depth_m
    if room.shape == "l_shape":
        a, b = room.pieces
        return w * a.hi[1] + b.hi[0] * d - b.hi[0] * a.hi[1]
    if room.shape == "rounded":
        return w * d - (4 - math.pi) * room.pieces[2].radius ** 2
    if room.shape == "cylinder":
        return math.pi * room.pieces[0].radius ** 2
    return w * d


# --------------------------------------------------------------------------------------------
# Tracing and shading


@dataclass
class _Hits:
    t: np.ndarray  # (n,) float32
    solid: np.ndarray  # (n,) int16, -1 = room
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    nz: np.ndarray
    piece: np.ndarray  # (n,) room piece of room hits


def _trace(scene: Scene, ox, oy, oz, dx, dy, dz, exclude: np.ndarray | None = None) -> _Hits:
    """Nearest surface along each ray: the room analytically, then each solid sphere-traced inside
    its bounding box and only up to the nearest hit found so far. Origins are scalars (the camera)
    or (n,) arrays (second bounces); ``exclude``: (n,) solid index each ray must ignore."""
    t, (nx, ny, nz), piece = scene.room.exit(ox, oy, oz, dx, dy, dz)
    solid_id = np.full(t.shape, -1, np.int16)
    scalar = np.ndim(ox) == 0
    cones = RayCones.of(dx, dy, dz) if scalar else None
    every = np.arange(t.shape[0])
    for index in _near_first(scene, ox, oy, oz):
        solid = scene.solids[index]
        # whole 8x8 tiles of rays are culled by a cone-vs-sphere test first (one camera origin)
        base = every if cones is None else cones.candidates(ox, oy, oz, solid.bound_centre, solid.bound_radius)
        if exclude is not None:
            base = base[exclude[base] != index]
        if base.size == 0:
            continue
        o = (ox, oy, oz) if scalar else (ox[base], oy[base], oz[base])
        t0, t1 = ray_box(solid, *o, dx[base], dy[base], dz[base])
        keep = (t1 > 0) & (t0 < t1) & (t0 < t[base])
        idx, t0, t1 = base[keep], t0[keep], t1[keep]
        if idx.size == 0:
            continue
        o = (ox, oy, oz) if scalar else (ox[idx], oy[idx], oz[idx])
        th = march(solid, *o, dx[idx], dy[idx], dz[idx], np.maximum(t0, 0), np.minimum(t1, t[idx]), scene.recipe.max_steps)
        better = th < t[idx]
        sel = idx[better]
        t[sel] = th[better]
        solid_id[sel] = index
    x, y, z = ox + dx * t, oy + dy * t, oz + dz * t
    for index in np.unique(solid_id[solid_id >= 0]):
        sel = np.flatnonzero(solid_id == index)
        nx[sel], ny[sel], nz[sel] = scene.solids[index].normal(x[sel], y[sel], z[sel])
    return _Hits(t, solid_id, x, y, z, nx, ny, nz, piece)


def _near_first(scene: Scene, ox, oy, oz) -> list[int]:
    """Solids ordered by distance from the (mean) ray origin: near hits shorten later marches."""
    o = np.array([np.mean(ox), np.mean(oy), np.mean(oz)])
    return sorted(range(len(scene.solids)), key=lambda i: math.dist(scene.solids[i].bound_centre, o) - scene.solids[i].bound_radius)


def _surface(scene: Scene, hits: _Hits, path_t: np.ndarray, dx, dy, dz):
    """Per hit: material index, finish code and (n, 3) albedo (procedural texture, filtered by the
    pixel footprint along the whole path)."""
    n = hits.t.shape[0]
    material = np.empty(n, np.int32)
    u = np.empty(n, F32)
    v = np.empty(n, F32)
    room = hits.solid < 0
    floor = room & (hits.nz > 0.5)
    ceiling = room & (hits.nz < -0.5)
    walls = room & ~floor & ~ceiling
    material[floor] = scene.floor_material
    material[ceiling] = scene.ceiling_material
    u[floor | ceiling], v[floor | ceiling] = hits.x[floor | ceiling], hits.y[floor | ceiling]
    if walls.any():
        wi = np.flatnonzero(walls)
        wnx, wny = hits.nx[wi], hits.ny[wi]
        direction = np.where(np.abs(wnx) >= np.abs(wny), np.where(wnx > 0, 0, 1), np.where(wny > 0, 2, 3))
        material[wi] = np.asarray(scene.wall_materials)[direction]
        wu = np.where(np.abs(wnx) >= np.abs(wny), hits.y[wi], hits.x[wi])
        curved = np.array([scene.room.pieces[p].kind == "cylinder" for p in range(len(scene.room.pieces))])[hits.piece[wi]]
        if curved.any():
            cx = np.array([p.centre_xy[0] for p in scene.room.pieces], F32)[hits.piece[wi]]
            cy = np.array([p.centre_xy[1] for p in scene.room.pieces], F32)[hits.piece[wi]]
            radius = np.array([p.radius for p in scene.room.pieces], F32)[hits.piece[wi]]
            arc = np.arctan2(hits.y[wi] - cy, hits.x[wi] - cx) * radius
            wu = np.where(curved, arc, wu)
        u[wi], v[wi] = wu, hits.z[wi]
        base = wi[hits.z[wi] < scene.baseboard_m]
        material[base] = scene.baseboard_material
    objects = np.flatnonzero(~room)
    for index in np.unique(hits.solid[objects]):
        sel = objects[hits.solid[objects] == index]
        solid = scene.solids[index]
        material[sel] = solid.material
        lx, ly, lz = solid.to_local(hits.x[sel], hits.y[sel], hits.z[sel])
        lnx, lny, lnz = solid.vector_to_local(hits.nx[sel], hits.ny[sel], hits.nz[sel])
        ax, ay, az = np.abs(lnx), np.abs(lny), np.abs(lnz)
        top = (az >= ax) & (az >= ay)
        side_x = ~top & (ax >= ay)
        u[sel] = np.where(top, lx, np.where(side_x, ly, lx))
        v[sel] = np.where(top, ly, lz)
        if solid.panel_axis is not None:
            face = (ax, ay, az)[solid.panel_axis] > 0.9
            material[sel[~face]] = scene.frame_material.get(int(index), solid.material)
    cos_in = np.abs(dx * hits.nx + dy * hits.ny + dz * hits.nz)
    footprint = path_t * scene.pixel_rad / np.maximum(cos_in, 0.15)
    albedo = np.empty((n, 3), F32)
    finish = np.zeros(n, np.int8)
    label = np.full(n, LABEL_TEXTURED, np.uint8)
    codes = {"matte": 0, "mirror": 1, "glass": 2, "emissive": 3}
    for m in np.unique(material):
        sel = np.flatnonzero(material == m)
        mat = scene.materials[m]
        albedo[sel] = _albedo(mat, u[sel], v[sel], footprint[sel])
        finish[sel] = codes[mat.finish]
        label[sel] = {"mirror": LABEL_MIRROR, "glass": LABEL_GLASS, "emissive": LABEL_LAMP}.get(
            mat.finish, LABEL_TEXTURELESS if mat.texture is None else LABEL_TEXTURED)
    return albedo, finish, label


def _scene_distance_near(scene: Scene, x, y, z, reach: float) -> np.ndarray:
    """(n,) distance to the nearest surface for AO, evaluating each solid only near its bound."""
    d = scene.room.free_distance(x, y, z)
    chunk = 64
    n = x.shape[0]
    k = -(-n // chunk)
    padded = [np.concatenate([c, np.repeat(c[-1:], k * chunk - n)]).reshape(k, chunk) for c in (x, y, z)]
    centres = [c.mean(1) for c in padded]
    radii = np.sqrt(sum((c - m[:, None]) ** 2 for c, m in zip(padded, centres)).max(1))
    for solid in scene.solids:
        if solid.role == "lamp":
            continue
        cx, cy, cz = solid.bound_centre
        gap = np.sqrt((centres[0] - cx) ** 2 + (centres[1] - cy) ** 2 + (centres[2] - cz) ** 2)
        chunks = np.flatnonzero(gap < radii + solid.bound_radius + reach)
        if chunks.size == 0:
            continue
        idx = (chunks[:, None] * chunk + np.arange(chunk)[None, :]).ravel()
        idx = idx[idx < n]
        near = (x[idx] - cx) ** 2 + (y[idx] - cy) ** 2 + (z[idx] - cz) ** 2 < (solid.bound_radius + reach) ** 2
        idx = idx[near]
        if idx.size:
            d[idx] = np.minimum(d[idx], solid.distance(x[idx], y[idx], z[idx]))
    return d


def _irradiance(scene: Scene, hits: _Hits, idx: np.ndarray, with_ao: bool) -> np.ndarray:
    """(k, 3) light arriving at hits[idx]: ambient (× AO) + point lights × Lambert × soft shadow."""
    x, y, z = hits.x[idx], hits.y[idx], hits.z[idx]
    nx, ny, nz = hits.nx[idx], hits.ny[idx], hits.nz[idx]
    k = idx.shape[0]
    ao = np.ones(k, F32)
    if with_ao and scene.recipe.ambient_occlusion:
        occ = np.zeros(k, F32)
        for h, weight in ((0.06, 1.0), (0.18, 0.6), (0.4, 0.35)):
            d = _scene_distance_near(scene, x + nx * h, y + ny * h, z + nz * h, h + 0.05)
            occ += weight * np.maximum(h - d, 0) / h
        ao = np.clip(1 - 0.45 * occ, 0.25, 1)
    light = np.broadcast_to(F32(scene.ambient) * ao[:, None], (k, 3)).copy()
    blockers = [i for i, s in enumerate(scene.solids) if s.role not in ("lamp", "glass")]  # glass lets light through
    for lamp in scene.lights:
        lx, ly, lz = lamp.position
        vx, vy, vz = lx - x, ly - y, lz - z
        dist = np.sqrt(vx * vx + vy * vy + vz * vz)
        vx, vy, vz = vx / dist, vy / dist, vz / dist
        ndl = nx * vx + ny * vy + nz * vz
        lit = np.flatnonzero(ndl > 0)
        vis = np.zeros(k, F32)
        vis[lit] = 1.0
        if scene.recipe.shadows and lit.size:
            # shadow rays run from the light to the lit points: one scalar origin per light
            sx, sy, sz, d_lit = -vx[lit], -vy[lit], -vz[lit], dist[lit]
            t_start = F32(lamp.lamp_radius + 0.02)
            t_end = d_lit - 4e-3
            if not scene.room.convex:
                t_room = scene.room.exit(F32(lx), F32(ly), F32(lz), sx, sy, sz)[0]
                vis[lit[t_room < t_end - 0.01]] = 0.0
            penumbra = d_lit / _SHADOW_SHARPNESS  # how far from a solid its soft shadow still reaches
            cones = RayCones.of(sx, sy, sz)
            chunk_penumbra = cones.chunk_max(penumbra)
            for index in blockers:
                solid = scene.solids[index]
                base = cones.candidates(lx, ly, lz, solid.bound_centre, solid.bound_radius + chunk_penumbra)
                if base.size == 0:
                    continue
                t0, t1 = ray_box(solid, F32(lx), F32(ly), F32(lz), sx[base], sy[base], sz[base], pad=penumbra[base])
                keep = (t1 > t_start) & (t0 < t1) & (t0 < t_end[base]) & (vis[lit[base]] > 0.02)
                cand, t0, t1 = base[keep], t0[keep], t1[keep]
                if cand.size == 0:
                    continue
                v = soft_shadow(solid, F32(lx), F32(ly), F32(lz), sx[cand], sy[cand], sz[cand],
                                np.maximum(t0, t_start), np.minimum(t1, t_end[cand]), d_lit[cand], _SHADOW_SHARPNESS)
                vis[lit[cand]] = np.minimum(vis[lit[cand]], v)
        falloff = 1.0 / (1.0 + (dist / 2.5) ** 2)
        light += (np.maximum(ndl, 0) * falloff * vis)[:, None] * lamp.colour[None, :]
    return light


def _shade(scene: Scene, ox, oy, oz, dx, dy, dz, hits: _Hits, path_t: np.ndarray, level: int):
    """(n, 3) linear colour and (n,) labels of the surfaces in ``hits``; mirrors and glass trace one
    more bounce at level 0 (at level 1 they are shaded as plain grey-blue surfaces)."""
    albedo, finish, label = _surface(scene, hits, path_t, dx, dy, dz)
    colour = np.zeros_like(albedo)
    emissive = finish == 3
    colour[emissive] = albedo[emissive]
    special = (finish == 1) | (finish == 2)
    matte = np.flatnonzero(~emissive & ~(special if level == 0 else np.zeros_like(special)))
    if matte.size:
        colour[matte] = albedo[matte] * _irradiance(scene, hits, matte, with_ao=level == 0)
    if level == 0 and special.any():
        for code in (1, 2):
            sel = np.flatnonzero(finish == code)
            if sel.size == 0:
                continue
            sx, sy, sz = dx[sel], dy[sel], dz[sel]
            nx, ny, nz = hits.nx[sel], hits.ny[sel], hits.nz[sel]
            cos_in = -(sx * nx + sy * ny + sz * nz)
            if code == 1:  # mirror: the reflected ray carries the colour
                rx, ry, rz = sx + 2 * cos_in * nx, sy + 2 * cos_in * ny, sz + 2 * cos_in * nz
                o = (hits.x[sel] + nx * 2e-3, hits.y[sel] + ny * 2e-3, hits.z[sel] + nz * 2e-3)
            else:  # glass: straight through (thin pane, no refraction offset)
                rx, ry, rz = sx, sy, sz
                o = (hits.x[sel] + sx * 2e-3, hits.y[sel] + sy * 2e-3, hits.z[sel] + sz * 2e-3)
            exclude = hits.solid[sel].astype(np.int32)
            second = _trace(scene, *o, rx, ry, rz, exclude=exclude)
            far, _ = _shade(scene, *o, rx, ry, rz, second, path_t[sel] + second.t, level=1)
            fresnel = (0.04 + 0.96 * (1 - np.clip(np.abs(cos_in), 0, 1)) ** 5)[:, None]
            if code == 1:
                colour[sel] = far * albedo[sel] * 0.95
            else:
                # what is behind, slightly tinted and dimmed, plus a faint grazing-angle sheen
                colour[sel] = far * albedo[sel] * (1 - fresnel) * 0.9 + fresnel * (0.3 + F32(scene.ambient))
    return colour, label


def _flying_pixels(clean: np.ndarray, rng: np.random.Generator, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth edges: (H, W) readings where a ``fraction`` of edge pixels mix the two sides (as a ToF or
    stereo sensor does across a discontinuity), and the (H, W) bool mask of mixed pixels."""
    right = np.roll(clean, -1, axis=1)  # longitude wraps: column W-1 neighbours column 0
    left = np.roll(clean, 1, axis=1)
    up = np.concatenate([clean[:1], clean[:-1]], axis=0)
    down = np.concatenate([clean[1:], clean[-1:]], axis=0)
    neighbours = np.stack([right, left, up, down])
    jump = np.abs(neighbours - clean[None])
    pick = jump.argmax(axis=0)
    other = np.take_along_axis(neighbours, pick[None], 0)[0]
    edge = jump.max(axis=0) > np.maximum(0.08 * clean, 0.1)
    draw = rng.uniform(size=clean.shape).astype(F32)
    mix = rng.uniform(size=clean.shape).astype(F32)
    mixed = edge & (draw < fraction)
    reading = np.where(mixed, clean + (other - clean) * mix, clean)
    return reading.astype(F32), mixed


def render_panorama(rng: np.random.Generator, recipe: PanoramaRecipe | None = None) -> Panorama:
    """Draw a scene from ``rng`` and render it: the same rng state gives byte-identical arrays.

    Returns rgb (H, W, 3) uint8, depth (H, W) float32 m (sensor reading: clean + N(0, σ(d)²) and
    flying pixels at edges; 0 where invalid), clean_depth (H, W) float32 m (exact ray length),
    valid (H, W) bool, noise_sigma (H, W) float32 m, labels (H, W) uint8, metadata.
    """
    recipe = recipe or PanoramaRecipe()
    return render_scene(build_scene(rng, recipe), rng)


def render_scene(scene: Scene, rng: np.random.Generator) -> Panorama:
    """Render a scene from ``build_scene`` (``rng`` draws the image and depth noise)."""
    recipe = scene.recipe
    height, width = recipe.size_hw
    cx, cy, cz = panorama_directions((height, width))
    c, s = math.cos(scene.camera_yaw), math.sin(scene.camera_yaw)
    order = tile_order((height, width))  # rays in 8x8 tiles: coherent chunks for the cone culls
    dx = (c * cx - s * cy).ravel()[order]
    dy = (s * cx + c * cy).ravel()[order]
    dz = cz.ravel()[order]
    ox, oy, oz = (F32(v) for v in scene.camera)
    hits = _trace(scene, ox, oy, oz, dx, dy, dz)
    tiled_colour, tiled_labels = _shade(scene, ox, oy, oz, dx, dy, dz, hits, hits.t, level=0)
    colour = np.empty_like(tiled_colour)
    colour[order] = tiled_colour
    clean = np.empty(height * width, F32)
    clean[order] = hits.t
    clean = clean.reshape(height, width)
    labels = np.empty(height * width, np.uint8)
    labels[order] = tiled_labels
    labels = labels.reshape(height, width)
    # a filmic shoulder keeps lamps and bright walls from clipping flat, then sRGB-like gamma
    toned = (1 - np.exp(-1.3 * colour)) ** (1 / 2.2)
    image = toned.reshape(height, width, 3) * 255 + rng.standard_normal((height, width, 3), dtype=F32) * (recipe.rgb_noise * 255)
    rgb = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    reading, mixed = _flying_pixels(clean, rng, recipe.edge_mix_fraction)
    sigma = depth_noise_sigma(clean, recipe)
    depth = reading + rng.standard_normal((height, width), dtype=F32) * sigma
    valid = (clean <= recipe.max_range_m) & np.isfinite(clean) & (depth > 0)
    if not recipe.glass_valid:
        valid &= labels != LABEL_GLASS
    depth = np.where(valid, depth, 0).astype(F32)
    room = scene.room
    fractions = {name: round(float((labels == code).mean()), 5) for code, name in LABEL_NAMES.items()}
    metadata = {
        "room_shape": room.shape,
        "room_size_m": [round(room.width_m, 3), round(room.depth_m, 3), round(room.height_m, 3)],
        "camera_m": [round(float(v), 3) for v in scene.camera],
        "camera_yaw_rad": round(scene.camera_yaw, 4),
        **{k: int(v) for k, v in scene.counts.items()},
        "pixel_fractions": fractions,
        "edge_mixed_fraction": round(float(mixed.mean()), 5),
        "invalid_fraction": round(float(1 - valid.mean()), 5),
        "noise_sigma_m": {"a": recipe.noise_a_m, "b_per_m": recipe.noise_b_per_m},
        "max_range_m": recipe.max_range_m,
    }
    return Panorama(rgb, depth, clean, valid, sigma, labels, metadata)


def depth_colour_map(depth_m: np.ndarray, valid: np.ndarray | None = None, max_m: float | None = None) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB (turbo, near = red, far = blue; invalid = black)."""
    import cv2

    depth_m = np.asarray(depth_m, F32)
    ok = np.isfinite(depth_m) & (depth_m > 0) if valid is None else valid & np.isfinite(depth_m)
    top = max_m or (float(np.percentile(depth_m[ok], 99)) if ok.any() else 1.0)
    scaled = np.clip(1 - depth_m / max(top, 1e-6), 0, 1)
    colour = cv2.applyColorMap(np.rint(scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1].copy()
    colour[~ok] = 0
    return colour


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> (H, W) uint16 millimetres for a 16-bit PNG (0 = invalid, clipped at 65.535 m)."""
    return np.clip(np.rint(np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0) * 1000), 0, 65535).astype(np.uint16)
