"""Episode frames → animated GIF with Pillow (no video codec dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from edgeperc.errors import InvalidInputError


def write_gif(
    frames: Sequence[np.ndarray] | np.ndarray,
    path: Path | str,
    fps: float = 10.0,
    scale: int = 1,
    captions: Sequence[Sequence[str]] | None = None,
) -> Path:
    """(T, H, W, 3) uint8 frames → looping GIF at ``fps``; ``scale`` enlarges by pixel repetition;
    ``captions``: per frame, lines of text drawn on a dark band at the top (after scaling)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise InvalidInputError(f"frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    if scale < 1 or fps <= 0:
        raise InvalidInputError(f"scale must be >= 1 and fps > 0, got scale={scale}, fps={fps}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if captions is not None and len(captions) != len(frames):
        raise InvalidInputError(f"captions: one per frame needed, got {len(captions)} for {len(frames)} frames")
    images = [Image.fromarray(f) for f in frames]
    if captions is not None:
        for image, lines in zip(images, captions):
            _caption(image, lines)
    # GIF stores delays in 10 ms units; round so 10 fps stays exactly 100 ms.
    duration_ms = round(100.0 / fps) * 10
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False)
    return path


def _caption(image: Image.Image, lines: Sequence[str]) -> None:
    """Draw ``lines`` (Pillow's default bitmap font) on a dark band across the top, in place."""
    if not lines:
        return
    draw = ImageDraw.Draw(image)
    height = 4 + 12 * len(lines)
    draw.rectangle((0, 0, image.width, height), fill=(20, 20, 24))
    for i, line in enumerate(lines):
        draw.text((4, 2 + 12 * i), line, fill=(235, 235, 235))
