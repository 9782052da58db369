"""Input checks shared by the barcode stages: one message per kind of bad input."""

from __future__ import annotations

import numpy as np

from edgeperc.errors import InvalidInputError


def check_gray_image(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 or uint16, non-empty."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise InvalidInputError(f"image must be (H, W) grayscale, got shape {array.shape}")
    if array.size == 0:
        raise InvalidInputError(f"image is empty, shape {array.shape}")
    if array.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"image must be uint8 or uint16, got dtype {array.dtype}")
    return array


def check_finite(array: np.ndarray, name: str, kinds: str = "fiub", dtype: type = np.float64) -> np.ndarray:
    """Numeric (dtype kind in ``kinds``) and free of NaN/Inf, returned as ``dtype``."""
    array = np.asarray(array)
    if array.dtype.kind not in kinds:
        raise InvalidInputError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(dtype)
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name} contains NaN/Inf")
    return array
