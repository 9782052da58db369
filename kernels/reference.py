"""numpy/OpenCV references of the kernels, with the same signatures as the public functions.

Two kinds per kernel: ``name`` replicates the kernel's arithmetic in numpy (float32 op by op),
so the host and CUDA libraries must match it bit for bit; ``name_opencv`` is what the OpenCV
path of the pipelines runs, and what the kernels are checked against within 1 LSB where OpenCV
rounds differently (fixed-point bilinear, 1/32-pixel warp coordinates, uint8 intermediates).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import cv2
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

from edgeperc.errors import InvalidInputError

F32 = np.float32


@dataclass(frozen=True)
class MaskComponents:
    """Connected components of an eroded mask, in raster order of each one's first pixel.

    boxes: (N, 4) int32 x0, y0, x1, y1 (x1/y1 exclusive). areas: (N,) int32 pixel counts.
    labels: (H, W) int32, 0 background, k + 1 for boxes[k]. eroded: (H, W) uint8 0/1.
    """

    boxes: np.ndarray
    areas: np.ndarray
    labels: np.ndarray
    eroded: np.ndarray


# ---- area downsample --------------------------------------------------------------------------
def _area_scale(src: int, dst: int) -> float:
    return 1.0 / (dst / src)  # OpenCV's order of operations; the tables follow its bits


def _area_int_factor(src: int, dst: int) -> int:
    scale = _area_scale(src, dst)
    return round(scale) if abs(scale - round(scale)) < sys.float_info.epsilon else 0


def _area_spans(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output index: (dst, K) source indices and float32 weights (0 past the span's end)."""
    scale = _area_scale(src, dst)
    rows = []
    for d in range(dst):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, src - f1)
        s2 = min(math.floor(f2), src - 1)
        s1 = min(math.ceil(f1), s2)
        entries = []
        if s1 - f1 > 1e-3:
            entries.append((s1 - 1, F32((s1 - f1) / cell)))
        entries += [(s, F32(1.0 / cell)) for s in range(s1, s2)]
        if f2 - s2 > 1e-3:
            entries.append((s2, F32(min(min(f2 - s2, 1.0), cell) / cell)))
        rows.append(entries)
    k = max(len(e) for e in rows)
    index = np.zeros((dst, k), np.int64)
    weight = np.zeros((dst, k), F32)
    for d, entries in enumerate(rows):
        for j, (s, w) in enumerate(entries):
            index[d, j], weight[d, j] = s, w
    return index, weight


def area_downsample(frame: np.ndarray, out_hw: tuple[int, int] = (256, 256)) -> np.ndarray:
    """(H, W[, C]) uint8 → (out_h, out_w[, C]) uint8, INTER_AREA arithmetic of the kernel (out ≤ in)."""
    array, squeeze = as_frame(frame)
    out_h, out_w = check_out_hw(out_hw)
    h, w, _ = array.shape
    if out_h > h or out_w > w:
        raise InvalidInputError(f"area downsample needs out <= in, got {(h, w)} -> {(out_h, out_w)}")
    fx, fy = _area_int_factor(w, out_w), _area_int_factor(h, out_h)
    if fx and fy:
        blocks = array[: out_h * fy, : out_w * fx].reshape(out_h, fy, out_w, fx, -1).astype(np.int64)
        total = blocks.sum(axis=(1, 3))
        if fx == 2 and fy == 2:
            out = (total + 2) >> 2
        else:
            out = np.rint(total.astype(F32) * (F32(1) / F32(fx * fy)))
    else:
        xi, xw = _area_spans(w, out_w)
        yi, yw = _area_spans(h, out_h)
        source = array.astype(F32)
        buf = np.zeros((h, out_w, array.shape[2]), F32)
        for k in range(xi.shape[1]):  # x order, one float32 add at a time, as the kernel does
            buf = buf + source[:, xi[:, k]] * xw[None, :, k, None]
        out = np.zeros((out_h, out_w, array.shape[2]), F32)
        for j in range(yi.shape[1]):
            out = out + yw[:, j, None, None] * buf[yi[:, j]]
        out = np.rint(out)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


def area_downsample_opencv(frame: np.ndarray, out_hw: tuple[int, int] = (256, 256)) -> np.ndarray:
    """cv2.resize(..., INTER_AREA): the OpenCV path."""
    out_h, out_w = check_out_hw(out_hw)
    return cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA)


# ---- RoI crop-warp-normalise ------------------------------------------------------------------
def _gather(array: np.ndarray, xi: np.ndarray, yi: np.ndarray, pad: np.float32) -> np.ndarray:
    h, w, _ = array.shape
    inside = (xi >= 0) & (yi >= 0) & (xi < w) & (yi < h)
    values = array[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(F32)  # (..., C)
    return np.where(inside[..., None], values, pad)


def _warp_one(array: np.ndarray, m: np.ndarray, out_h: int, out_w: int, pad: np.float32) -> np.ndarray:
    """(out_h, out_w, C) float32 source values of one RoI, float32 op by op like ep_roi_warp_pixel."""
    h, w, _ = array.shape
    fy, fx = np.meshgrid(np.arange(out_h, dtype=F32), np.arange(out_w, dtype=F32), indexing="ij")
    with np.errstate(all="ignore"):
        den = m[6] * fx + m[7] * fy + m[8]
        sx = (m[0] * fx + m[1] * fy + m[2]) / den
        sy = (m[3] * fx + m[4] * fy + m[5]) / den
        ok = (np.abs(den) > F32(1e-12)) & (sx > F32(-2)) & (sy > F32(-2)) & (sx < F32(w) + F32(1)) & (sy < F32(h) + F32(1))
        sx, sy = np.where(ok, sx, F32(0)), np.where(ok, sy, F32(0))
    x0f, y0f = np.floor(sx), np.floor(sy)
    ax, ay = (sx - x0f)[..., None], (sy - y0f)[..., None]
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    p0, p1 = _gather(array, x0, y0, pad), _gather(array, x0 + 1, y0, pad)
    p2, p3 = _gather(array, x0, y0 + 1, pad), _gather(array, x0 + 1, y0 + 1, pad)
    one = F32(1)
    v = (one - ay) * ((one - ax) * p0 + ax * p1) + ay * ((one - ax) * p2 + ax * p3)
    return np.where(ok[..., None], v, pad)


def _roi_args(frame, matrices, out_hw, scale, mean, std, dtype, max_rois):
    """Checked arguments shared by the reference and the OpenCV path (same errors as the library)."""
    array, _ = as_frame(frame)
    out_h, out_w = check_out_hw(out_hw)
    m = as_matrices(matrices)
    check_roi_count(len(m), max_rois)
    return array, out_h, out_w, m, out_dtype_code(dtype), channel_params(array.shape[2], scale, mean, std)


def roi_warp_normalise(frame: np.ndarray, matrices: np.ndarray, out_hw: tuple[int, int] = (400, 400),
                       scale=1 / 255, mean=0.0, std=1.0, pad: float = 0.0, dtype=np.float32,
                       max_rois: int = 64) -> np.ndarray:
    """Frame + (N, 3, 3) output→source matrices → (N, C, out_h, out_w) float32/float16, the kernel's float math."""
    array, out_h, out_w, m, code, (s, mu, inv) = _roi_args(frame, matrices, out_hw, scale, mean, std, dtype, max_rois)
    out = np.empty((len(m), array.shape[2], out_h, out_w), F32)
    for n, mat in enumerate(m):
        v = _warp_one(array, mat.reshape(9), out_h, out_w, F32(pad))
        out[n] = ((v * s - mu) * inv).transpose(2, 0, 1)
    return out.astype(np.float16) if code == 1 else out


def roi_warp_normalise_opencv(frame: np.ndarray, matrices: np.ndarray, out_hw: tuple[int, int] = (400, 400),
                              scale=1 / 255, mean=0.0, std=1.0, pad: float = 0.0, dtype=np.float32,
                              max_rois: int = 64) -> np.ndarray:
    """cv2.warpPerspective (WARP_INVERSE_MAP, bilinear, constant border) per RoI, then normalise.

    OpenCV quantises source coordinates to 1/32 pixel and rounds to uint8 first: it differs
    from the kernel by up to ~gradient/32 + 0.5 LSB per pixel.
    """
    array, out_h, out_w, m, code, (s, mu, inv) = _roi_args(frame, matrices, out_hw, scale, mean, std, dtype, max_rois)
    value = float(np.clip(np.rint(pad), 0, 255))
    out = np.empty((len(m), array.shape[2], out_h, out_w), F32)
    for n, mat in enumerate(m):
        warped = cv2.warpPerspective(array, mat.astype(np.float64), (out_w, out_h),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=(value,) * 4)
        warped = warped.reshape(out_h, out_w, -1).astype(F32)
        out[n] = ((warped * s - mu) * inv).transpose(2, 0, 1)
    return out.astype(np.float16) if code == 1 else out


# ---- mask post-processing ---------------------------------------------------------------------
def _structuring(erode_px: int, shape: str) -> np.ndarray:
    kind = cv2.MORPH_ELLIPSE if SHAPES[shape] == 0 else cv2.MORPH_RECT
    return cv2.getStructuringElement(kind, (2 * erode_px + 1, 2 * erode_px + 1))


def _raster_order(labels: np.ndarray) -> np.ndarray:
    """cv2 labels (1..N) sorted by each component's first pixel in raster order, in O(H·W).

    A first pixel has no foreground W, NW, N or NE neighbour (that one would come earlier and
    be in the same component), so only such candidates need sorting, not every pixel.
    """
    fg = labels > 0
    seen = np.zeros_like(fg)
    seen[:, 1:] |= fg[:, :-1]
    seen[1:, 1:] |= fg[:-1, :-1]
    seen[1:, :] |= fg[:-1, :]
    seen[1:, :-1] |= fg[:-1, 1:]
    candidates = np.flatnonzero(fg & ~seen)
    present, first = np.unique(labels.ravel()[candidates], return_index=True)
    return present[np.argsort(first, kind="stable")]


def mask_components(prob: np.ndarray, threshold: float = 0.5, erode_px: int = 2,
                    shape: str = "disk") -> MaskComponents:
    """(H, W) float32 probabilities → MaskComponents: prob > threshold (float32), cv2.erode with a
    disk (MORPH_ELLIPSE) or square, cv2.connectedComponentsWithStats (8-connectivity), reordered
    by first pixel — what masks_to_boxes thresholds, erodes and separates."""
    array = as_prob(prob)
    threshold, erode_px, shape = check_mask_args(threshold, erode_px, shape)
    binary = (array > F32(threshold)).astype(np.uint8)
    eroded = cv2.erode(binary, _structuring(erode_px, shape)) if erode_px > 0 else binary
    count, labels, stats, _ = cv2.connectedComponentsWithStats(eroded, connectivity=8, ltype=cv2.CV_32S)
    order = _raster_order(labels)
    relabel = np.zeros(count, np.int32)
    relabel[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    x, y, w, h, area = (stats[order, k] for k in range(5))
    boxes = np.stack([x, y, x + w, y + h], axis=1).astype(np.int32).reshape(-1, 4)
    return MaskComponents(boxes, area.astype(np.int32), relabel[labels], eroded)


mask_components_opencv = mask_components  # the reference is OpenCV itself


# ---- panorama input ---------------------------------------------------------------------------
def _linear_coords(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = _area_scale(src, dst)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(F32)
    s = np.floor(f)
    f = f - s
    s = s.astype(np.int64)
    low, high = s < 0, s >= src - 1
    f = np.where(low | high, F32(0), f)
    s = np.where(low, 0, np.where(high, src - 1, s))
    return s, np.minimum(s + 1, src - 1), f


def _wrap(array: np.ndarray, pad_cols: int) -> np.ndarray:
    width = array.shape[-1]
    columns = (np.arange(width + 2 * pad_cols) - pad_cols) % width
    return array[..., columns]


def panorama_input(frame: np.ndarray, out_hw: tuple[int, int] = (512, 1024), pad_cols: int = 0,
                   scale=1 / 255, mean=0.0, std=1.0) -> np.ndarray:
    """(H, W[, C]) uint8 → (C, out_h, out_w + 2·pad_cols) float32: cv2 INTER_LINEAR geometry in float
    (the kernel's op order), normalise, longitude wrap (left pad = rightmost columns)."""
    array, _ = as_frame(frame)
    out_h, out_w = check_out_hw(out_hw)
    pad_cols = check_pad_cols(pad_cols)
    h, w, c = array.shape
    x0, x1, fx = _linear_coords(w, out_w)
    y0, y1, fy = _linear_coords(h, out_h)
    src = array.astype(F32)
    fx, fy, one = fx[None, :, None], fy[:, None, None], F32(1)
    r0, r1 = src[y0], src[y1]
    v = (one - fy) * ((one - fx) * r0[:, x0] + fx * r0[:, x1]) + fy * ((one - fx) * r1[:, x0] + fx * r1[:, x1])
    s, mu, inv = channel_params(c, scale, mean, std)
    return np.ascontiguousarray(_wrap(((v * s - mu) * inv).transpose(2, 0, 1), pad_cols))


def panorama_input_opencv(frame: np.ndarray, out_hw: tuple[int, int] = (512, 1024), pad_cols: int = 0,
                          scale=1 / 255, mean=0.0, std=1.0) -> np.ndarray:
    """cv2.resize(INTER_LINEAR) to uint8, normalise, np wrap: the OpenCV path (rounds to uint8)."""
    array, _ = as_frame(frame)
    out_h, out_w = check_out_hw(out_hw)
    pad_cols = check_pad_cols(pad_cols)
    resized = cv2.resize(array, (out_w, out_h), interpolation=cv2.INTER_LINEAR).reshape(out_h, out_w, -1)
    s, mu, inv = channel_params(array.shape[2], scale, mean, std)
    return np.ascontiguousarray(_wrap(((resized.astype(F32) * s - mu) * inv).transpose(2, 0, 1), pad_cols))
