"""Training/evaluation samples cut from generated scenes: 400x400 Y-Net crops with masks, and
256x256 low-res copies with boxes for the RPN. Deterministic per seed."""

from __future__ import annotations

import cv2
import numpy as np

from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene, low_res_copy, rasterise_mask


def ynet_crops(count: int, seed: int, crop_hw: tuple[int, int] = (400, 400), scene_px: int = 1536,
               empty_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """((count, H, W) uint8 crops, (count, H, W) uint8 masks): windows around barcodes at native
    resolution, as the pipeline cuts them from UHR frames, plus some barcode-free windows."""
    rng = np.random.default_rng(seed)
    height, width = crop_hw
    images = np.empty((count, height, width), np.uint8)
    masks = np.empty((count, height, width), np.uint8)
    made = 0
    while made < count:
        recipe = SceneRecipe(size_hw=(scene_px, scene_px), mean_count=float(rng.uniform(1, 5)), module_px=(1, 4),
                             blobs=(0, 4), blur_sigma_px=(0.0, 1.2), noise_sigma=(1.0, 10.0), lighting=0.3,
                             contrast=(0.45, 1.0), jpeg_quality=(50, 95))
        scene = generate_scene(rng, recipe)
        picks = list(scene.barcodes) if scene.barcodes else []
        for _ in range(max(1, len(picks))):
            if made == count:
                break
            if picks and rng.random() > empty_fraction:
                truth = picks.pop(int(rng.integers(len(picks))))
                cx, cy = truth.polygon.mean(0) + rng.uniform(-0.35, 0.35, 2) * np.array([width, height])
            else:
                cx, cy = rng.uniform(width / 2, scene_px - width / 2), rng.uniform(height / 2, scene_px - height / 2)
            x0 = int(np.clip(cx - width / 2, 0, scene_px - width))
            y0 = int(np.clip(cy - height / 2, 0, scene_px - height))
            window = (x0, y0, x0 + width, y0 + height)
            images[made] = scene.image[y0 : y0 + height, x0 : x0 + width]
            masks[made] = rasterise_mask(scene.barcodes, window)
            made += 1
    return images, masks


def rpn_samples(count: int, seed: int, lr_px: int = 256, scene_sizes_px: tuple[int, ...] = (2048, 4096, 8192)) -> tuple[np.ndarray, np.ndarray]:
    """((count, lr, lr) uint8 low-res copies, (count,) object array of (k, 4) float32 boxes in
    low-res pixels). Degradations are applied to the copy: at 1/32 scale UHR noise averages out."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, lr_px, lr_px), np.uint8)
    boxes = np.empty(count, dtype=object)
    for index in range(count):
        size = int(rng.choice(scene_sizes_px))
        recipe = SceneRecipe(size_hw=(size, size), mean_count=float(rng.uniform(0.5, 8)), module_px=(2, 6),
                             cluster_probability=0.4, blobs=(0, 8), contrast=(0.45, 1.0), degrade=False)
        scene = generate_scene(rng, recipe)
        lr = low_res_copy(scene.image, lr_px).astype(np.float32)
        lr = cv2.GaussianBlur(lr, (0, 0), rng.uniform(0.1, 0.8)) + rng.normal(0, rng.uniform(0.5, 4), lr.shape)
        images[index] = np.clip(lr, 0, 255).astype(np.uint8)
        scale = lr_px / size
        boxes[index] = np.array([t.box_xyxy for t in scene.barcodes], np.float32).reshape(-1, 4) * scale
    return images, boxes
