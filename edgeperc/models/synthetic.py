"""Synthetic data the package generates itself (no downloads): barcode-like scenes with masks,
and equirectangular rooms with exact depth. Deterministic per seed; numpy + OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np


def _bar_patch(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 1-D barcode: black/white bars of 1-4 modules, quiet zone included."""
    module_px = int(rng.integers(1, 3))
    widths = rng.integers(1, 5, size=width) * module_px
    colours = np.where(np.arange(len(widths)) % 2 == 0, 20, 235)
    row = np.repeat(colours, widths)[:width]
    if row.size < width:
        row = np.pad(row, (0, width - row.size), constant_values=235)
    return np.tile(row.astype(np.uint8), (height, 1))


def barcode_scene(rng: np.random.Generator, hw: tuple[int, int] = (400, 400)) -> tuple[np.ndarray, np.ndarray]:
    """One grey scene: ((H, W) uint8 image, (H, W) uint8 {0,1} mask of barcode pixels).

    Recipe after ch. 3: Poisson number of codes, random rotation/scale, random black blobs
    (distractors that are dark but not barcodes), background texture and noise.
    """
    height, width = hw
    image = np.full(hw, rng.uniform(120, 220), dtype=np.float32)
    image += cv2.GaussianBlur(rng.normal(0, 25, hw).astype(np.float32), (0, 0), 6)
    mask = np.zeros(hw, np.uint8)
    for _ in range(int(rng.poisson(1.5)) + 1):
        bh = int(rng.integers(height // 10, height // 3))
        bw = int(rng.integers(width // 8, width // 2.5))
        patch = _bar_patch(rng, bh, bw).astype(np.float32)
        angle = float(rng.uniform(-40, 40))
        cx, cy = float(rng.uniform(bw / 2, width - bw / 2)), float(rng.uniform(bh / 2, height - bh / 2))
        matrix = cv2.getRotationMatrix2D((bw / 2, bh / 2), angle, 1.0)
        matrix[:, 2] += (cx - bw / 2, cy - bh / 2)
        warped = cv2.warpAffine(patch, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=-1)
        region = cv2.warpAffine(np.ones((bh, bw), np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST)
        image = np.where(region > 0, warped, image)
        mask |= region
    for _ in range(int(rng.integers(0, 4))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(5, 30)), int(rng.integers(5, 30)))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0, 40)), -1)
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 0, -1)
    image += rng.normal(0, rng.uniform(2, 10), hw)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def equirect_directions(hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) unit ray directions of an equirectangular image, z up, longitude along W."""
    height, width = hw
    lon = (np.arange(width) + 0.5) / width * 2 * np.pi - np.pi
    lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    lon, lat = np.meshgrid(lon, lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def panorama_scene(rng: np.random.Generator, hw: tuple[int, int] = (256, 512)) -> tuple[np.ndarray, np.ndarray]:
    """One equirectangular room: ((H, W, 3) uint8 RGB, (H, W) float32 depth in metres).

    Rays are cast against a box room and a few spheres; walls carry checker textures whose
    apparent scale shrinks with distance, so depth is learnable from the image.
    """
    dirs = equirect_directions(hw)
    half = rng.uniform([1.5, 1.5, 1.2], [5.0, 5.0, 2.0])
    origin = rng.uniform(-0.6, 0.6, 3) * half
    with np.errstate(divide="ignore"):
        t_planes = np.where(dirs > 0, (half - origin) / dirs, (-half - origin) / dirs)
    t_planes = np.where(np.isfinite(t_planes) & (t_planes > 0), t_planes, np.inf)
    depth = t_planes.min(axis=-1)
    face = t_planes.argmin(axis=-1) * 2 + (np.take_along_axis(dirs, t_planes.argmin(-1)[..., None], -1)[..., 0] > 0)
    hit = origin + dirs * depth[..., None]
    palette = rng.uniform(60, 230, size=(6, 3))
    colour = palette[face]
    checker = (np.floor(hit * 2.0).sum(axis=-1) % 2)[..., None]
    colour = colour * (0.75 + 0.25 * checker)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(-0.7, 0.7, 3) * half
        radius = float(rng.uniform(0.3, 0.9))
        oc = origin - centre
        if np.linalg.norm(oc) < radius + 0.2:
            continue
        b = (dirs * oc).sum(-1)
        disc = b**2 - (oc @ oc - radius**2)
        t_hit = -b - np.sqrt(np.maximum(disc, 0))
        closer = (disc > 0) & (t_hit > 0) & (t_hit < depth)
        depth = np.where(closer, t_hit, depth)
        shade = 0.5 + 0.5 * np.clip(-(dirs * (oc[None, None] + dirs * t_hit[..., None])).sum(-1) / radius, 0, 1)
        colour = np.where(closer[..., None], rng.uniform(40, 240, 3) * shade[..., None], colour)
    colour = colour * np.clip(1.6 / np.sqrt(depth), 0.4, 1.2)[..., None]
    colour += rng.normal(0, 3, colour.shape)
    return np.clip(colour, 0, 255).astype(np.uint8), depth.astype(np.float32)
