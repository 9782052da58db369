"""Open the backend a device target asks for: ONNX Runtime (with the target's providers and
threads) or a cached TensorRT engine built for it."""

from __future__ import annotations

from pathlib import Path

from edgeperc.runtime.backends.base import Backend
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend


def open_backend(onnx_path: str | Path, target=None, precision: str | None = None) -> Backend:
    """``target`` None (or an onnxruntime target) -> ONNX Runtime on the CPU by default; a
    TensorRT target -> build (or fetch from the cache) and load its engine."""
    if target is None or target.backend == "onnxruntime":
        providers = tuple(target.onnxruntime.execution_providers) if target is not None else ("CPUExecutionProvider",)
        threads = target.onnxruntime.intra_op_threads if target is not None else 0
        return OnnxRuntimeBackend(onnx_path, providers=providers, intra_op_threads=threads)
    from edgeperc.export.engine_build import build_engine, plan_build
    from edgeperc.runtime.backends.tensorrt_backend import TensorRTBackend

    plan = plan_build(onnx_path, target, precision=precision)
    return TensorRTBackend(build_engine(plan), plugin_library=plan.plugin_library)
