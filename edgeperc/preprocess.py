"""Image -> model tensor, driven by the manifest's normalisation (never by constants in code)."""

from __future__ import annotations

import numpy as np

from edgeperc.errors import InvalidInputError
from edgeperc.manifest import Normalisation


def normalise_images(images: np.ndarray, norm: Normalisation) -> np.ndarray:
    """(B, H, W) or (B, H, W, C) uint8/float pixels -> (B, C, H, W) float32 model input.

    x = (pixel * scale - mean[c]) / std[c]; ``color='bgr'`` input is flipped to RGB order first
    only when the model wants rgb and the caller says the pixels are bgr (see ``to_rgb``).
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InvalidInputError(f"images must be (B, H, W) or (B, H, W, C), got shape {array.shape}")
    channels = array.shape[-1]
    if len(norm.mean) not in (1, channels) or len(norm.std) not in (1, channels):
        raise InvalidInputError(
            f"normalisation has {len(norm.mean)} mean / {len(norm.std)} std values for {channels}-channel images"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInputError("images contain NaN/Inf pixels")
    mean = np.asarray(norm.mean, np.float32)
    std = np.asarray(norm.std, np.float32)
    if np.any(std == 0):
        raise InvalidInputError("normalisation std contains 0")
    scaled = (array.astype(np.float32) * np.float32(norm.scale) - mean) / std
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def to_rgb(images_bgr: np.ndarray) -> np.ndarray:
    """(..., 3) BGR (OpenCV's order) -> RGB."""
    return np.ascontiguousarray(np.asarray(images_bgr)[..., ::-1])
