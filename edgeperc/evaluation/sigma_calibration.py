"""Post-hoc sigma calibration of a depth checkpoint: fit one scale on generated panoramas (a seed
of its own, neither training's nor evaluation's) and fold it into the log-variance head's bias.

Loss B.1 learns sigma's ranking well (AURG > 0) but its level drifts with training length and
data; one scalar moves every interval to the Gaussian coverage without touching depth or the
ranking. Folding 2 ln(s) into the 1x1 head's bias keeps the graph unchanged, so FP32, INT8 and
TensorRT builds of the calibrated checkpoint all carry it; the checkpoint metadata records it.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from edgeperc.errors import ModelFileError
from edgeperc.evaluation.depth_metrics import coverage, fit_sigma_scale

CALIBRATION_KEY = "edgeperc.sigma_calibration"
LOG_VAR_BIAS = "heads.log_var.bias"


def collect_residuals(estimator, recipe_name: str, count: int, seed: int,
                      progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred, truth, sigma) over the valid pixels of ``count`` generated panoramas."""
    from edgeperc.synth.panoramas import panorama_recipe, render_panorama

    recipe = panorama_recipe(recipe_name, estimator.model_hw)
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(count):
        pano = render_panorama(rng, recipe)
        result = estimator.estimate(pano.rgb)
        keep = pano.valid & np.isfinite(pano.depth) & (pano.depth > 0)
        parts.append((result.depth_m[keep], pano.depth[keep].astype(np.float32), result.sigma_m[keep]))
        if progress is not None:
            progress()
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def calibrate_depth_checkpoint(checkpoint: Path, out: Path, count: int = 48, seed: int = 77, recipe: str = "default",
                               progress: Callable[[], None] | None = None) -> dict:
    """Fit the sigma scale of ``checkpoint`` and write the calibrated checkpoint to ``out``."""
    import torch

    from edgeperc.export.onnx_export import export_family
    from edgeperc.models.checkpoints import checkpoint_config, read_state
    from edgeperc.runtime.backends import OnnxRuntimeBackend
    from edgeperc.runtime.pipelines.depth.pipeline import DepthEstimator

    state, metadata = read_state(checkpoint)
    family, _ = checkpoint_config(metadata)
    if family != "ynet-depth" or LOG_VAR_BIAS not in state:
        raise ModelFileError(f"{checkpoint} is not a ynet-depth checkpoint with a log-variance head (family {family!r})")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp, "model.onnx")
        export_family("ynet-depth", onnx_path, checkpoint=checkpoint)
        pred, truth, sigma = collect_residuals(DepthEstimator(OnnxRuntimeBackend(onnx_path)), recipe, count, seed, progress)
    scale = fit_sigma_scale(pred, truth, sigma)
    previous = json.loads(metadata.get(CALIBRATION_KEY, "{}"))
    record = {
        "scale": scale, "cumulative_scale": scale * float(previous.get("cumulative_scale", 1.0)),
        "log_var_bias_shift": 2.0 * math.log(scale), "recipe": recipe, "count": count, "seed": seed,
        "coverage_before": {"1sigma": coverage(pred, truth, sigma, 1.0), "2sigma": coverage(pred, truth, sigma, 2.0)},
        "coverage_after": {"1sigma": coverage(pred, truth, sigma * scale, 1.0), "2sigma": coverage(pred, truth, sigma * scale, 2.0)},
        "source_checkpoint": Path(checkpoint).name,
    }
    state = dict(state)
    state[LOG_VAR_BIAS] = state[LOG_VAR_BIAS] + torch.tensor(record["log_var_bias_shift"], dtype=state[LOG_VAR_BIAS].dtype)
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".partial")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_out), metadata={**metadata, CALIBRATION_KEY: json.dumps(record)})
    tmp_out.replace(out)  # the source is never half-overwritten, even when out == checkpoint
    return record
