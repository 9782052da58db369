"""Backends: one interface (inputs, outputs, infer, last_latency_ms) over ONNX Runtime and TensorRT.

TensorRT is imported lazily inside ``TensorRTBackend``: importing this package never needs it.
"""

from edgeperc.runtime.backends.base import Backend, check_feeds
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

__all__ = ["Backend", "OnnxRuntimeBackend", "check_feeds"]
