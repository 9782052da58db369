"""Box overlap: IoU, greedy non-maximum suppression, and merging detections from overlapping crops.

Boxes are x0, y0, x1, y1 with x1/y1 exclusive (see ``boxes.py``): area = (x1 − x0)·(y1 − y0).
"""

from __future__ import annotations

import math

import numpy as np
from edgeperc.runtime.pipelines.barcode.boxes import Detection
from edgeperc.runtime.pipelines.barcode.checks import check_finite

from edgeperc.errors import ConfigError, InvalidInputError


def check_boxes_xyxy(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """(N, 4) x0, y0, x1, y1 → float64 copy-free view; refuses other shapes, NaN/Inf, x1 < x0."""
    array = np.asarray(boxes)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InvalidInputError(f"{name} must be (N, 4) x0, y0, x1, y1, got shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise InvalidInputError(f"{name} must be numeric, got dtype {array.dtype}")
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name} contain NaN/Inf")
    if np.any(array[:, 2] < array[:, 0]) or np.any(array[:, 3] < array[:, 1]):
        raise InvalidInputError(f"{name} must have x1 >= x0 and y1 >= y0")
    return array


def _check_ratio(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
    return value


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return width * height


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) boxes → (N, M) float64 intersection over union; 0 where the union is empty."""
    a = check_boxes_xyxy(a, "a")
    b = check_boxes_xyxy(b, "b")
    inter = _intersection(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms_xyxy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(N, 4) boxes, (N,) scores → (K,) int64 indices kept, highest score first.

    Greedy: take the best remaining box, drop every other box whose IoU with it is strictly
    greater than ``iou_threshold``, repeat. Equal scores keep input order (stable sort).
    """
    boxes = check_boxes_xyxy(boxes)
    scores = np.asarray(scores)
    if scores.shape != (boxes.shape[0],):
        raise InvalidInputError(f"scores must be ({boxes.shape[0]},), got shape {scores.shape}")
    scores = check_finite(scores, "scores")
    iou_threshold = _check_ratio("iou_threshold", iou_threshold)

    order = np.argsort(-scores, kind="stable")
    areas = _areas(boxes)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter = _intersection(boxes[best:best + 1], boxes[rest])[0]
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def merge_duplicates(dets: list[Detection], iou_threshold: float = 0.5,
                     containment_ratio: float = 0.8) -> list[Detection]:
    """Detections from overlapping crops (already in full-image coordinates) → one per barcode.

    Two detections are duplicates when at least ``containment_ratio`` of one box's area lies
    inside the other — the containing box is kept whatever the scores, because the contained one
    is the fragment a crop edge cut off (or a part of the same barcode) — or else when their IoU
    exceeds ``iou_threshold`` — the higher score is kept. Boxes contained in each other (nearly
    equal) keep the higher score. Output sorted by score, highest first; each kept detection keeps
    its own score.
    """
    iou_threshold = _check_ratio("iou_threshold", iou_threshold)
    containment_ratio = _check_ratio("containment_ratio", containment_ratio)
    if not dets:
        return []
    boxes = check_boxes_xyxy(np.array([d.box_xyxy for d in dets], dtype=np.float64))
    scores = np.array([d.score for d in dets], dtype=np.float64)
    if not np.isfinite(scores).all():
        raise InvalidInputError("detection scores contain NaN/Inf")
    order = np.argsort(-scores, kind="stable")
    inter = _intersection(boxes, boxes)
    areas = _areas(boxes)
    union = areas[:, None] + areas[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    # inside[i, j]: share of box i's area that lies inside box j (an empty box counts as inside).
    inside = np.divide(inter, areas[:, None], out=np.ones_like(inter), where=areas[:, None] > 0)

    kept: list[int] = []
    for i in (int(k) for k in order):
        duplicate = any(
            inside[i, k] >= containment_ratio
            or (iou[i, k] > iou_threshold and inside[k, i] < containment_ratio)
            for k in kept
        )
        if duplicate:
            continue
        # i scores below every kept box but contains some of them (fragments): it replaces them.
        kept = [k for k in kept if inside[k, i] < containment_ratio]
        kept.append(i)
    kept.sort(key=lambda k: (-scores[k], k))
    return [dets[k] for k in kept]
