"""Proposals on the low-res copy → crop windows of the full-resolution (UHR) frame → crop pixels.

Boxes and windows are x0, y0, x1, y1 with x1/y1 exclusive (see ``boxes.py``). Low-res proposal
boxes are continuous pixel-edge coordinates of the low-res image: edge x of the low-res frame is
edge ``x · W_uhr / W_lr`` of the UHR frame, which is exactly how cv2.resize aligns the two (pixel
areas, half-pixel centres), so the remap is a pure scale, per axis.
"""

from __future__ import annotations

import math

import numpy as np
from edgeperc.runtime.pipelines.barcode.checks import check_gray_image
from edgeperc.runtime.pipelines.barcode.nms import check_boxes_xyxy

from edgeperc.errors import ConfigError, InvalidInputError


def _check_hw(name: str, hw: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in hw)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be (height, width), got {hw!r}") from exc
    if height <= 0 or width <= 0 or (height, width) != tuple(float(v) for v in hw):
        raise InvalidInputError(f"{name} must be two positive integers (height, width), got {hw!r}")
    return height, width


def _check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def remap_boxes(boxes_lr: np.ndarray, lr_hw: tuple[int, int], uhr_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes in the low-res frame (e.g. 256×256) → (N, 4) float64 boxes in the UHR frame.

    x ← x · W_uhr / W_lr, y ← y · H_uhr / H_lr (the UHR image is resized non-uniformly to the
    low-res size), then clipped to [0, W_uhr] × [0, H_uhr].
    """
    boxes = check_boxes_xyxy(boxes_lr, "boxes_lr")
    lr_h, lr_w = _check_hw("lr_hw", lr_hw)
    uhr_h, uhr_w = _check_hw("uhr_hw", uhr_hw)
    scale = np.array([uhr_w / lr_w, uhr_h / lr_h, uhr_w / lr_w, uhr_h / lr_h])
    out = boxes * scale
    np.clip(out[:, 0::2], 0.0, float(uhr_w), out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, float(uhr_h), out=out[:, 1::2])
    return out


def _axis_starts(start: int, stop: int, length: int, crop_px: int, context_px: int,
                 overlap_px: int) -> list[int]:
    """Window starts along one axis so that [start, stop) is covered by windows of crop_px."""
    if length <= crop_px:
        return [0]  # the window overhangs the image; extract_crops pads it
    if stop - start <= crop_px:
        # Centre the window on the proposal, then slide it back inside the image.
        first = start - (crop_px - (stop - start)) // 2
        return [min(max(first, 0), length - crop_px)]
    # Larger than a crop: tile the proposal plus its context with evenly spaced windows that
    # overlap by at least overlap_px, so a barcode no longer than the overlap cut by one window
    # is whole in its neighbour.
    lo, hi = max(start - context_px, 0), min(stop + context_px, length)
    count = max(2, math.ceil((hi - lo - overlap_px) / (crop_px - overlap_px)))
    step = (hi - lo - crop_px) / (count - 1)
    starts = [lo + math.floor(k * step) for k in range(count - 1)] + [hi - crop_px]
    return sorted({min(max(s, 0), length - crop_px) for s in starts})


def plan_crops(boxes_uhr: np.ndarray, uhr_hw: tuple[int, int], crop_px: int = 400,
               context_px: int = 16, overlap_px: int | None = None) -> np.ndarray:
    """(N, 4) proposals in UHR pixels → (M, 4) int64 crop windows x0, y0, x1, y1 (x1 exclusive).

    Every window is exactly crop_px × crop_px. Along an axis where the image is at least crop_px
    long, windows lie inside the image; where it is shorter the window is [0, crop_px) and
    ``extract_crops`` pads the overhang (bottom/right only, so crop → image is a pure offset).
    A proposal no larger than a window along an axis gets one window centred on it along that
    axis (slid back inside the image); a larger one is tiled over the proposal ± ``context_px``
    with windows overlapping by at least ``overlap_px`` (default max(context_px, crop_px // 4)).
    Each proposal no larger than a window lies wholly inside at least one window; a larger one is
    covered by the union of its tiles. Proposals are taken largest first and grouped while the
    group's bounding box plus context_px on each side still fits in one window (nearby barcodes
    share a crop); a window is skipped when an earlier window already contains the part of its
    group ± context_px it was meant for. Proposals are clipped to the image first; empty ones
    are ignored.
    """
    boxes = check_boxes_xyxy(boxes_uhr, "boxes_uhr")
    height, width = _check_hw("uhr_hw", uhr_hw)
    crop_px = _check_positive_int("crop_px", crop_px)
    context_px = _check_positive_int("context_px", context_px, minimum=0)
    if overlap_px is None:
        overlap_px = max(context_px, crop_px // 4)
    overlap_px = _check_positive_int("overlap_px", overlap_px, minimum=0)
    if overlap_px >= crop_px or context_px >= crop_px:
        raise ConfigError(f"overlap_px ({overlap_px}) and context_px ({context_px}) must be < crop_px ({crop_px})")

    # Integer pixel range covering each (possibly fractional) proposal, clipped to the image.
    pixel_boxes = np.stack([
        np.clip(np.floor(boxes[:, 0]), 0, width), np.clip(np.floor(boxes[:, 1]), 0, height),
        np.clip(np.ceil(boxes[:, 2]), 0, width), np.clip(np.ceil(boxes[:, 3]), 0, height),
    ], axis=1).astype(np.int64) if boxes.size else np.zeros((0, 4), np.int64)
    areas = (pixel_boxes[:, 2] - pixel_boxes[:, 0]) * (pixel_boxes[:, 3] - pixel_boxes[:, 1])

    # Group proposals whose union, with its context, still fits in one window: nearby barcodes
    # then share a crop instead of each getting its own overlapping one.
    groups: list[list[int]] = []
    fit = crop_px - 2 * context_px
    for index in np.argsort(-areas, kind="stable"):
        x0, y0, x1, y1 = (int(v) for v in pixel_boxes[index])
        if x1 <= x0 or y1 <= y0:
            continue
        for group in groups:
            ux0, uy0 = min(group[0], x0), min(group[1], y0)
            ux1, uy1 = max(group[2], x1), max(group[3], y1)
            if ux1 - ux0 <= fit and uy1 - uy0 <= fit:
                group[:] = [ux0, uy0, ux1, uy1]
                break
        else:
            groups.append([x0, y0, x1, y1])

    windows: list[tuple[int, int, int, int]] = []
    for x0, y0, x1, y1 in groups:
        for wy in _axis_starts(y0, y1, height, crop_px, context_px, overlap_px):
            for wx in _axis_starts(x0, x1, width, crop_px, context_px, overlap_px):
                window = (wx, wy, wx + crop_px, wy + crop_px)
                # The part of the proposal (with its context) this window exists for.
                need = (max(x0 - context_px, wx, 0), max(y0 - context_px, wy, 0),
                        min(x1 + context_px, window[2], width), min(y1 + context_px, window[3], height))
                if need[2] <= need[0] or need[3] <= need[1]:
                    continue
                if any(w[0] <= need[0] and w[1] <= need[1] and w[2] >= need[2] and w[3] >= need[3]
                       for w in windows):
                    continue
                windows.append(window)
    return np.asarray(windows, dtype=np.int64).reshape(-1, 4)


def extract_crops(image: np.ndarray, windows: np.ndarray, pad_value: int = 0,
                  in_max: int | None = None) -> np.ndarray:
    """(H, W) uint8 or uint16 image, (M, 4) int windows of one size C×C → (M, C, C) uint8 crops.

    Window parts outside the image are filled with ``pad_value`` (constant, not replicated:
    replicating an edge row draws stripes that look like bars). uint16 pixels are scaled by
    255 / ``in_max`` (default 65535; pass the real white level, e.g. 4095 for 12-bit data, or the
    max of the low-res copy) and clipped. Only the crops are converted, never the whole frame.
    No windows → a (0, 0, 0) array.
    """
    array = check_gray_image(image)
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer)) or not 0 <= pad_value <= 255:
        raise ConfigError(f"pad_value must be an integer in [0, 255], got {pad_value!r}")
    if array.dtype == np.uint16:
        in_max = 65535 if in_max is None else _check_positive_int("in_max", in_max)
        if in_max > 65535:
            raise ConfigError(f"in_max must be <= 65535, got {in_max}")
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] != 4 or windows.dtype.kind not in "iu":
        raise InvalidInputError(f"windows must be (M, 4) integers, got shape {windows.shape} dtype {windows.dtype}")
    height, width = array.shape
    if windows.shape[0] == 0:
        return np.zeros((0, 0, 0), np.uint8)
    sizes_w = windows[:, 2] - windows[:, 0]
    sizes_h = windows[:, 3] - windows[:, 1]
    crop_px = int(sizes_w[0])
    if crop_px <= 0 or np.any(sizes_w != crop_px) or np.any(sizes_h != crop_px):
        raise InvalidInputError("windows must all be the same positive square size")

    crops = np.full((windows.shape[0], crop_px, crop_px), pad_value, np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(windows.tolist()):
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        part = array[sy0:sy1, sx0:sx1]
        if array.dtype == np.uint16:
            part = np.clip(part.astype(np.float32) * (255.0 / in_max) + 0.5, 0, 255).astype(np.uint8)
        crops[k, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = part
    return crops


def plan_lr_tiles(uhr_hw: tuple[int, int], tile_px: int, overlap_px: int) -> np.ndarray:
    """(T, 4) int64 regions [x0, y0, x1, y1) that the RPN sees, each resized to its low-res input.

    A frame no longer than ``tile_px`` on either side is one region (the dissertation's single
    256 px copy). Larger frames are cut into evenly spaced tiles of at most ``tile_px`` that overlap
    by at least ``overlap_px``, so the low-res scale never drops below 256 / tile_px: at 1/64 (a
    single copy of a 16k frame) a 2 px module shrinks to 1/32 px and the RPN loses small codes.
    """
    height, width = _check_hw("uhr_hw", uhr_hw)
    tile_px = _check_positive_int("tile_px", tile_px)
    overlap_px = _check_positive_int("overlap_px", overlap_px, minimum=0)
    if 2 * overlap_px > tile_px:  # beyond half a tile the grid explodes (tile - overlap is the step)
        raise InvalidInputError(f"overlap_px ({overlap_px}) must be at most half of tile_px ({tile_px})")

    def spans(length: int) -> list[tuple[int, int]]:
        if length <= tile_px:
            return [(0, length)]
        count = math.ceil((length - overlap_px) / (tile_px - overlap_px))
        side = min(length, math.ceil((length + (count - 1) * overlap_px) / count))
        starts = [round(k * (length - side) / (count - 1)) for k in range(count)]
        return [(s, s + side) for s in starts]

    return np.array([[x0, y0, x1, y1] for y0, y1 in spans(height) for x0, x1 in spans(width)], np.int64)
