"""Overlay of a scan for people to look at: downscaled frame, Y-Net masks, proposals, boxes, text."""

from __future__ import annotations

import cv2
import numpy as np
from edgeperc.runtime.pipelines.barcode.pipeline import ScanResult


def draw_overlay(frame: np.ndarray, result: ScanResult, max_side_px: int = 1600) -> np.ndarray:
    """(H, W) uint8 frame -> (h, w, 3) uint8 BGR, h/w <= max_side_px: masks in magenta, RPN
    proposals in blue, decoded barcodes in green with their text, undecoded ones in orange."""
    height, width = frame.shape
    scale = min(1.0, max_side_px / max(height, width))
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    base = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    canvas = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)
    mask = np.zeros((size[1], size[0]), np.float32)
    for window, prob in zip(result.windows, result.window_masks):
        x0, y0 = int(window.x0 * scale), int(window.y0 * scale)
        side = max(1, int(round(window.side_px * scale)))
        patch = cv2.resize(prob, (side, side), interpolation=cv2.INTER_AREA)
        h = min(side, size[1] - y0)
        w = min(side, size[0] - x0)
        if h > 0 and w > 0:
            np.maximum(mask[y0 : y0 + h, x0 : x0 + w], patch[:h, :w], out=mask[y0 : y0 + h, x0 : x0 + w])
    tint = np.zeros_like(canvas)
    tint[..., 0], tint[..., 2] = 255, 255
    alpha = (np.clip(mask, 0, 1) * 0.45)[..., None]
    canvas = (canvas * (1 - alpha) + tint * alpha).astype(np.uint8)
    thickness = max(1, int(round(max(size) / 600)))
    for box in result.proposals_uhr:
        x0, y0, x1, y1 = (np.asarray(box) * scale).astype(int)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (255, 128, 0), thickness)
    for barcode in result.barcodes:
        colour = (0, 200, 0) if barcode.text else (0, 140, 255)
        points = np.round(barcode.polygon * scale).astype(np.int32)
        cv2.polylines(canvas, [points], True, colour, thickness + 1)
        label = f"{barcode.format or '?'}: {barcode.text}" if barcode.text else f"undecoded {barcode.score:.2f}"
        anchor = (int(points[:, 0].min()), max(12, int(points[:, 1].min()) - 4))
        cv2.putText(canvas, label[:40], anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thickness, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(canvas, label[:40], anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thickness, colour, thickness, cv2.LINE_AA)
    return canvas
