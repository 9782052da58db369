"""Segmentation probabilities → one detection per barcode (the dissertation's box extractor, ch. 3.2).

threshold → erosion (widens the gaps between touching barcodes) → outer contours by border
following → pixel-correction margin (gives back what the erosion took) → axis-aligned box and
oriented box (minAreaRect), with a pseudo-score = mean probability over the barcode's pixels.

Coordinate conventions (shared by every module of this package):
- ``box_xyxy`` is integer pixel indices, x0/y0 inclusive and x1/y1 **exclusive**: the box covers
  ``image[y0:y1, x0:x1]``; its width is ``x1 - x0``.
- ``polygon`` uses OpenCV's continuous convention: pixel (row i, column j) has its centre at
  (x=j, y=i). A rectangle of pixels ``[x0, x1) × [y0, y1)`` has the polygon
  (x0, y0), (x1-1, y0), (x1-1, y1-1), (x0, y1-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from edgeperc.runtime.pipelines.barcode.checks import check_2d, check_finite

from edgeperc.errors import ConfigError, InvalidInputError


@dataclass(frozen=True)
class Detection:
    """One barcode found in a probability map.

    box_xyxy: (x0, y0, x1, y1) int pixel indices, x1/y1 exclusive, clipped to the image.
    polygon: (4, 2) float32 corners (x, y), pixel-centre convention, ordered so that p0→p1 is the
        long side (direction ``angle_deg``), p1→p2 the short side turned +90° (clockwise on
        screen, y down): warping p0, p1, p2, p3 onto (0, 0), (w, 0), (w, h), (0, h) gives the
        region upright with its long side horizontal. May reach beyond the image by up to the
        margin (the box is clipped, the polygon is not). Read-only.
    angle_deg: angle of the long side from the +x axis, in (-90, 90], y down (positive =
        clockwise on screen); a square's angle is that of one of its sides.
    score: pseudo-score in [0, 1], the mean probability over the barcode's above-threshold pixels.
    area_px: number of above-threshold pixels that belong to this barcode (before any rescaling
        by ``offset_detections``, which scales it by scale²).
    """

    box_xyxy: tuple[int, int, int, int]
    polygon: np.ndarray = field(compare=False, repr=False)
    angle_deg: float
    score: float
    area_px: float


def _check_prob_map(prob: np.ndarray) -> np.ndarray:
    array = check_finite(check_2d(prob, "probability map"), "probability map", kinds="fbiu", dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if low < -1e-6 or high > 1.0 + 1e-6:
        raise InvalidInputError(f"probability map must lie in [0, 1], got range [{low:g}, {high:g}]")
    return array


def _check_non_negative_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _disk_kernel(radius_px: int) -> np.ndarray:
    # A disk shrinks (and grows back) every side by radius_px whatever its angle; a square
    # kernel would erode a 45° barcode by radius·√2 and the margin would not restore it.
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))


def oriented_polygon(center_xy: tuple[float, float], long_px: float, short_px: float,
                     angle_deg: float) -> np.ndarray:
    """Rectangle → (4, 2) float32 corners p0..p3 in the order described on ``Detection``."""
    rad = math.radians(angle_deg)
    u = np.array([math.cos(rad), math.sin(rad)])
    v = np.array([-math.sin(rad), math.cos(rad)])
    c = np.asarray(center_xy, dtype=np.float64)
    half_l, half_s = long_px / 2.0, short_px / 2.0
    corners = [c - u * half_l - v * half_s, c + u * half_l - v * half_s,
               c + u * half_l + v * half_s, c - u * half_l + v * half_s]
    return np.asarray(corners, dtype=np.float32)


def rect_geometry(points_xy: np.ndarray) -> tuple[tuple[float, float], float, float, float]:
    """(K, 2) points → minimum-area rectangle as (centre_xy, long_px, short_px, angle_deg).

    The angle is derived from cv2.boxPoints' long edge rather than taken from minAreaRect, whose
    angle convention changed between OpenCV releases.
    """
    rect = cv2.minAreaRect(np.asarray(points_xy, dtype=np.float32).reshape(-1, 1, 2))
    corners = cv2.boxPoints(rect).astype(np.float64)
    edge_a, edge_b = corners[1] - corners[0], corners[2] - corners[1]
    len_a, len_b = float(np.hypot(*edge_a)), float(np.hypot(*edge_b))
    long_edge = edge_a if len_a >= len_b else edge_b
    long_px, short_px = max(len_a, len_b), min(len_a, len_b)
    dx, dy = float(long_edge[0]), float(long_edge[1])
    if dx < 0 or (dx == 0 and dy < 0):
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dy, dx)) + 0.0 if long_px > 0 else 0.0  # + 0.0: no -0.0
    if angle <= -90.0:
        angle += 180.0
    return (float(rect[0][0]), float(rect[0][1])), long_px, short_px, angle


def _pixel_box(polygon: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixels whose centres the polygon's bounds reach → (x0, y0, x1, y1), x1/y1 exclusive, clipped."""
    # minAreaRect works in float32: a corner meant to sit on pixel 20 comes back as 19.99998.
    eps = 1e-2
    xs, ys = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    return (int(np.clip(math.floor(xs.min() + eps), 0, width)),
            int(np.clip(math.floor(ys.min() + eps), 0, height)),
            int(np.clip(math.floor(xs.max() + eps) + 1, 0, width)),
            int(np.clip(math.floor(ys.max() + eps) + 1, 0, height)))


def masks_to_boxes(prob: np.ndarray, threshold: float = 0.5, erode_px: int = 2,
                   margin_px: int = 2, min_area_px: int = 30) -> list[Detection]:
    """(H, W) float32 probabilities in [0, 1] → detections, one per separated barcode.

    A pixel is barcode when ``prob > threshold``. The mask is eroded by a disk of radius
    ``erode_px`` (touching barcodes separated by fewer than 2·erode_px+1 pixels of width are
    split), outer contours are found on the eroded mask, and each box/polygon is grown by
    ``margin_px`` (≈ erode_px restores the original size). A barcode's pixels are the
    above-threshold pixels of the un-eroded mask inside its filled contour dilated by a
    (2·erode_px+1)² square; the
    score is their mean probability and ``area_px`` their count. Components with fewer than
    ``min_area_px`` such pixels are dropped. Detections are sorted by score, highest first.
    """
    array = _check_prob_map(prob)
    if not 0.0 < float(threshold) < 1.0 or not math.isfinite(float(threshold)):
        raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}")
    erode_px = _check_non_negative_int("erode_px", erode_px)
    margin_px = _check_non_negative_int("margin_px", margin_px)
    min_area_px = _check_non_negative_int("min_area_px", min_area_px)

    height, width = array.shape
    binary = (array > threshold).astype(np.uint8)
    kernel = _disk_kernel(erode_px)
    # cv2.erode treats outside pixels as foreground: a barcode cut by the frame edge is not
    # eroded from that side, so the margin then overshoots there and the box is clipped.
    eroded = cv2.erode(binary, kernel) if erode_px > 0 else binary
    contours, _ = cv2.findContours(eroded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)

    detections: list[Detection] = []
    for contour in contours:
        bx, by, bw, bh = cv2.boundingRect(contour)
        # Local window big enough for the dilated contour: keeps the work per barcode O(its size).
        pad = erode_px + 1
        x0, y0 = max(bx - pad, 0), max(by - pad, 0)
        x1, y1 = min(bx + bw + pad, width), min(by + bh + pad, height)
        filled = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED, offset=(-x0, -y0))
        if erode_px > 0:
            # A square grows back the rectangle corners a disk would leave out; ∩ mask below.
            filled = cv2.dilate(filled, np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8))
        region = (filled > 0) & (binary[y0:y1, x0:x1] > 0)
        area_px = int(region.sum())
        if area_px == 0 or area_px < min_area_px:
            continue
        score = float(array[y0:y1, x0:x1][region].mean(dtype=np.float64))

        center, long_px, short_px, angle = rect_geometry(contour.reshape(-1, 2))
        polygon = oriented_polygon(center, long_px + 2 * margin_px, short_px + 2 * margin_px, angle)
        polygon.setflags(write=False)
        box = _pixel_box(polygon, width, height)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        detections.append(Detection(box, polygon, angle, score, float(area_px)))
    detections.sort(key=lambda d: (-d.score, d.box_xyxy))
    return detections


def offset_detections(dets: list[Detection], dx: float, dy: float, scale: float = 1.0) -> list[Detection]:
    """Detections in a crop's frame → the full image's frame.

    A crop pixel covers ``scale`` full-image pixels and the crop's top-left pixel corner sits at
    (dx, dy) in the full image (``scale`` > 1 when the crop was downscaled before segmentation).
    Pixel edges map as ``x_full = x_crop·scale + dx`` (box: floor of the start, ceil of the
    exclusive end); pixel centres (the polygon) as ``(x + 0.5)·scale − 0.5 + dx``. Boxes are not
    clipped to the full image: the caller knows its size. ``area_px`` is scaled by scale².
    """
    for name, value in (("dx", dx), ("dy", dy), ("scale", scale)):
        if not math.isfinite(float(value)):
            raise InvalidInputError(f"{name} must be finite, got {value!r}")
    if float(scale) <= 0:
        raise InvalidInputError(f"scale must be > 0, got {scale!r}")
    scale, dx, dy = float(scale), float(dx), float(dy)
    out = []
    for det in dets:
        x0, y0, x1, y1 = det.box_xyxy
        box = (math.floor(x0 * scale + dx + 1e-9), math.floor(y0 * scale + dy + 1e-9),
               math.ceil(x1 * scale + dx - 1e-9), math.ceil(y1 * scale + dy - 1e-9))
        polygon = (det.polygon.astype(np.float64) + 0.5) * scale - 0.5 + np.array([dx, dy])
        polygon = polygon.astype(np.float32)
        polygon.setflags(write=False)
        out.append(Detection(box, polygon, det.angle_deg, det.score, det.area_px * scale * scale))
    return out
