"""Ultra-high-resolution barcode scenes after the dissertation's recipe (ch. 3): a Poisson number
of codes of many symbologies, perspective transforms, clusters of nearby codes, random black
blobs, blur, noise, uneven lighting and JPEG artefacts, with ground truth polygons and text.

Memory: the canvas is one (H, W) uint8 array; every per-pixel step runs on row bands, so a
16k x 16k scene never holds a float copy of the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgeperc.synth.symbols import pick_symbology, render_symbol

BAND_ROWS = 1024


class SceneRecipe(BaseModel):
    """How a scene is made; ``stress`` variants change it for robustness sets."""

    model_config = ConfigDict(extra="forbid")

    size_hw: tuple[int, int] = (4096, 4096)
    mean_count: float = Field(3.0, ge=0, le=200)
    cluster_probability: float = Field(0.3, ge=0, le=1)
    module_px: tuple[int, int] = (2, 5)
    max_rotation_deg: float = Field(180.0, ge=0, le=180)
    perspective: float = Field(0.08, ge=0, le=0.4)
    blobs: tuple[int, int] = (0, 6)
    blur_sigma_px: tuple[float, float] = (0.0, 1.0)
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    lighting: float = Field(0.25, ge=0, le=0.9)
    contrast: tuple[float, float] = (0.7, 1.0)
    jpeg_quality: tuple[int, int] | None = (70, 95)
    symbologies: tuple[str, ...] | None = None
    degrade: bool = True  # False: skip full-frame blur/noise/JPEG (they vanish in a 256 px copy anyway)
    renderer: Literal["zxing-cpp", "python-barcode+segno"] = "zxing-cpp"
    min_count: int = Field(0, ge=0, le=200, description="at least this many codes (phone photos hold one)")
    curvature: float = Field(0.0, ge=0, le=1.2, description="max half-arc (rad) of a code wrapped round a cylinder")
    glare: float = Field(0.0, ge=0, le=1, description="chance of a specular highlight over each code")
    quarter_turns: int = Field(0, ge=0, le=3, description="the finished frame is rotated by 90 degrees this many times")


@dataclass(frozen=True)
class BarcodeTruth:
    polygon: np.ndarray  # (4, 2) float32 corners in image pixels, clockwise from the symbol's top-left
    box_xyxy: tuple[int, int, int, int]  # x1, y1 exclusive
    symbology: str
    text: str


@dataclass
class Scene:
    image: np.ndarray  # (H, W) uint8
    barcodes: list[BarcodeTruth] = field(default_factory=list)


def _background(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """Cardboard/paper: low-frequency tone upsampled from a tiny grid, no full-frame float."""
    small = rng.normal(rng.uniform(150, 215), rng.uniform(5, 20), (max(2, hw[0] // 256), max(2, hw[1] // 256)))
    return cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)


def _tight_box(symbol: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the dark modules: the truth excludes the quiet zone."""
    ys, xs = np.nonzero(symbol < 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _corners(rng: np.random.Generator, w: float, h: float, centre: tuple[float, float], recipe: SceneRecipe) -> np.ndarray:
    angle = np.deg2rad(rng.uniform(-recipe.max_rotation_deg, recipe.max_rotation_deg))
    rect = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rect += rng.uniform(-recipe.perspective, recipe.perspective, (4, 2)) * np.array([w, h])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (rect @ rotation.T + np.asarray(centre)).astype(np.float32)


def _overlaps(box: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]], gap_px: int) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + gap_px and b[0] < x1 + gap_px and y0 < b[3] + gap_px and b[1] < y1 + gap_px for b in placed)


def _bend(tone: np.ndarray, inside: np.ndarray, arc: float, sag: float) -> tuple[np.ndarray, np.ndarray, callable]:
    """Wrap a flat symbol round a cylinder seen from the front (a curved pack or can).

    Column s in [-1, 1] of the flat label sits at angle s * arc and is seen at x = sin(s * arc) /
    sin(arc); rows drop by ``sag`` * h * (1 - cos) toward the edges and the far sides darken.
    Returns the bent tone, its coverage mask and the forward map of flat x to bent x (pixels)."""
    h, w = tone.shape
    x_out = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    theta = np.arcsin(np.clip(x_out * np.sin(arc), -1, 1))
    map_x = np.broadcast_to(((theta / arc + 1) / 2 * w - 0.5)[None], (h, w)).astype(np.float32)
    map_y = (np.arange(h, dtype=np.float32)[:, None] - sag * h * (1 - np.cos(theta))[None]).astype(np.float32)
    shade = (0.75 + 0.25 * np.cos(theta)).astype(np.float32)[None]
    bent = cv2.remap(tone.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) * shade
    bent_inside = cv2.remap(inside, map_x, map_y, cv2.INTER_NEAREST, borderValue=0)

    def forward(x_flat: np.ndarray) -> np.ndarray:
        s_flat = (np.asarray(x_flat, np.float64) / w) * 2 - 1
        return (np.sin(s_flat * arc) / np.sin(arc) + 1) / 2 * w

    return np.clip(bent, 0, 255).astype(np.uint8), bent_inside, forward


def _paste(canvas: np.ndarray, tone: np.ndarray, inside: np.ndarray, corners_dst: np.ndarray) -> tuple[int, int, int, int]:
    """Warp ``tone`` (the symbol with its quiet zone, in grey levels) onto ``canvas`` where
    ``inside`` is set, touching only the corners' bounding box."""
    h, w = tone.shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    x0, y0 = np.floor(corners_dst.min(0)).astype(int)
    x1, y1 = np.ceil(corners_dst.max(0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    matrix = cv2.getPerspectiveTransform(src, corners_dst - np.array([x0, y0], np.float32))
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(tone, matrix, size, flags=cv2.INTER_AREA if w > size[0] else cv2.INTER_LINEAR)
    covered = cv2.warpPerspective(inside, matrix, size, flags=cv2.INTER_NEAREST)
    region = canvas[y0:y1, x0:x1]
    np.copyto(region, warped, where=covered.astype(bool))
    return x0, y0, x1, y1


def _add_glare(rng: np.random.Generator, canvas: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """A saturating elliptical highlight over part of a code, as from a lamp on glossy film."""
    x0, y0, x1, y1 = box
    rx, ry = max(2.0, (x1 - x0) * rng.uniform(0.12, 0.35)), max(2.0, (y1 - y0) * rng.uniform(0.12, 0.35))
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    gx0, gy0 = max(0, int(cx - 3 * rx)), max(0, int(cy - 3 * ry))
    gx1, gy1 = min(canvas.shape[1], int(cx + 3 * rx) + 1), min(canvas.shape[0], int(cy + 3 * ry) + 1)
    if gx1 <= gx0 or gy1 <= gy0:
        return
    yy, xx = np.mgrid[gy0:gy1, gx0:gx1].astype(np.float32)
    light = rng.uniform(120, 260) * np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
    region = canvas[gy0:gy1, gx0:gx1]
    region[...] = np.clip(region + light, 0, 255).astype(np.uint8)


def _turn(scene: "Scene", quarter_turns: int) -> "Scene":
    """Rotate the frame and its truth by 90 degrees counter-clockwise ``quarter_turns`` times."""
    image, truths = scene.image, scene.barcodes
    for _ in range(quarter_turns):
        width = image.shape[1]
        image = np.ascontiguousarray(np.rot90(image))
        turned = []
        for truth in truths:
            polygon = np.stack([truth.polygon[:, 1], width - truth.polygon[:, 0]], axis=1).astype(np.float32)
            turned.append(BarcodeTruth(polygon=polygon, box_xyxy=_polygon_box(polygon), symbology=truth.symbology, text=truth.text))
        truths = turned
    return Scene(image=image, barcodes=truths)


def _polygon_box(polygon: np.ndarray) -> tuple[int, int, int, int]:
    return (int(np.floor(polygon[:, 0].min())), int(np.floor(polygon[:, 1].min())),
            int(np.ceil(polygon[:, 0].max())), int(np.ceil(polygon[:, 1].max())))


def _degrade(rng: np.random.Generator, canvas: np.ndarray, recipe: SceneRecipe) -> None:
    """Blur, uneven lighting and noise in place, band by band; then optional JPEG round trip."""
    sigma = rng.uniform(*recipe.blur_sigma_px)
    height, width = canvas.shape
    gain_small = 1 + rng.uniform(-recipe.lighting, recipe.lighting, (3, 3))
    gain_full_rows = cv2.resize(gain_small.astype(np.float32), (width // 16 + 1, height // 16 + 1), interpolation=cv2.INTER_CUBIC)
    noise_sigma = rng.uniform(*recipe.noise_sigma)
    if sigma > 0.2:
        cv2.GaussianBlur(canvas, (0, 0), sigma, dst=canvas)
    for top in range(0, height, BAND_ROWS):
        band = canvas[top : top + BAND_ROWS]
        gain = cv2.resize(gain_full_rows[top // 16 : (top + len(band)) // 16 + 2], (width, len(band)), interpolation=cv2.INTER_LINEAR)
        values = band.astype(np.float32) * gain[: len(band)] + rng.normal(0, noise_sigma, band.shape).astype(np.float32)
        np.clip(values, 0, 255, out=values)
        band[...] = values.astype(np.uint8)
    if recipe.jpeg_quality is not None:
        quality = int(rng.integers(recipe.jpeg_quality[0], recipe.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            canvas[...] = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def generate_scene(rng: np.random.Generator, recipe: SceneRecipe) -> Scene:
    """One scene; deterministic for a given generator state and recipe."""
    height, width = recipe.size_hw
    canvas = _background(rng, (height, width))
    truths: list[BarcodeTruth] = []
    placed: list[tuple[int, int, int, int]] = []
    if recipe.renderer == "zxing-cpp":
        render, allowed = render_symbol, recipe.symbologies
    else:
        from edgeperc.synth.other_renderer import ALT_SYMBOLOGIES, render_symbol_alt

        render, allowed = render_symbol_alt, recipe.symbologies or ALT_SYMBOLOGIES
    count = max(recipe.min_count, int(rng.poisson(recipe.mean_count)))
    anchor: tuple[float, float] | None = None
    for _ in range(count):
        symbology = pick_symbology(rng, allowed)
        module_px = int(rng.integers(recipe.module_px[0], recipe.module_px[1] + 1))
        symbol = render(rng, symbology, module_px)
        sx0, sy0, sx1, sy1 = _tight_box(symbol.image)
        h, w = symbol.image.shape
        if w >= width * 0.9 or h >= height * 0.9:
            continue
        for _attempt in range(25):
            if anchor is not None and rng.random() < recipe.cluster_probability:
                centre = (anchor[0] + rng.uniform(-1.2, 1.2) * w, anchor[1] + rng.uniform(-1.2, 1.2) * h)
            else:
                centre = (rng.uniform(w / 2, width - w / 2), rng.uniform(h / 2, height - h / 2))
            corners = _corners(rng, w, h, centre, recipe)
            if corners.min() < 0 or corners[:, 0].max() >= width or corners[:, 1].max() >= height:
                continue
            footprint = tuple(int(v) for v in (*corners.min(0), *corners.max(0)))
            if _overlaps(footprint, placed, gap_px=2 * module_px):
                continue
            contrast = rng.uniform(*recipe.contrast)
            ink, paper = 128 - 120 * contrast, 128 + 120 * contrast
            tone = np.where(symbol.image < 128, ink, paper).astype(np.uint8)
            inside = np.ones_like(symbol.image)
            tx0, tx1 = float(sx0), float(sx1)
            ty0, ty1 = float(sy0), float(sy1)
            if recipe.curvature > 0:
                arc, sag = rng.uniform(0.3, 1.0) * recipe.curvature, rng.uniform(-0.08, 0.08)
                tone, inside, forward = _bend(tone, inside, arc, sag)
                tx0, tx1 = (float(v) for v in forward(np.array([sx0, sx1])))
                ty0, ty1 = ty0 + min(0.0, sag * h), ty1 + max(0.0, sag * h)
            _paste(canvas, tone, inside, corners)
            placed.append(footprint)
            anchor = centre
            # Truth polygon: the dark-module box mapped through the same homography.
            src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
            matrix = cv2.getPerspectiveTransform(src, corners)
            tight = np.array([[tx0, ty0], [tx1, ty0], [tx1, ty1], [tx0, ty1]], np.float32)[None]
            polygon = cv2.perspectiveTransform(tight, matrix)[0]
            truths.append(BarcodeTruth(polygon=polygon, box_xyxy=_polygon_box(polygon), symbology=symbology, text=symbol.text))
            break
    for _ in range(int(rng.integers(recipe.blobs[0], recipe.blobs[1] + 1))):
        radius = (int(rng.uniform(0.005, 0.03) * width), int(rng.uniform(0.005, 0.03) * height))
        centre_px = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        blob = (centre_px[0] - radius[0], centre_px[1] - radius[1], centre_px[0] + radius[0], centre_px[1] + radius[1])
        if not _overlaps(blob, placed, gap_px=8):
            cv2.ellipse(canvas, centre_px, radius, float(rng.uniform(0, 180)), 0, 360, int(rng.uniform(0, 40)), -1)
    for truth in truths:
        if recipe.glare > 0 and rng.random() < recipe.glare:
            _add_glare(rng, canvas, truth.box_xyxy)
    if recipe.degrade:
        _degrade(rng, canvas, recipe)
    return _turn(Scene(image=canvas, barcodes=truths), recipe.quarter_turns)


STRESS_RECIPES: dict[str, dict] = {
    "default": {},
    "heavy-blur-noise": {"blur_sigma_px": (1.2, 2.2), "noise_sigma": (10.0, 20.0), "jpeg_quality": (35, 60)},
    "strong-perspective": {"perspective": 0.25},
    "low-contrast": {"contrast": (0.2, 0.35), "lighting": 0.5},
    "tiny-codes": {"module_px": (1, 2)},
    "huge-codes": {"module_px": (8, 14), "mean_count": 2.0},
    "no-codes": {"mean_count": 0.0, "blobs": (4, 12)},
    "other-renderer": {"renderer": "python-barcode+segno"},
    "rotated-90": {"max_rotation_deg": 8.0, "quarter_turns": 1},
    # A phone photo of one code (the size is fixed, --size is ignored): tilt, a curved pack,
    # glare, blur, strong uneven light.
    "phone-photo": {"size_hw": (480, 480), "mean_count": 0.0, "min_count": 1, "module_px": (2, 3), "max_rotation_deg": 30.0,
                    "perspective": 0.12, "blobs": (0, 0), "blur_sigma_px": (0.3, 1.2), "noise_sigma": (3.0, 8.0),
                    "lighting": 0.5, "curvature": 0.9, "glare": 0.8, "jpeg_quality": (60, 90)},
}


def stress_recipe(name: str, size_px: int, mean_count: float) -> SceneRecipe:
    """The named recipe at ``size_px`` (phone-photo keeps its own size) with ``mean_count`` codes."""
    from edgeperc.errors import ConfigError

    if name not in STRESS_RECIPES:
        raise ConfigError(f"--recipe '{name}' must be one of {', '.join(STRESS_RECIPES)}")
    return SceneRecipe(**{"size_hw": (size_px, size_px), "mean_count": mean_count, **STRESS_RECIPES[name]})


def low_res_copy(image: np.ndarray, size_px: int = 256) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8 by area averaging (what the RPN sees)."""
    return cv2.resize(image, (size_px, size_px), interpolation=cv2.INTER_AREA)


def rasterise_mask(barcodes: list[BarcodeTruth], window_xyxy: tuple[int, int, int, int], out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """(h, w) uint8 {0,1} mask of the barcodes inside ``window`` (optionally resized to out_hw)."""
    x0, y0, x1, y1 = window_xyxy
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for truth in barcodes:
        bx0, by0, bx1, by1 = truth.box_xyxy
        if bx1 <= x0 or bx0 >= x1 or by1 <= y0 or by0 >= y1:
            continue
        points = np.round((truth.polygon - np.array([x0, y0])) * 16).astype(np.int32)
        cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=4)
    if out_hw is not None and mask.shape != tuple(out_hw):
        mask = cv2.resize(mask, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_NEAREST)
    return mask
