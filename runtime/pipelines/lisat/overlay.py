"""A picture of a LISAt answer: the mask tinted over the image, its outline, the query and answer
as a caption - what someone checks by eye."""

from __future__ import annotations

import cv2
import numpy as np

from edgeperc.errors import InvalidInputError

TINT_RGB = (0, 230, 255)  # cyan: the scenes have red, brown, green and blue objects, no cyan ones


def overlay_mask(image: np.ndarray, mask: np.ndarray | None, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 RGB + (H, W) bool (None: no mask) -> (H, W, 3) uint8 RGB: masked pixels
    blended ``alpha`` toward TINT_RGB, the mask's outline drawn at full tint; the rest unchanged."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"overlay needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    out = image.copy()
    if mask is None:
        return out
    if mask.shape != image.shape[:2]:
        raise InvalidInputError(f"mask {mask.shape} does not match the image {image.shape[:2]}")
    m = mask.astype(bool)
    tint = np.array(TINT_RGB, np.float32)
    out[m] = np.round((1.0 - alpha) * image[m].astype(np.float32) + alpha * tint).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, TINT_RGB, 1)
    return out


def captioned(picture: np.ndarray, lines: list[str], scale: int = 2) -> np.ndarray:
    """``picture`` enlarged ``scale`` x (nearest: small objects stay visible) above a white band with
    ``lines`` of text."""
    big = cv2.resize(picture, (picture.shape[1] * scale, picture.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    band = np.full((18 * len(lines) + 8, big.shape[1], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (6, 18 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([big, band], axis=0)
