"""Image preprocessing of LISAt's two encoders, torch-free: shared by training and the runtime so
both feed the graphs the same pixels."""

from __future__ import annotations

import numpy as np


def preprocess_clip(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, side, side) float32, CLIP-normalised (a square image: resize only)."""
    import cv2

    from edgeperc.models.lisat_config import clip_normalisation
    from edgeperc.preprocess import normalise_images

    resized = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return normalise_images(resized[None], clip_normalisation())[0]


def preprocess_sam(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, side, side) float32: SAM's ResizeLongestSide, normalisation, zero padding."""
    import cv2

    from edgeperc.models.lisat_config import sam_normalisation, sam_resize_hw
    from edgeperc.preprocess import normalise_images

    h, w = sam_resize_hw(image.shape[:2], side)
    if (h, w) == (side, side) == tuple(image.shape[:2]):
        return normalise_images(image[None], sam_normalisation())[0]  # already SAM's size: no resize, no pad
    interpolation = cv2.INTER_AREA if h < image.shape[0] else cv2.INTER_LINEAR
    resized = cv2.resize(image, (w, h), interpolation=interpolation)
    out = np.zeros((3, side, side), np.float32)
    out[:, :h, :w] = normalise_images(resized[None], sam_normalisation())[0]
    return out
