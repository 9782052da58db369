"""numpy in, numpy out over one kernel library (host or CUDA host-pointer entry points).

Arguments are normalised by edgeperc.kernels.params (same as the references); buffers are passed
with their byte sizes, so the C side can refuse anything that would read or write past them.
"""

from __future__ import annotations

import ctypes

import numpy as np
from edgeperc.kernels.params import (
    SHAPES,
    as_frame,
    as_matrices,
    as_prob,
    channel_params,
    check_mask_args,
    check_out_hw,
    check_pad_cols,
    check_roi_count,
    out_dtype_code,
)
from edgeperc.kernels.reference import MaskComponents
from edgeperc.kernels.status import raise_for_status

from edgeperc.errors import InvalidInputError


def _frame_args(array: np.ndarray) -> list:
    h, w, c = array.shape
    stride = array.strides[0]
    return [array.ctypes.data, (h - 1) * stride + w * c, h, w, stride, c]


def _ptr(array: np.ndarray | None) -> int | None:
    return None if array is None else array.ctypes.data


class KernelLibrary:
    """The four kernels of one loaded library; `prefix`/`suffix` pick its entry points."""

    def __init__(self, lib: ctypes.CDLL, prefix: str, suffix: str, name: str):
        self._lib, self._prefix, self._suffix, self.name = lib, prefix, suffix, name

    def _call(self, base: str, args: list, detail: str) -> None:
        status = getattr(self._lib, f"{self._prefix}{base}{self._suffix}")(*args)
        raise_for_status(status, f"{self.name} {base}", detail)

    def area_downsample(self, frame: np.ndarray, out_hw: tuple[int, int] = (256, 256)) -> np.ndarray:
        """(H, W[, C]) uint8 → (out_h, out_w[, C]) uint8, OpenCV INTER_AREA (out ≤ in)."""
        array, was_2d = as_frame(frame)
        out_h, out_w = check_out_hw(out_hw)
        out = np.empty((out_h, out_w, array.shape[2]), np.uint8)
        self._call("area_downsample_u8", _frame_args(array) + [out_h, out_w, _ptr(out), out.nbytes],
                   f"{array.shape[:2]} -> {(out_h, out_w)}; area is a downsample: out must be <= in")
        return out[..., 0] if was_2d else out

    def roi_warp_normalise(self, frame: np.ndarray, matrices: np.ndarray, out_hw: tuple[int, int] = (400, 400),
                           scale=1 / 255, mean=0.0, std=1.0, pad: float = 0.0, dtype=np.float32,
                           max_rois: int = 64) -> np.ndarray:
        """Frame + (N, 3, 3) output→source matrices → (N, C, out_h, out_w) float32/float16."""
        array, _ = as_frame(frame)
        out_h, out_w = check_out_hw(out_hw)
        m = as_matrices(matrices)
        max_rois = check_roi_count(len(m), max_rois)
        code = out_dtype_code(dtype)
        s, mu, _ = channel_params(array.shape[2], scale, mean, std)
        sd = np.ascontiguousarray(np.broadcast_to(np.asarray(std, np.float32).reshape(-1), s.shape))
        out = np.empty((len(m), array.shape[2], out_h, out_w), np.float16 if code else np.float32)
        self._call("roi_warp_normalise", _frame_args(array) + [
            _ptr(m), len(m), max_rois, out_h, out_w, _ptr(s), _ptr(mu), _ptr(sd), float(pad), code,
            _ptr(out) if out.size else None, out.nbytes], f"{len(m)} RoIs, max {max_rois}")
        return out

    def mask_components(self, prob: np.ndarray, threshold: float = 0.5, erode_px: int = 2,
                        shape: str = "disk") -> MaskComponents:
        """(H, W) probabilities → MaskComponents (boxes in raster order of first pixels)."""
        array = as_prob(prob)
        threshold, erode_px, shape = check_mask_args(threshold, erode_px, shape)
        h, w = array.shape
        if h * w >= 2**31 - 1:
            raise InvalidInputError(f"mask of {h}x{w} pixels is too large for int32 labels")
        eroded, labels = np.empty((h, w), np.uint8), np.empty((h, w), np.int32)
        capacity, count = 1024, ctypes.c_int32(0)
        while True:  # grow the box buffer when a mask has more components than fit
            boxes = np.empty((capacity, 5), np.int32)
            self._call("mask_components", [
                array.ctypes.data, (h - 1) * (array.strides[0] // 4) + w, h, w, array.strides[0] // 4,
                float(threshold), erode_px, SHAPES[shape], capacity, _ptr(boxes), ctypes.addressof(count),
                _ptr(eroded), _ptr(labels), h * w], f"{h}x{w} mask")
            if count.value <= capacity:
                break
            capacity = count.value
        boxes = boxes[: count.value]
        return MaskComponents(np.ascontiguousarray(boxes[:, :4]), np.ascontiguousarray(boxes[:, 4]), labels, eroded)

    def panorama_input(self, frame: np.ndarray, out_hw: tuple[int, int] = (512, 1024), pad_cols: int = 0,
                       scale=1 / 255, mean=0.0, std=1.0) -> np.ndarray:
        """(H, W[, C]) uint8 → (C, out_h, out_w + 2·pad_cols) float32, resized, normalised, wrapped."""
        array, _ = as_frame(frame)
        out_h, out_w = check_out_hw(out_hw)
        pad_cols = check_pad_cols(pad_cols)
        s, mu, _ = channel_params(array.shape[2], scale, mean, std)
        sd = np.ascontiguousarray(np.broadcast_to(np.asarray(std, np.float32).reshape(-1), s.shape))
        out = np.empty((array.shape[2], out_h, out_w + 2 * pad_cols), np.float32)
        self._call("panorama_input", _frame_args(array) + [out_h, out_w, pad_cols, _ptr(s), _ptr(mu), _ptr(sd),
                                                             _ptr(out), out.nbytes], f"pad_cols {pad_cols}")
        return out
