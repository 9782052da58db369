"""Panorama -> depth (m) + sigma (m) + per-sector nearest obstacles. Composes the panorama input
kernel (CUDA when a GPU answers, OpenCV otherwise, chosen once), one backend, and pure
post-processing; nothing else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from edgeperc.kernels import BackendChoice, panorama_input, select_backend
from edgeperc.runtime.backends.base import Backend
from edgeperc.runtime.pipelines.depth.sectors import sector_summary
from pydantic import BaseModel, ConfigDict, Field

from edgeperc.errors import InvalidInputError

LOG_VAR_CLIP = (-20.0, 20.0)  # sigma from 4.5e-5 to 2.2e4 m: beyond is a broken model, not a sensor


class DepthConfig(BaseModel):
    """Pipeline knobs, validated at the edge."""

    model_config = ConfigDict(extra="forbid")

    resize_any_aspect: bool = Field(False, description="accept images that are not 2:1 and stretch them")
    aspect_tolerance: float = Field(0.02, ge=0, le=0.5)
    sectors: int = Field(16, ge=1, le=360)
    band_deg: tuple[float, float] = (-30.0, 30.0)
    output_full_resolution: bool = Field(True, description="depth/sigma at the input size (else the model's)")


@dataclass
class DepthResult:
    depth_m: np.ndarray  # (H, W) float32
    sigma_m: np.ndarray  # (H, W) float32, aleatoric standard deviation
    latency_ms: dict[str, float]
    sectors: list[dict]
    kernels: dict[str, str] = field(default_factory=dict)


def check_panorama(rgb: np.ndarray, config: DepthConfig) -> np.ndarray:
    """(H, W, 3) uint8, 2:1 within tolerance unless the config allows any aspect."""
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InvalidInputError(f"panorama must be (H, W, 3) RGB, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise InvalidInputError(f"panorama must be uint8, got {array.dtype}")
    height, width = array.shape[:2]
    aspect = width / height
    if abs(aspect - 2.0) > 2.0 * config.aspect_tolerance and not config.resize_any_aspect:
        raise InvalidInputError(f"{width}x{height} is not equirectangular (width:height {aspect:.3f}, expected 2:1); "
                                "pass --resize to stretch it anyway")
    return array


class DepthEstimator:
    """Holds the backend and the config; ``estimate(rgb)`` runs the whole pipeline."""

    def __init__(self, backend: Backend, config: DepthConfig | None = None, kernels: BackendChoice | None = None) -> None:
        self.backend = backend
        self.config = config or DepthConfig()
        self.kernels = kernels or select_backend()
        manifest = backend.manifest
        self.norm = manifest.normalisation
        self.input_name = backend.inputs[0].name
        self.model_hw = tuple(int(d) for d in backend.inputs[0].shape[2:4])
        outputs = {o.name for o in backend.outputs}
        if not {"depth", "log_var"} <= outputs:
            raise InvalidInputError(f"model outputs {sorted(outputs)}: a depth model needs 'depth' and 'log_var'")

    def estimate(self, rgb: np.ndarray) -> DepthResult:
        cfg, latency = self.config, {}
        start = time.perf_counter()
        frame = check_panorama(rgb, cfg)
        x = panorama_input(frame, self.model_hw, 0, self.norm.scale, self.norm.mean, self.norm.std, backend=self.kernels.name)
        latency["preprocess"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        out = self.backend.infer({self.input_name: x[None]})
        latency["network"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        depth = out["depth"][0, 0].astype(np.float32)
        sigma = np.exp(0.5 * np.clip(out["log_var"][0, 0], *LOG_VAR_CLIP)).astype(np.float32)
        if not (np.isfinite(depth).all() and np.isfinite(sigma).all()):
            raise InvalidInputError("the model produced NaN/Inf depth or sigma (broken or mis-quantized model)")
        if cfg.output_full_resolution and depth.shape != frame.shape[:2]:
            size = (frame.shape[1], frame.shape[0])
            depth = cv2.resize(depth, size, interpolation=cv2.INTER_LINEAR)
            sigma = cv2.resize(sigma, size, interpolation=cv2.INTER_LINEAR)
        sectors = sector_summary(depth, sigma, cfg.sectors, cfg.band_deg)
        latency["postprocess"] = (time.perf_counter() - start) * 1e3
        return DepthResult(depth, sigma, latency, sectors, self.kernels.as_dict())
