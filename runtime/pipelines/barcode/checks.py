"""Input checks shared by the barcode stages: one message per kind of bad input."""

from __future__ import annotations

import numpy as np

from edgeperc.errors import InvalidInputError


def check_2d(array: np.ndarray, name: str, what: str = "(H, W)") -> np.ndarray:
    """A non-empty 2-D array."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise InvalidInputError(f"{name} must be {what}, got shape {array.shape}")
    if array.size == 0:
        raise InvalidInputError(f"{name} is empty, shape {array.shape}")
    return array


def check_gray_image(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 or uint16, non-empty."""
    array = check_2d(image, "image", "(H, W) grayscale")
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
