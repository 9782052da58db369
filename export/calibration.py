"""Calibration and held-out sets: a folder of images, an .npz, or a family's own generator.

Every source becomes a list of feed dicts (batch 1 each) checked against the model's inputs;
folders are read with the manifest's normalisation so calibration sees what inference sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.manifest import Manifest, Normalisation
from edgeperc.preprocess import normalise_images

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"}


@dataclass
class SampleSet:
    """Feeds (batch 1 each), optional targets for a family metric, and where they came from."""

    feeds: list[dict[str, np.ndarray]]
    source: str
    targets: np.ndarray | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.feeds)

    def split(self, held_out_fraction: float) -> tuple["SampleSet", "SampleSet"]:
        """(calibration, held-out): the tail is held out and never used to calibrate."""
        if len(self) < 2:
            raise ConfigError(f"need at least 2 samples to hold some out, got {len(self)} from {self.source}")
        cut = max(1, min(len(self) - 1, int(round(len(self) * (1 - held_out_fraction)))))
        head_t = None if self.targets is None else self.targets[:cut]
        tail_t = None if self.targets is None else self.targets[cut:]
        return (SampleSet(self.feeds[:cut], self.source, head_t, f"{self.description} [0:{cut}]"),
                SampleSet(self.feeds[cut:], self.source, tail_t, f"{self.description} [{cut}:{len(self)}]"))


def _static_hw(manifest: Manifest) -> tuple[int, int, int]:
    spec = manifest.inputs[0]
    if len(spec.shape) != 4 or not all(isinstance(d, int) for d in spec.shape[1:]):
        raise ConfigError(f"input '{spec.name}' shape {spec.shape} is not (batch, C, H, W) with static C, H, W: calibrate from an .npz instead")
    return int(spec.shape[1]), int(spec.shape[2]), int(spec.shape[3])


def read_image(path: Path, channels: int) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB uint8; a file OpenCV cannot decode is an error naming it."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    data = np.fromfile(str(path), np.uint8)
    image = cv2.imdecode(data, flag) if data.size else None
    if image is None:
        raise InvalidInputError(f"cannot decode image {path} (corrupt, truncated or not an image)")
    return image if channels == 1 else image[..., ::-1]


def from_folder(folder: str | Path, manifest: Manifest, limit: int | None = None) -> SampleSet:
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"calibration folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    channels, height, width = _static_hw(manifest)
    norm = manifest.normalisation or Normalisation(mean=[0.0] * channels, std=[1.0] * channels, color="gray" if channels == 1 else "rgb")
    feeds = []
    for path in files[:limit]:
        image = cv2.resize(read_image(path, channels), (width, height), interpolation=cv2.INTER_AREA)
        feeds.append({manifest.inputs[0].name: normalise_images(image[None], norm)})
    return SampleSet(feeds, str(folder), description=f"{len(feeds)} images from {folder}")


def from_npz(path: str | Path, manifest: Manifest, limit: int | None = None) -> SampleSet:
    """Keys are input names (a lone array is accepted for a one-input model); axis 0 = samples."""
    path = Path(path)
    try:
        archive = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read calibration file {path}: {exc}") from exc
    names = [s.name for s in manifest.inputs]
    if len(names) == 1 and names[0] not in archive and len(archive) == 1:
        archive = {names[0]: next(iter(archive.values()))}
    missing = [n for n in names if n not in archive]
    if missing:
        raise InvalidInputError(f"calibration file {path} lacks arrays for input(s) {missing}; it has {sorted(archive)}")
    counts = {len(archive[n]) for n in names}
    if len(counts) != 1:
        raise InvalidInputError(f"calibration arrays in {path} have different sample counts {sorted(counts)}")
    total = counts.pop()
    feeds = []
    for index in range(min(total, limit or total)):
        feeds.append({n: np.ascontiguousarray(archive[n][index : index + 1]).astype(manifest.input(n).dtype, copy=False) for n in names})
    return SampleSet(feeds, str(path), description=f"{len(feeds)} samples from {path.name}")


def from_family(family_name: str, config_dict: dict[str, Any], count: int, seed: int) -> SampleSet:
    """The family's synthetic generator, with targets so the family metric can be computed."""
    from edgeperc.models.registry import get_family

    family = get_family(family_name)
    config = family.make_config(config_dict)
    pixels, targets = family.generate(config, count, seed)
    name = family.input_names[0]
    images = normalise_images(pixels, family.normalisation)
    feeds = [{name: images[i : i + 1]} for i in range(count)]
    return SampleSet(feeds, f"family:{family_name}", targets=targets, description=f"{count} {family_name} synthetic samples, seed {seed}")


def load_samples(source: str | None, manifest: Manifest, count: int, seed: int) -> SampleSet:
    """Resolve a --calibration value: folder, .npz, 'family' (or None for family models)."""
    if source in (None, "family"):
        if not manifest.family:
            raise ConfigError("this ONNX has no edgeperc family: pass --calibration FOLDER or FILE.npz")
        return from_family(manifest.family, manifest.family_config, count, seed)
    path = Path(source)
    if path.suffix == ".npz":
        if not path.is_file():
            raise ConfigError(f"calibration file not found: {path}")
        return from_npz(path, manifest, count)
    if path.is_dir():
        return from_folder(path, manifest, count)
    raise ConfigError(f"--calibration '{source}' is neither a folder of images, an .npz file, nor 'family'")
