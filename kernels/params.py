"""Python-side argument normalisation shared by the references and the library bindings.

Frames become (H, W, C) uint8 views with positive row stride and packed pixels (a crop of a
bigger frame stays a view: the kernels take a row stride); anything else is copied once.
"""

from __future__ import annotations

import math

import numpy as np
from edgeperc.kernels.status import BadArgumentError, TooManyRoisError

from edgeperc.errors import InvalidInputError

SHAPES = {"disk": 0, "square": 1}


def as_frame(frame: np.ndarray) -> tuple[np.ndarray, bool]:
    """(H, W) or (H, W, C) uint8 → ((H, W, C) view, was_2d). C in 1, 3, 4."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise InvalidInputError(f"frame must be a uint8 numpy array, got {getattr(frame, 'dtype', type(frame))}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise InvalidInputError(f"frame must be (H, W) or (H, W, C) with C in 1, 3, 4, got shape {frame.shape}")
    if frame.size == 0:
        raise InvalidInputError(f"frame is empty: shape {frame.shape}")
    was_2d = frame.ndim == 2
    array = frame[:, :, None] if was_2d else frame
    c = array.shape[2]
    if array.strides[1] != c or (c > 1 and array.strides[2] != 1) or array.strides[0] < array.shape[1] * c:
        array = np.ascontiguousarray(array)
    return array, was_2d


def as_prob(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities → float32 view with packed rows (copied if it has to be)."""
    if not isinstance(prob, np.ndarray) or prob.ndim != 2 or prob.size == 0:
        raise InvalidInputError(f"probability map must be a non-empty (H, W) array, got {getattr(prob, 'shape', type(prob))}")
    if prob.dtype.kind not in "fbiu":
        raise InvalidInputError(f"probability map must be numeric, got {prob.dtype}")
    array = prob.astype(np.float32, copy=False)
    if array.strides[1] != 4 or array.strides[0] < array.shape[1] * 4:
        array = np.ascontiguousarray(array)
    return array


def check_out_hw(out_hw) -> tuple[int, int]:
    try:
        out_h, out_w = (int(v) for v in out_hw)
    except (TypeError, ValueError):
        raise InvalidInputError(f"out_hw must be (height, width), got {out_hw!r}") from None
    if out_h <= 0 or out_w <= 0:
        raise InvalidInputError(f"out_hw must be positive, got {(out_h, out_w)}")
    return out_h, out_w


def channel_params(channels: int, scale, mean, std) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scalars or per-channel sequences → float32 (C,) scale, mean and inv_std = 1 / std in float32."""
    out = []
    for name, value in (("scale", scale), ("mean", mean), ("std", std)):
        array = np.asarray(value, dtype=np.float32).reshape(-1)
        if array.size == 1:
            array = np.repeat(array, channels)
        if array.size != channels or not np.all(np.isfinite(array)):
            raise BadArgumentError(f"{name} must be finite, one value or one per channel ({channels}), got {value!r}")
        out.append(array)
    if np.any(out[2] == 0):
        raise BadArgumentError(f"std must be non-zero, got {std!r}")
    return out[0], out[1], np.float32(1) / out[2]


def as_matrices(matrices) -> np.ndarray:
    """(N, 3, 3) or (3, 3) or (N, 9) → (N, 3, 3) float32, finite."""
    array = np.asarray(matrices, dtype=np.float32)
    if array.ndim == 2 and array.shape == (3, 3):
        array = array[None]
    if array.ndim == 2 and array.shape[1] == 9:
        array = array.reshape(-1, 3, 3)
    if array.ndim != 3 or array.shape[1:] != (3, 3):
        raise InvalidInputError(f"matrices must be (N, 3, 3), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise BadArgumentError("matrices must be finite")
    return np.ascontiguousarray(array)


def check_roi_count(count: int, max_rois: int) -> int:
    if isinstance(max_rois, bool) or int(max_rois) <= 0 or int(max_rois) > 1 << 16:
        raise BadArgumentError(f"max_rois must be in 1..65536, got {max_rois!r}")
    if count > int(max_rois):
        raise TooManyRoisError(f"{count} RoIs exceed the configured maximum of {max_rois}")
    return int(max_rois)


def out_dtype_code(dtype) -> int:
    kind = np.dtype(dtype)
    if kind == np.float32:
        return 0
    if kind == np.float16:
        return 1
    raise BadArgumentError(f"dtype must be float32 or float16, got {kind}")


def check_mask_args(threshold, erode_px, shape) -> tuple[float, int, str]:
    if not math.isfinite(float(threshold)):
        raise BadArgumentError(f"threshold must be finite, got {threshold!r}")
    if isinstance(erode_px, bool) or not isinstance(erode_px, (int, np.integer)) or not 0 <= erode_px <= 255:
        raise BadArgumentError(f"erode_px must be an integer in 0..255, got {erode_px!r}")
    if shape not in SHAPES:
        raise BadArgumentError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    return float(threshold), int(erode_px), shape


def check_pad_cols(pad_cols) -> int:
    if isinstance(pad_cols, bool) or not isinstance(pad_cols, (int, np.integer)) or pad_cols < 0:
        raise BadArgumentError(f"pad_cols must be an integer >= 0, got {pad_cols!r}")
    return int(pad_cols)
