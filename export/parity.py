"""Parity: the exported ONNX must reproduce PyTorch on fixed seeds (openpilot's build-time check)."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import onnx
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

from edgeperc.manifest import ParityReport


def compare_outputs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]]:
    """Per output: (max abs error, max relative error with a floor so near-zero refs don't explode)."""
    abs_err, rel_err = {}, {}
    for name, ref in reference.items():
        ref64 = np.asarray(ref, np.float64)
        diff = np.abs(ref64 - np.asarray(candidate[name], np.float64))
        abs_err[name] = float(diff.max(initial=0.0))
        floor = max(1e-6, float(np.abs(ref64).max(initial=0.0)) * 1e-3)
        rel_err[name] = float((diff / np.maximum(np.abs(ref64), floor)).max(initial=0.0))
    return abs_err, rel_err


def check_parity(
    model: onnx.ModelProto,
    reference_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    make_inputs: Callable[[int], dict[str, np.ndarray]],
    seeds: tuple[int, ...] = (0, 1),
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> ParityReport:
    """Run both on each seed's inputs; passes when every element is within atol + rtol*|ref|."""
    backend = OnnxRuntimeBackend(model)
    worst_abs: dict[str, float] = {}
    worst_rel: dict[str, float] = {}
    passed = True
    for seed in seeds:
        feeds = make_inputs(seed)
        reference = reference_fn(feeds)
        candidate = backend.infer(feeds)
        abs_err, rel_err = compare_outputs(reference, candidate)
        for name in reference:
            worst_abs[name] = max(worst_abs.get(name, 0.0), abs_err[name])
            worst_rel[name] = max(worst_rel.get(name, 0.0), rel_err[name])
            ok = np.allclose(candidate[name], reference[name], atol=atol, rtol=rtol)
            passed = passed and bool(ok)
    return ParityReport(seeds=list(seeds), max_abs_error=worst_abs, max_rel_error=worst_rel, atol=atol, rtol=rtol, passed=passed)
