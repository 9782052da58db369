"""Family metrics (numpy): what the accuracy-drop report compares between FP32 and quantized."""

from __future__ import annotations

import numpy as np


def mask_iou(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Mean per-image IoU of (B, 1, H, W) probabilities vs (B, H, W) {0,1} truth (empty∪empty = 1)."""
    pred = prob.reshape(len(prob), -1) >= threshold
    true = truth.reshape(len(truth), -1) > 0
    inter = (pred & true).sum(1)
    union = (pred | true).sum(1)
    return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))


def output_drift(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """How far ``other`` moved from ``reference``: max/mean abs error and cosine similarity."""
    ref = np.asarray(reference, np.float64).ravel()
    oth = np.asarray(other, np.float64).ravel()
    diff = np.abs(ref - oth)
    denom = np.linalg.norm(ref) * np.linalg.norm(oth)
    cosine = float(ref @ oth / denom) if denom > 0 else float(np.array_equal(ref, oth))
    return {"max_abs_error": float(diff.max(initial=0.0)), "mean_abs_error": float(diff.mean()), "cosine": cosine}


def top1_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """Share of rows whose argmax over the last axis agrees: (..., classes)."""
    return float(np.mean(np.argmax(reference, -1) == np.argmax(other, -1)))


def mask_agreement(reference: np.ndarray, other: np.ndarray, threshold: float = 0.5) -> float:
    """Share of pixels on the same side of ``threshold`` in both outputs."""
    return float(np.mean((reference >= threshold) == (other >= threshold)))


def box_recall(proposals: list[np.ndarray], truths: list[np.ndarray], min_covered: float = 0.9) -> float:
    """Share of truth boxes with >= ``min_covered`` of their area inside one proposal (the
    dissertation's RPN accuracy: truth boxes inside proposed regions / all truth boxes)."""
    found, total = 0, 0
    for boxes, gt in zip(proposals, truths):
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        total += len(gt)
        if len(gt) == 0 or len(boxes) == 0:
            continue
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ix0 = np.maximum(gt[:, None, 0], boxes[None, :, 0])
        iy0 = np.maximum(gt[:, None, 1], boxes[None, :, 1])
        ix1 = np.minimum(gt[:, None, 2], boxes[None, :, 2])
        iy1 = np.minimum(gt[:, None, 3], boxes[None, :, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        area = np.maximum((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]), 1e-9)
        found += int(((inter / area[:, None]).max(1) >= min_covered).sum())
    return 1.0 if total == 0 else found / total
