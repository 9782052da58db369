"""Mask logits at SAM's input size -> logits over the original image (SAM's postprocess_masks)."""

from __future__ import annotations

import cv2
import numpy as np

from edgeperc.errors import InvalidInputError
from edgeperc.models.lisat_config import sam_resize_hw


def crop_and_resize_mask(mask_logits: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """(S, S) float32 logits over SAM's padded input -> (H, W) over the original image: crop the
    resized image's area (bottom/right is padding), bilinear resize with half-pixel centres (as
    torch's interpolate, align_corners=False). Only needed when the export's mask_size is (S, S)
    and the image is not; threshold the result at 0."""
    logits = np.asarray(mask_logits, np.float32)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise InvalidInputError(f"mask logits must be (S, S), got shape {logits.shape}")
    h, w = sam_resize_hw(tuple(original_hw), logits.shape[0])
    cropped = np.ascontiguousarray(logits[:h, :w])
    return cv2.resize(cropped, (int(original_hw[1]), int(original_hw[0])), interpolation=cv2.INTER_LINEAR)
