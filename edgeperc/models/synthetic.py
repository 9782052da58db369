"""Synthetic equirectangular rooms with exact depth (no downloads); deterministic per seed.
Barcode scenes live in edgeperc.synth (they need zxing-cpp's writer)."""

from __future__ import annotations

import numpy as np


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
