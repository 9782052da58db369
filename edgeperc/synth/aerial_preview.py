"""Preview tiles of aerial queries: the image with the target mask overlaid and the query under it,
so that a person can check at a glance that each query names the object its mask covers."""

from __future__ import annotations

import textwrap

import cv2
import numpy as np

OVERLAY_RGB = (255, 0, 220)  # magenta: absent from the scenes' palettes
REFERENCE_RGB = (0, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_query_tile(image: np.ndarray, mask: np.ndarray, lines: list[str], reference_mask: np.ndarray | None = None,
                    font_scale: float = 0.45) -> np.ndarray:
    """(H, W, 3) uint8 RGB + (H, W) bool mask + text lines -> (H + band, W, 3) uint8 RGB tile.

    The mask is tinted (lightly, so its colour still shows) and outlined; the object a relation
    refers to, if any, is outlined in cyan; small targets also get a yellow ring, since a 50 px²
    car is easy to miss in a 512 px tile."""
    tile = image.astype(np.float32).copy()
    tile[mask] = tile[mask] * 0.6 + np.array(OVERLAY_RGB, np.float32) * 0.4
    tile = tile.astype(np.uint8)
    if reference_mask is not None:
        ref_contours, _ = cv2.findContours(reference_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, ref_contours, -1, REFERENCE_RGB, 1, cv2.LINE_AA)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(tile, contours, -1, OVERLAY_RGB, 1, cv2.LINE_AA)
    ys, xs = np.nonzero(mask)
    if len(ys) and len(ys) < 500:
        centre = (int(round(xs.mean())), int(round(ys.mean())))
        radius = int(max(np.ptp(xs), np.ptp(ys)) / 2 + 8)
        cv2.circle(tile, centre, radius, (255, 255, 0), 1, cv2.LINE_AA)
    width = image.shape[1]
    chars = max(int(width / (19 * font_scale)), 20)  # Hershey simplex is about 19 px per char at scale 1
    wrapped = [part for line in lines for part in textwrap.wrap(line, chars)]
    step = int(round(40 * font_scale))
    band = np.full((step * len(wrapped) + 8, width, 3), 250, np.uint8)
    for i, line in enumerate(wrapped):
        cv2.putText(band, line, (4, step * (i + 1)), _FONT, font_scale, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([tile, band])


def montage(tiles: list[np.ndarray], columns: int = 3, gap_px: int = 6) -> np.ndarray:
    """Tiles (any heights, equal widths) -> one (H, W, 3) uint8 image, row by row, white gaps."""
    if not tiles:
        raise ValueError("montage needs at least one tile")
    width = tiles[0].shape[1]
    columns = max(1, min(columns, len(tiles)))
    rows = []
    for start in range(0, len(tiles), columns):
        row = tiles[start:start + columns]
        height = max(t.shape[0] for t in row)
        padded = [np.pad(t, ((0, height - t.shape[0]), (0, gap_px), (0, 0)), constant_values=255) for t in row]
        padded += [np.full((height, width + gap_px, 3), 255, np.uint8)] * (columns - len(row))
        rows.append(np.pad(np.concatenate(padded, 1), ((0, gap_px), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(rows)
