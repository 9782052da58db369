"""What a drone's planner reads from a depth panorama: the nearest obstacle per azimuth sector,
with its uncertainty. Pure numpy; equirectangular convention of edgeperc.synth.panoramas
(longitude -180..180 deg along W, latitude +90 (top) .. -90 along H, pixel centres)."""

from __future__ import annotations

import numpy as np

from edgeperc.errors import ConfigError, InvalidInputError


def pixel_angles(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(W,) longitudes and (H,) latitudes in degrees of the pixel centres."""
    height, width = hw
    lon = (np.arange(width) + 0.5) / width * 360.0 - 180.0
    lat = 90.0 - (np.arange(height) + 0.5) / height * 180.0
    return lon, lat


def sector_summary(depth: np.ndarray, sigma: np.ndarray, sectors: int = 16, band_deg: tuple[float, float] = (-30.0, 30.0),
                   quantile: float = 0.02) -> list[dict]:
    """(H, W) depth and sigma in metres -> one record per azimuth sector: the nearest obstacle
    (the ``quantile`` of depth in the sector's latitude band, robust to single-pixel noise), the
    sigma at that pixel, and where it is (azimuth, latitude)."""
    depth, sigma = np.asarray(depth, np.float32), np.asarray(sigma, np.float32)
    if depth.ndim != 2 or depth.shape != sigma.shape:
        raise InvalidInputError(f"depth {depth.shape} and sigma {sigma.shape} must be one (H, W) shape")
    if not 1 <= sectors <= depth.shape[1]:
        raise ConfigError(f"sectors must be 1..{depth.shape[1]} (image width), got {sectors}")
    low, high = band_deg
    if not -90 <= low < high <= 90:
        raise ConfigError(f"band_deg must satisfy -90 <= low < high <= 90, got {band_deg}")
    lon, lat = pixel_angles(depth.shape)
    rows = np.nonzero((lat >= low) & (lat <= high))[0]
    if rows.size == 0:
        raise ConfigError(f"latitude band {band_deg} holds no pixel row at height {depth.shape[0]}")
    edges = np.linspace(-180.0, 180.0, sectors + 1)
    records = []
    for k in range(sectors):
        cols = np.nonzero((lon >= edges[k]) & (lon < edges[k + 1]))[0]
        band = depth[np.ix_(rows, cols)]
        finite = np.isfinite(band)
        record = {"azimuth_deg": [round(float(edges[k]), 2), round(float(edges[k + 1]), 2)]}
        if not finite.any():
            records.append({**record, "nearest_m": None, "sigma_m": None, "at_deg": None})
            continue
        target = np.quantile(band[finite], quantile)
        flat = np.where(finite, np.abs(band - target), np.inf).argmin()
        r, c = np.unravel_index(flat, band.shape)
        records.append({**record, "nearest_m": round(float(band[r, c]), 3),
                        "sigma_m": round(float(sigma[rows[r], cols[c]]), 3),
                        "at_deg": [round(float(lon[cols[c]]), 2), round(float(lat[rows[r]]), 2)]})
    return records
