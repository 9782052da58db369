"""RPN anchors, box deltas and region proposals: the numpy half of the modified RPN.

Conventions: boxes are (x0, y0, x1, y1) float in low-res pixels, x1/y1 exclusive; anchors are
ordered (cell row, cell column, anchor) to match the network's (A, H, W) outputs flattened as
(H, W, A). Deltas follow Faster R-CNN: (dx, dy) scaled by anchor size, (dw, dh) in log space.
"""

from __future__ import annotations

import numpy as np
from edgeperc.runtime.pipelines.barcode.nms import nms_xyxy

from edgeperc.errors import InvalidInputError

MAX_LOG_SCALE = float(np.log(1000.0 / 16))


def make_anchors(grid_hw: tuple[int, int], stride_px: int, sizes_px: tuple[float, ...], ratios: tuple[float, ...]) -> np.ndarray:
    """(H * W * A, 4) float32 anchors centred on each stride cell; A = len(sizes) * len(ratios)."""
    shapes = np.array([(size * np.sqrt(r), size / np.sqrt(r)) for size in sizes_px for r in ratios], np.float32)
    ys, xs = np.meshgrid(np.arange(grid_hw[0]), np.arange(grid_hw[1]), indexing="ij")
    centres = (np.stack([xs, ys], -1).reshape(-1, 1, 2).astype(np.float32) + 0.5) * stride_px
    half = shapes[None] / 2
    return np.concatenate([centres - half, centres + half], -1).reshape(-1, 4)


def encode_deltas(anchors: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 4) anchors + (N, 4) target boxes -> (N, 4) deltas (inverse of ``decode_deltas``)."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2
    bw, bh = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3), np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    bx, by = boxes[:, 0] + bw / 2, boxes[:, 1] + bh / 2
    return np.stack([(bx - ax) / aw, (by - ay) / ah, np.log(bw / aw), np.log(bh / ah)], -1).astype(np.float32)


def decode_deltas(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """(N, 4) anchors + (N, 4) deltas -> (N, 4) boxes; scales are clamped so no box explodes."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2
    cx, cy = ax + deltas[:, 0] * aw, ay + deltas[:, 1] * ah
    w = aw * np.exp(np.minimum(deltas[:, 2], MAX_LOG_SCALE))
    h = ah * np.exp(np.minimum(deltas[:, 3], MAX_LOG_SCALE))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).astype(np.float32)


def flatten_outputs(objectness: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, H, W) + (4A, H, W) network outputs of one image -> (H*W*A,) scores, (H*W*A, 4) deltas."""
    if objectness.ndim != 3 or deltas.shape != (4 * objectness.shape[0], *objectness.shape[1:]):
        raise InvalidInputError(f"RPN outputs have shapes {objectness.shape} and {deltas.shape}; expected (A, H, W) and (4A, H, W)")
    anchors, height, width = objectness.shape
    scores = objectness.transpose(1, 2, 0).reshape(-1)
    flat = deltas.reshape(anchors, 4, height, width).transpose(2, 3, 0, 1).reshape(-1, 4)
    return scores, flat


def propose_regions(
    objectness: np.ndarray,
    deltas: np.ndarray,
    anchors: np.ndarray,
    image_hw: tuple[int, int],
    score_threshold: float = 0.5,
    nms_iou: float = 0.3,
    max_proposals: int = 64,
    grow_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One image's RPN outputs -> ((K, 4) boxes clipped to the image, (K,) scores), best first.

    ``grow_px`` widens each box on every side after decoding: at 1/16-1/64 scale a box that is a
    pixel short cuts off a code's end, and the crops that follow have room to spare."""
    scores, flat = flatten_outputs(objectness, deltas)
    if len(scores) != len(anchors):
        raise InvalidInputError(f"{len(scores)} scores for {len(anchors)} anchors: config and model disagree")
    keep = np.nonzero(scores >= score_threshold)[0]
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    boxes = decode_deltas(anchors[keep], flat[keep])
    boxes[:, :2] -= grow_px
    boxes[:, 2:] += grow_px
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, image_hw[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, image_hw[0])
    valid = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    boxes, kept_scores = boxes[valid], scores[keep][valid]
    order = nms_xyxy(boxes, kept_scores, nms_iou)[:max_proposals]
    return boxes[order], kept_scores[order].astype(np.float32)


def anchor_targets(anchors: np.ndarray, gt_boxes: np.ndarray, positive_iou: float = 0.5, negative_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Training labels: (N,) int8 in {1 positive, 0 negative, -1 ignore} and (N, 4) delta targets.

    Every ground-truth box also claims its best anchor, so small codes are never left unmatched.
    """
    from edgeperc.runtime.pipelines.barcode.nms import iou_matrix

    labels = np.zeros(len(anchors), np.int8)
    targets = np.zeros((len(anchors), 4), np.float32)
    if len(gt_boxes) == 0:
        return labels, targets
    iou = iou_matrix(anchors, gt_boxes)
    best_gt = iou.argmax(1)
    best_iou = iou.max(1)
    labels[(best_iou >= negative_iou) & (best_iou < positive_iou)] = -1
    labels[best_iou >= positive_iou] = 1
    best_anchor = iou.argmax(0)
    labels[best_anchor] = 1
    best_gt[best_anchor] = np.arange(len(gt_boxes))
    positive = labels == 1
    targets[positive] = encode_deltas(anchors[positive], gt_boxes[best_gt[positive]])
    return labels, targets
