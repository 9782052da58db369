"""PNG previews of dense outputs (masks, depth, uncertainty) so people can look at results."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def colourise(map_2d: np.ndarray, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """(H, W) float -> (H, W, 3) uint8 BGR, min-max scaled (a constant map becomes mid-grey)."""
    values = np.asarray(map_2d, np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = np.full(values.shape, 127, np.uint8) if high <= low else ((values - low) / (high - low) * 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, colormap)


def save_previews(outputs: dict[str, np.ndarray], folder: Path) -> list[Path]:
    """One PNG per (output, batch item) for every (B, 1, H, W) output; others are skipped."""
    written = []
    for name, value in outputs.items():
        if value.ndim != 4 or value.shape[1] != 1 or min(value.shape[2:]) < 8:
            continue
        for index, item in enumerate(value[:, 0]):
            path = folder / f"{name}_{index}.png"
            cv2.imwrite(str(path), colourise(item))
            written.append(path)
    return written
