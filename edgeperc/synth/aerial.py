"""GRES-like semi-synthetic aerial scenes for geospatial reasoning segmentation (LISAt, ch. 6).

GRES pairs an xView chip (512x512, about 0.3 m per pixel) with a query that refers to one object
and that object's mask. These scenes are made here instead, so every mask is exact: a top-down
RGB image with a ground texture (grass / soil / sand noise), roads with edge lines and dashed
centre lines, parking lots, buildings (rotated rectangles and L-shapes, gable or flat roofs,
shadows cast in one sun direction), vehicles (cars and trucks), trees (blobs with shadows) and
ponds, then haze, blur and sensor noise. Buildings, vehicles, trees and ponds are instances with a
category, a colour name, an area (px²), a centroid, a box and a mask; roads and lots are context.

Objects never overlap (each reserves its footprint plus a gap), so a mask is the whole object and
all masks fit in one uint16 instance map. Sizes are in pixels and do not change with the image
size, because the evaluation splits Small (< 500 px²) from Large in pixels; object counts are per
512x512 and scale with the image area. The same rng state gives the same scene, byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

F32 = np.float32
SMALL_AREA_PX = 500  # LISAt's Small / Large threshold (px²)
MIN_SIDE_PX, MAX_SIDE_PX, SIDE_MULTIPLE = 128, 4096, 16
CATEGORIES = ("building", "vehicle", "tree", "water")

# Colour names are what queries say, so each palette keeps its names visibly apart (sRGB 0-255).
VEHICLE_COLOURS = {"white": (232, 232, 226), "black": (30, 31, 36), "grey": (138, 140, 146), "red": (186, 34, 30),
                   "blue": (34, 70, 172), "yellow": (230, 196, 46), "green": (40, 120, 62)}
VEHICLE_COLOUR_WEIGHTS = (0.26, 0.18, 0.18, 0.12, 0.12, 0.07, 0.07)
ROOF_COLOURS = {"red": (170, 70, 50), "grey": (116, 118, 124), "white": (224, 222, 214), "brown": (108, 80, 58),
                "blue": (66, 102, 150)}
TREE_COLOURS = {"green": (72, 124, 48), "dark green": (30, 66, 34), "orange": (206, 122, 38)}
TREE_COLOUR_WEIGHTS = (0.5, 0.38, 0.12)
WATER_COLOURS = {"blue": (36, 78, 128), "dark blue": (18, 34, 66), "green": (56, 98, 74)}
GROUND_PALETTES = {  # (vegetation, bare soil)
    "temperate": ((82, 112, 54), (138, 116, 86)),
    "arid": ((150, 140, 98), (198, 176, 138)),
}
ASPHALT = (88, 88, 92)
HAZE_RGB = (206, 210, 218)


def _check_range(name: str, pair, lo_min: float, hi_max: float) -> None:
    lo, hi = pair
    if not (lo_min <= lo <= hi <= hi_max):
        raise ValueError(f"{name} {tuple(pair)} must satisfy {lo_min} <= low <= high <= {hi_max}")


class AerialRecipe(BaseModel):
    """How a scene is made. Pairs are (low, high) drawn uniformly per scene; counts are per
    512x512 and scale with the image area; sizes are pixels at the image's own resolution."""

    model_config = ConfigDict(extra="forbid")

    size_hw: tuple[int, int] = Field((512, 512), description="(H, W), each a multiple of 16 in [128, 4096]")
    ground: Literal["temperate", "arid"] = "temperate"
    roads: tuple[int, int] = (1, 3)
    road_width_px: tuple[float, float] = (16.0, 26.0)
    parking_lots: tuple[int, int] = (0, 2)
    buildings: tuple[int, int] = (6, 14)
    building_side_px: tuple[float, float] = Field((10.0, 64.0), description="log-uniform side of the main block")
    l_shape_fraction: float = Field(0.3, ge=0, le=1)
    vehicles: tuple[int, int] = (12, 30)
    truck_fraction: float = Field(0.2, ge=0, le=1, description="share of vehicles that are trucks (20-32 px long)")
    off_road_fraction: float = Field(0.15, ge=0, le=1, description="vehicles parked on open ground")
    trees: tuple[int, int] = (10, 32)
    tree_radius_px: tuple[float, float] = (4.0, 12.0)
    water_bodies: tuple[int, int] = (0, 2)
    water_radius_px: tuple[float, float] = (26.0, 64.0)
    shadow_px_per_height: tuple[float, float] = Field((0.5, 1.1), description="sun elevation: shadow length per px of height")
    haze: tuple[float, float] = Field((0.0, 0.15), description="blend toward a light grey-blue")
    blur_sigma_px: tuple[float, float] = (0.0, 0.7)
    noise_sigma: tuple[float, float] = Field((1.0, 4.0), description="σ of Gaussian sensor noise in 8-bit levels")

    @model_validator(mode="after")
    def _check(self) -> AerialRecipe:
        for side in self.size_hw:
            if side % SIDE_MULTIPLE or not MIN_SIDE_PX <= side <= MAX_SIDE_PX:
                raise ValueError(f"size_hw {tuple(self.size_hw)}: each side must be a multiple of {SIDE_MULTIPLE} "
                                 f"in [{MIN_SIDE_PX}, {MAX_SIDE_PX}]")
        for name, lo, hi in (("roads", 0, 12), ("parking_lots", 0, 12), ("buildings", 0, 200), ("vehicles", 0, 500),
                             ("trees", 0, 500), ("water_bodies", 0, 10)):
            _check_range(name, getattr(self, name), lo, hi)
        _check_range("road_width_px", self.road_width_px, 8.0, 60.0)
        _check_range("building_side_px", self.building_side_px, 6.0, 200.0)
        _check_range("tree_radius_px", self.tree_radius_px, 2.0, 40.0)
        _check_range("water_radius_px", self.water_radius_px, 10.0, 300.0)
        _check_range("shadow_px_per_height", self.shadow_px_per_height, 0.0, 4.0)
        _check_range("haze", self.haze, 0.0, 0.8)
        _check_range("blur_sigma_px", self.blur_sigma_px, 0.0, 4.0)
        _check_range("noise_sigma", self.noise_sigma, 0.0, 40.0)
        return self


AERIAL_RECIPES: dict[str, dict] = {
    "default": {},
    # Generalisation set: arid ground, denser and smaller-built town, low sun (long shadows), more
    # traffic, fewer trees, thicker haze and more blur; the vocabulary of queries stays the same.
    "shifted": {
        "ground": "arid", "roads": (2, 4), "road_width_px": (14.0, 30.0), "parking_lots": (1, 3),
        "buildings": (10, 20), "building_side_px": (9.0, 50.0), "l_shape_fraction": 0.45, "vehicles": (20, 45),
        "truck_fraction": 0.3, "trees": (3, 14), "water_bodies": (0, 1), "shadow_px_per_height": (1.0, 1.8),
        "haze": (0.1, 0.3), "blur_sigma_px": (0.4, 1.1), "noise_sigma": (3.0, 7.0),
    },
}


def aerial_recipe(name: str = "default", size_hw: tuple[int, int] | None = None, **overrides) -> AerialRecipe:
    """The named recipe (``AERIAL_RECIPES``) at ``size_hw``; mistakes raise ConfigError naming the field."""
    from pydantic import ValidationError

    from edgeperc.errors import ConfigError

    if name not in AERIAL_RECIPES:
        raise ConfigError(f"aerial recipe '{name}' must be one of {', '.join(AERIAL_RECIPES)}")
    fields = {**AERIAL_RECIPES[name], **overrides}
    if size_hw is not None:
        fields["size_hw"] = tuple(size_hw)
    try:
        return AerialRecipe(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'recipe'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"aerial recipe '{name}': {problems}") from None


def size_class(area_px: float) -> Literal["small", "large"]:
    """LISAt's split: Small below 500 px², Large otherwise."""
    return "small" if area_px < SMALL_AREA_PX else "large"


@dataclass(frozen=True)
class AerialObject:
    """One instance. ``centroid_xy`` is the mean pixel index (x = column), ``bbox_xyxy`` has
    exclusive x1, y1; both are computed from the mask, as ``area_px`` is."""

    instance_id: int  # value in AerialScene.instance_map (1-based)
    category: str  # one of CATEGORIES
    kind: str  # finer type: house, shed, l-shape, car, truck, tree, pond
    colour: str  # colour name from the category's palette
    area_px: int
    centroid_xy: tuple[float, float]
    bbox_xyxy: tuple[int, int, int, int]

    @property
    def is_small(self) -> bool:
        return self.area_px < SMALL_AREA_PX

    def to_json(self) -> dict:
        return {"instance_id": self.instance_id, "category": self.category, "kind": self.kind, "colour": self.colour,
                "area_px": self.area_px, "size_class": size_class(self.area_px),
                "centroid_xy": [round(v, 2) for v in self.centroid_xy], "bbox_xyxy": list(self.bbox_xyxy)}


@dataclass
class AerialScene:
    """image (H, W, 3) uint8 RGB; instance_map (H, W) uint16, 0 = background, i = objects[i - 1]."""

    image: np.ndarray
    instance_map: np.ndarray
    objects: list[AerialObject]
    metadata: dict = field(default_factory=dict)

    def mask(self, instance_id: int) -> np.ndarray:
        """(H, W) bool mask of one instance."""
        return self.instance_map == instance_id


# --------------------------------------------------------------------------------------------
# Geometry: polygons rasterised into crops ("stamps") so that placement touches only their boxes


@dataclass(frozen=True)
class _Stamp:
    y0: int
    x0: int
    mask: np.ndarray  # (h, w) bool

    def view(self, array: np.ndarray) -> np.ndarray:
        return array[self.y0:self.y0 + self.mask.shape[0], self.x0:self.x0 + self.mask.shape[1]]


def _rect(centre, length: float, width: float, angle: float) -> np.ndarray:
    """(4, 2) corners of a rectangle whose long axis (``length``) points along ``angle``."""
    u = np.array([math.cos(angle), math.sin(angle)]) * length / 2
    v = np.array([-math.sin(angle), math.cos(angle)]) * width / 2
    c = np.asarray(centre, np.float64)
    return np.stack([c - u - v, c + u - v, c + u + v, c - u + v])


def _raster(pieces: list[np.ndarray], hw: tuple[int, int], margin: int = 1) -> _Stamp | None:
    """Union of polygons (pixel centres at integer coordinates) as a stamp; None unless it lies
    ``margin`` px inside the image (objects are never cut by the border)."""
    points = np.concatenate(pieces)
    x0, y0 = np.floor(points.min(0)).astype(int) - 1
    x1, y1 = np.ceil(points.max(0)).astype(int) + 2
    if x0 < margin or y0 < margin or x1 > hw[1] - margin or y1 > hw[0] - margin:
        return None
    crop = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for piece in pieces:  # one call per piece: overlapping pieces must not cancel out
        cv2.fillPoly(crop, [np.rint((piece - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    if not crop.any():
        return None
    return _Stamp(int(y0), int(x0), crop.astype(bool))


def _is_free(stamp: _Stamp, blocked: np.ndarray) -> bool:
    return not stamp.view(blocked)[stamp.mask].any()


def _reserve(blocked: np.ndarray, stamp: _Stamp, grow_px: int) -> None:
    """Mark the stamp, grown by ``grow_px``, as taken (clipped to the image)."""
    mask = stamp.mask.astype(np.uint8)
    if grow_px > 0:
        mask = cv2.dilate(np.pad(mask, grow_px), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1,) * 2))
    y0, x0 = stamp.y0 - grow_px, stamp.x0 - grow_px
    h, w = mask.shape
    ty0, tx0 = max(y0, 0), max(x0, 0)
    ty1, tx1 = min(y0 + h, blocked.shape[0]), min(x0 + w, blocked.shape[1])
    blocked[ty0:ty1, tx0:tx1] |= mask[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0].astype(bool)


def _blob(rng: np.random.Generator, centre, radius: float, vertices: int, wobble: float, stretch: float = 1.0,
          angle: float = 0.0) -> np.ndarray:
    """(V, 2) closed smooth blob: radius modulated by low harmonics (ponds) or smoothed noise (crowns)."""
    theta = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    r = np.ones(vertices)
    for k in (2, 3, 4, 5):
        r += rng.uniform(0, wobble) / k ** 0.7 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.45) * radius
    x, y = r * np.cos(theta) * stretch, r * np.sin(theta)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([x * ca - y * sa, x * sa + y * ca], 1) + np.asarray(centre, np.float64)


def _shadow_piece(piece: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Shadow of a vertical prism over a convex base: hull of the base and the base moved by ``offset``."""
    both = np.concatenate([piece, piece + offset]).astype(np.float32)
    return cv2.convexHull(both)[:, 0, :].astype(np.float64)


# --------------------------------------------------------------------------------------------
# Layout: where things go (no pixels painted yet)


@dataclass
class _Placed:
    category: str
    kind: str
    colour: str
    stamp: _Stamp
    pieces: list[np.ndarray]  # convex parts in image coordinates
    angle: float = 0.0
    height_px: float = 0.0  # casts a shadow height_px * shadow_px_per_height long
    flat_roof: bool = True
    centre: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Road:
    points: np.ndarray  # (K, 2) polyline, may run past the image
    width_px: float
    centre_line: tuple[int, int, int]


@dataclass
class _Lot:
    corners: np.ndarray  # (4, 2)
    stalls: list[tuple[np.ndarray, float]]  # (centre, heading) of each stall


@dataclass
class _Layout:
    hw: tuple[int, int]
    blocked: np.ndarray  # (H, W) bool: taken by objects + gaps, roads, lots, pond banks
    paved: np.ndarray  # (H, W) bool: road and lot surface (where vehicles may stand)
    roads: list[_Road] = field(default_factory=list)
    lots: list[_Lot] = field(default_factory=list)
    placed: list[_Placed] = field(default_factory=list)


def _count(rng: np.random.Generator, pair: tuple[int, int], area_scale: float) -> int:
    return int(round(rng.integers(pair[0], pair[1] + 1) * area_scale))


def _road_points(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """A gently curving road through the middle 60 % of the image, extended past both borders."""
    height, width = hw
    if rng.random() < 0.65:  # planned grids: mostly axis-aligned
        heading = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.06)
    else:
        heading = rng.uniform(0, np.pi)
    start = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
    bend = rng.uniform(0, 0.1)
    step = 24.0
    steps = int(math.hypot(*hw) / step) + 2
    halves = []
    for sign in (1.0, -1.0):
        point, angle, trace = start.copy(), heading, []
        for _ in range(steps):
            angle += rng.normal(0, bend)
            point = point + sign * step * np.array([math.cos(angle), math.sin(angle)])
            trace.append(point)
        halves.append(trace)
    return np.array(halves[1][::-1] + [start] + halves[0])


def _lay_roads(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    road_surface = np.zeros(layout.hw, np.uint8)
    for _ in range(_count(rng, recipe.roads, math.sqrt(scale))):
        for _attempt in range(10):
            width = rng.uniform(*recipe.road_width_px)
            colour = (236, 236, 230) if rng.random() < 0.6 else (226, 194, 60)
            road = _Road(_road_points(rng, layout.hw), width, colour)
            this = np.zeros(layout.hw, np.uint8)
            cv2.polylines(this, [np.rint(road.points * 16).astype(np.int32)], False, 1, max(int(round(width)), 1),
                          cv2.LINE_8, shift=4)
            if np.count_nonzero(this & road_surface) < 0.2 * np.count_nonzero(this):  # crossings yes, running alongside no
                layout.roads.append(road)
                road_surface |= this
                break
    layout.paved |= road_surface.astype(bool)
    layout.blocked |= cv2.dilate(road_surface, np.ones((7, 7), np.uint8)).astype(bool)  # 3 px setback


def _lay_water(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    height, width = layout.hw
    for _ in range(_count(rng, recipe.water_bodies, scale)):
        for _attempt in range(30):
            radius = rng.uniform(*recipe.water_radius_px)
            centre = (rng.uniform(0, width), rng.uniform(0, height))
            outline = _blob(rng, centre, radius, 64, 0.35, rng.uniform(0.55, 1.0), rng.uniform(0, np.pi))
            stamp = _raster([outline], layout.hw, margin=4)
            if stamp is not None and _is_free(stamp, layout.blocked):
                _reserve(layout.blocked, stamp, 6)  # room for the bank
                colour = str(rng.choice(list(WATER_COLOURS)))
                layout.placed.append(_Placed("water", "pond", colour, stamp, [outline], centre=centre))
                break


def _lay_lots(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    """Parking lots: a row of stalls on each long side of an aisle; cars are parked later."""
    height, width = layout.hw
    stall_w, stall_d, aisle = 9.0, 16.0, 12.0
    for _ in range(_count(rng, recipe.parking_lots, scale)):
        for _attempt in range(30):
            stalls_per_row = int(rng.integers(4, 11))
            length, depth = stalls_per_row * stall_w + 4, 2 * stall_d + aisle
            angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.3)
            centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            corners = _rect(centre, length, depth, angle)
            stamp = _raster([corners], layout.hw, margin=2)
            if stamp is None or not _is_free(stamp, layout.blocked):
                continue
            u = np.array([math.cos(angle), math.sin(angle)])
            v = np.array([-math.sin(angle), math.cos(angle)])
            stalls = []
            for side in (-1.0, 1.0):
                for k in range(stalls_per_row):
                    along = (k + 0.5 - stalls_per_row / 2) * stall_w
                    heading = angle + np.pi / 2 if side > 0 else angle - np.pi / 2
                    stalls.append((centre + u * along + v * side * (depth / 2 - stall_d / 2), float(heading)))
            layout.lots.append(_Lot(corners, stalls))
            _reserve(layout.blocked, stamp, 3)
            stamp.view(layout.paved)[stamp.mask] = True
            break


def _building_pieces(rng: np.random.Generator, centre, side: float, angle: float, l_shape: bool) -> list[np.ndarray]:
    length, width = side * rng.uniform(1.0, 1.8), side
    if not l_shape:
        return [_rect(centre, length, width, angle)]
    wing_w, wing_l = width * rng.uniform(0.45, 0.7), width * rng.uniform(0.8, 1.5)
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-math.sin(angle), math.cos(angle)]) * rng.choice([-1.0, 1.0])
    end = rng.choice([-1.0, 1.0])
    c = np.asarray(centre, np.float64)
    wing_centre = c + u * end * (length / 2 - wing_w / 2) + v * (width / 2 + wing_l / 2 - 1)
    return [_rect(c, length, width, angle), _rect(wing_centre, wing_l, wing_w, angle + np.pi / 2)]


def _lay_buildings(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    """Most buildings face a road at a setback; the rest stand anywhere at any angle."""
    height, width = layout.hw
    lo, hi = np.log(recipe.building_side_px)
    for _ in range(_count(rng, recipe.buildings, scale)):
        for _attempt in range(40):
            side = float(np.exp(rng.uniform(lo, hi)))
            l_shape = side > 16 and rng.random() < recipe.l_shape_fraction
            if layout.roads and rng.random() < 0.7:
                road = layout.roads[int(rng.integers(len(layout.roads)))]
                k = int(rng.integers(len(road.points) - 1))
                a, b = road.points[k], road.points[k + 1]
                along = b - a
                angle = math.atan2(along[1], along[0])
                normal = np.array([-along[1], along[0]]) / (np.linalg.norm(along) + 1e-9)
                setback = road.width_px / 2 + rng.uniform(5, 14) + side / 2
                centre = a + along * rng.uniform() + normal * setback * rng.choice([-1.0, 1.0])
            else:
                angle = rng.uniform(0, np.pi)
                centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            pieces = _building_pieces(rng, centre, side, angle, l_shape)
            stamp = _raster(pieces, layout.hw, margin=2)
            if stamp is None or not _is_free(stamp, layout.blocked):
                continue
            _reserve(layout.blocked, stamp, 4)
            area = float(stamp.mask.sum())
            kind = "l-shape" if l_shape else ("shed" if area < 250 else "house")
            names = list(ROOF_COLOURS)
            colour = names[int(rng.integers(len(names)))]
            flat = l_shape or area > 2200 or rng.random() < 0.3
            height_px = float(np.clip(math.sqrt(area) * rng.uniform(0.25, 0.55), 3, 30))
            layout.placed.append(_Placed("building", kind, colour, stamp, pieces, angle, height_px, flat,
                                         (float(centre[0]), float(centre[1]))))
            break


def _vehicle(rng: np.random.Generator, recipe: AerialRecipe, truck_ok: bool = True) -> tuple[str, float, float]:
    if truck_ok and rng.random() < recipe.truck_fraction:
        return "truck", rng.uniform(20, 32), rng.uniform(7, 9)
    length = rng.uniform(11, 15)
    return "car", length, length * rng.uniform(0.42, 0.5)


def _vehicle_colour(rng: np.random.Generator) -> str:
    return list(VEHICLE_COLOURS)[int(rng.choice(len(VEHICLE_COLOURS), p=VEHICLE_COLOUR_WEIGHTS))]


def _park(layout: _Layout, vehicles_block: np.ndarray, kind: str, colour: str, centre, length: float,
          width: float, heading: float, on_paving: bool) -> bool:
    corners = _rect(centre, length, width, heading)
    stamp = _raster([corners], layout.hw, margin=2)
    if stamp is None or not _is_free(stamp, vehicles_block):
        return False
    if on_paving and not stamp.view(layout.paved)[stamp.mask].all():
        return False
    if not on_paving and not _is_free(stamp, layout.blocked):
        return False
    _reserve(vehicles_block, stamp, 2)
    _reserve(layout.blocked, stamp, 2)
    layout.placed.append(_Placed("vehicle", kind, colour, stamp, [corners], heading, 2.0 if kind == "car" else 3.5,
                                 centre=(float(centre[0]), float(centre[1]))))
    return True


def _lay_vehicles(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    """Cars and trucks in their lanes, cars in lot stalls, a few parked on open ground."""
    height, width = layout.hw
    vehicles_block = np.zeros(layout.hw, bool)
    total = _count(rng, recipe.vehicles, scale)
    stalls = [s for lot in layout.lots for s in lot.stalls]
    order = rng.permutation(len(stalls)) if stalls else np.array([], int)
    in_lots = min(len(stalls), int(round(total * rng.uniform(0.2, 0.5)))) if stalls else 0
    for index in order[:in_lots]:
        centre, heading = stalls[int(index)]
        _, length, w = _vehicle(rng, recipe, truck_ok=False)
        _park(layout, vehicles_block, "car", _vehicle_colour(rng), centre, length, w, heading + rng.normal(0, 0.05), True)
    for _ in range(total - in_lots):
        kind, length, w = _vehicle(rng, recipe)
        colour = _vehicle_colour(rng)
        for _attempt in range(25):
            if layout.roads and rng.random() >= recipe.off_road_fraction:
                road = layout.roads[int(rng.integers(len(layout.roads)))]
                k = int(rng.integers(len(road.points) - 1))
                a, b = road.points[k], road.points[k + 1]
                along = b - a
                heading = math.atan2(along[1], along[0])
                normal = np.array([-along[1], along[0]]) / (np.linalg.norm(along) + 1e-9)
                lane = rng.choice([-1.0, 1.0])  # two-way traffic: the lane decides the heading
                centre = a + along * rng.uniform() + normal * lane * road.width_px / 4 + rng.normal(0, 0.6, 2)
                if _park(layout, vehicles_block, kind, colour, centre, length, w, heading + (np.pi if lane < 0 else 0)
                         + rng.normal(0, 0.03), True):
                    break
            else:
                centre = (rng.uniform(0, width), rng.uniform(0, height))
                if _park(layout, vehicles_block, kind, colour, centre, length, w, rng.uniform(0, np.pi), False):
                    break


def _lay_trees(rng: np.random.Generator, layout: _Layout, recipe: AerialRecipe, scale: float) -> None:
    """Trees in loose clusters: half of them grow beside the previous one."""
    height, width = layout.hw
    names = list(TREE_COLOURS)
    last: tuple[np.ndarray, float] | None = None
    for _ in range(_count(rng, recipe.trees, scale)):
        colour = names[int(rng.choice(len(names), p=TREE_COLOUR_WEIGHTS))]
        for _attempt in range(25):
            radius = rng.uniform(*recipe.tree_radius_px)
            if last is not None and rng.random() < 0.5:
                direction = rng.uniform(0, 2 * np.pi)
                centre = last[0] + (last[1] + radius + rng.uniform(2, 6)) * np.array([math.cos(direction), math.sin(direction)])
            else:
                centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            crown = _blob(rng, centre, radius, 18, 0.25)
            stamp = _raster([crown], layout.hw, margin=2)
            if stamp is None or not _is_free(stamp, layout.blocked):
                continue
            _reserve(layout.blocked, stamp, 1)
            layout.placed.append(_Placed("tree", "tree", colour, stamp, [crown], height_px=radius * rng.uniform(1.2, 2.0),
                                         centre=(float(centre[0]), float(centre[1]))))
            last = (centre, radius)
            break


# --------------------------------------------------------------------------------------------
# Painting


def _smooth_noise(rng: np.random.Generator, hw: tuple[int, int], cell_px: float) -> np.ndarray:
    """(H, W) float32 noise of roughly unit σ varying over ``cell_px``: a coarse grid upsampled."""
    gh, gw = int(hw[0] / cell_px) + 3, int(hw[1] / cell_px) + 3
    grid = rng.standard_normal((gh, gw)).astype(F32)
    up = cv2.resize(grid, (int(gw * cell_px), int(gh * cell_px)), interpolation=cv2.INTER_CUBIC)
    return up[int(cell_px):int(cell_px) + hw[0], int(cell_px):int(cell_px) + hw[1]] / F32(0.7)


def _paint_ground(rng: np.random.Generator, hw: tuple[int, int], palette: str) -> np.ndarray:
    vegetation, soil = (np.array(c, F32) for c in GROUND_PALETTES[palette])
    field_ = _smooth_noise(rng, hw, 110) + 0.5 * _smooth_noise(rng, hw, 36) + rng.uniform(-0.6, 1.0)
    weight = 1 / (1 + np.exp(-2.5 * field_))
    base = vegetation * weight[..., None] + soil * (1 - weight[..., None])
    tone = 1 + 0.07 * _smooth_noise(rng, hw, 14) + 0.045 * rng.standard_normal(hw).astype(F32)
    return (base * tone[..., None]).astype(F32)


def _pixels(stamp: _Stamp) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(stamp.mask)
    return ys + stamp.y0, xs + stamp.x0


def _jitter(rng: np.random.Generator, rgb, amount: float = 0.06) -> np.ndarray:
    return np.asarray(rgb, F32) * F32(1 + rng.uniform(-amount, amount))


def _paint_roads_and_lots(image: np.ndarray, layout: _Layout, rng: np.random.Generator) -> None:
    asphalt = _jitter(rng, ASPHALT, 0.12)
    for lot in layout.lots:
        cv2.fillPoly(image, [np.rint(lot.corners * 16).astype(np.int32)], asphalt.tolist(), cv2.LINE_8, shift=4)
        for centre, heading in lot.stalls:  # stall separators: two short lines per stall
            for side in (-1.0, 1.0):
                corner = _rect(centre, 16.0, 9.0, heading)
                a, b = (corner[0], corner[1]) if side < 0 else (corner[3], corner[2])
                cv2.line(image, tuple(np.rint(a * 16).astype(int)), tuple(np.rint(b * 16).astype(int)),
                         (214, 214, 208), 1, cv2.LINE_AA, shift=4)
    for road in layout.roads:  # edge lines: a wider light band under the asphalt
        cv2.polylines(image, [np.rint(road.points * 16).astype(np.int32)], False, (205, 205, 198),
                      int(round(road.width_px)), cv2.LINE_AA, shift=4)
    for road in layout.roads:
        cv2.polylines(image, [np.rint(road.points * 16).astype(np.int32)], False, asphalt.tolist(),
                      max(int(round(road.width_px)) - 3, 1), cv2.LINE_AA, shift=4)
    for road in layout.roads:  # dashed centre line: 6 px on, 6 px off along the arc length
        points = road.points
        seg = np.diff(points, axis=0)
        lengths = np.hypot(seg[:, 0], seg[:, 1])
        arc = np.concatenate([[0], np.cumsum(lengths)])
        dense_s = np.arange(0, arc[-1], 1.0)
        dense = np.stack([np.interp(dense_s, arc, points[:, 0]), np.interp(dense_s, arc, points[:, 1])], 1)
        on = (dense_s % 12.0) < 6.0
        starts = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
        ends = np.flatnonzero(on & ~np.concatenate([on[1:], [False]]))
        dashes = [np.rint(dense[s:e + 1] * 16).astype(np.int32) for s, e in zip(starts, ends) if e > s]
        cv2.polylines(image, dashes, False, road.centre_line, 1, cv2.LINE_AA, shift=4)
    road_noise = rng.standard_normal(layout.hw).astype(F32) * 4
    image[layout.paved] += road_noise[layout.paved][:, None]


def _paint_shadows(image: np.ndarray, layout: _Layout, sun_offset: np.ndarray) -> None:
    """Darken the ground under every shadow (objects are painted afterwards, over it)."""
    shadow = np.zeros(layout.hw, np.uint8)
    for obj in layout.placed:
        if obj.height_px <= 0:
            continue
        offset = sun_offset * obj.height_px
        if obj.category == "tree":  # a crown on a trunk: its shadow is the crown moved, plus the trunk's
            shapes = [obj.pieces[0] + offset, _shadow_piece(_rect(obj.centre, 2, 2, 0), offset)]
        else:
            shapes = [_shadow_piece(piece, offset) for piece in obj.pieces]
        for shape in shapes:
            cv2.fillPoly(shadow, [np.rint(shape * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    alpha = cv2.GaussianBlur(shadow.astype(F32), (0, 0), 0.8)
    image *= 1 - alpha[..., None] * np.array([0.52, 0.49, 0.42], F32)  # skylight keeps shadows bluish


def _paint_water(image: np.ndarray, obj: _Placed, rng: np.random.Generator) -> None:
    ys, xs = _pixels(obj.stamp)
    bank = cv2.dilate(np.pad(obj.stamp.mask.astype(np.uint8), 3), np.ones((5, 5), np.uint8)).astype(bool)
    bank[3:-3, 3:-3] &= ~obj.stamp.mask
    by, bx = np.nonzero(bank)
    by, bx = by + obj.stamp.y0 - 3, bx + obj.stamp.x0 - 3
    image[by, bx] = image[by, bx] * 0.5 + np.array((150, 132, 100), F32) * 0.5
    depth = cv2.distanceTransform(np.pad(obj.stamp.mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    shade = 1.15 - 0.3 * np.clip(depth[obj.stamp.mask] / 12.0, 0, 1)  # shallow rim is lighter
    colour = _jitter(rng, WATER_COLOURS[obj.colour])
    image[ys, xs] = colour[None] * shade[:, None] * (1 + 0.02 * rng.standard_normal(len(ys)))[:, None]


def _paint_building(image: np.ndarray, obj: _Placed, rng: np.random.Generator, sun_dir: np.ndarray) -> None:
    ys, xs = _pixels(obj.stamp)
    colour = _jitter(rng, ROOF_COLOURS[obj.colour])
    if obj.flat_roof:  # parapet: the outline a shade darker
        inner = cv2.erode(np.pad(obj.stamp.mask.astype(np.uint8), 1), np.ones((3, 3), np.uint8))[1:-1, 1:-1]
        shade = np.where(inner[obj.stamp.mask] > 0, 1.0, 0.8)
    else:  # gable roof: the ridge runs along the long axis; the half facing the sun is lighter
        across = np.array([-math.sin(obj.angle), math.cos(obj.angle)])
        side = (xs - obj.centre[0]) * across[0] + (ys - obj.centre[1]) * across[1]
        lit = np.sign(side) * float(across @ -sun_dir) > 0
        shade = np.where(lit, 1.1, 0.82)
    grain = 1 + 0.03 * rng.standard_normal(len(ys))
    image[ys, xs] = colour[None] * (shade * grain)[:, None]


def _paint_vehicle(image: np.ndarray, obj: _Placed, rng: np.random.Generator) -> None:
    ys, xs = _pixels(obj.stamp)
    colour = _jitter(rng, VEHICLE_COLOURS[obj.colour], 0.05)
    forward = np.array([math.cos(obj.angle), math.sin(obj.angle)])
    piece = obj.pieces[0]
    length = float(np.linalg.norm(piece[1] - piece[0]))
    t = ((xs - obj.centre[0]) * forward[0] + (ys - obj.centre[1]) * forward[1]) / max(length, 1e-6)  # -0.5 rear .. 0.5 front
    if obj.kind == "car":  # windscreen and rear window as dark bands
        shade = np.where((t > 0.1) & (t < 0.28), 0.4, np.where((t < -0.25) & (t > -0.38), 0.55, 1.0))
    else:  # truck: a cab, a gap, then the cargo box
        shade = np.where((t > 0.22) & (t < 0.3), 0.35, np.where(t > 0.3, 0.92, 1.0))
    image[ys, xs] = colour[None] * shade[:, None]


def _paint_tree(image: np.ndarray, obj: _Placed, rng: np.random.Generator, sun_dir: np.ndarray) -> None:
    ys, xs = _pixels(obj.stamp)
    colour = _jitter(rng, TREE_COLOURS[obj.colour], 0.08)
    radius = math.sqrt(obj.stamp.mask.sum() / np.pi)
    toward_sun = ((xs - obj.centre[0]) * -sun_dir[0] + (ys - obj.centre[1]) * -sun_dir[1]) / max(radius, 1.0)
    leaves = 1 + 0.12 * rng.standard_normal(len(ys))
    image[ys, xs] = colour[None] * np.clip(1 + 0.3 * toward_sun, 0.6, 1.35)[:, None] * leaves[:, None]


def render_aerial(rng: np.random.Generator, recipe: AerialRecipe | None = None) -> AerialScene:
    """Draw a scene from ``rng``: the same rng state gives byte-identical arrays.

    Returns image (H, W, 3) uint8 RGB, instance_map (H, W) uint16, the objects (id i is
    ``objects[i - 1]``; ponds, buildings, vehicles, trees in that order) and metadata.
    """
    recipe = recipe or AerialRecipe()
    hw = tuple(recipe.size_hw)
    scale = hw[0] * hw[1] / 512**2
    layout = _Layout(hw, np.zeros(hw, bool), np.zeros(hw, bool))
    _lay_roads(rng, layout, recipe, scale)
    _lay_water(rng, layout, recipe, scale)
    _lay_lots(rng, layout, recipe, scale)
    _lay_buildings(rng, layout, recipe, scale)
    _lay_vehicles(rng, layout, recipe, scale)
    _lay_trees(rng, layout, recipe, scale)

    azimuth = rng.uniform(0, 2 * np.pi)
    shadow_dir = np.array([math.cos(azimuth), math.sin(azimuth)])  # shadows fall this way (image x right, y down)
    per_height = rng.uniform(*recipe.shadow_px_per_height)
    image = _paint_ground(rng, hw, recipe.ground)
    for obj in layout.placed:
        if obj.category == "water":
            _paint_water(image, obj, rng)
    _paint_roads_and_lots(image, layout, rng)
    _paint_shadows(image, layout, shadow_dir * per_height)
    instance_map = np.zeros(hw, np.uint16)
    objects: list[AerialObject] = []
    for obj in layout.placed:
        if obj.category == "building":
            _paint_building(image, obj, rng, shadow_dir)
        elif obj.category == "vehicle":
            _paint_vehicle(image, obj, rng)
        elif obj.category == "tree":
            _paint_tree(image, obj, rng, shadow_dir)
        instance_id = len(objects) + 1
        obj.stamp.view(instance_map)[obj.stamp.mask] = instance_id
        ys, xs = _pixels(obj.stamp)
        objects.append(AerialObject(instance_id, obj.category, obj.kind, obj.colour, int(len(ys)),
                                    (float(xs.mean()), float(ys.mean())),
                                    (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))

    haze = rng.uniform(*recipe.haze)
    image = image * F32(1 - haze) + np.array(HAZE_RGB, F32) * F32(haze)
    blur = rng.uniform(*recipe.blur_sigma_px)
    if blur > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    noise = rng.uniform(*recipe.noise_sigma)
    image = image + rng.standard_normal(image.shape, dtype=F32) * F32(noise)
    counts = {c: sum(o.category == c for o in objects) for c in CATEGORIES}
    metadata = {
        "size_hw": list(hw), "ground": recipe.ground, "roads": len(layout.roads), "parking_lots": len(layout.lots),
        "counts": counts, "small_objects": sum(o.is_small for o in objects),
        "large_objects": sum(not o.is_small for o in objects),
        "shadow_direction_deg": round(math.degrees(azimuth) % 360, 2), "shadow_px_per_height": round(per_height, 3),
        "haze": round(haze, 4), "blur_sigma_px": round(blur, 3), "noise_sigma": round(noise, 3),
    }
    return AerialScene(np.clip(np.rint(image), 0, 255).astype(np.uint8), instance_map, objects, metadata)
