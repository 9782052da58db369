"""ONNX Runtime backend: the embedded default (CPU), with CUDA/TensorRT execution providers
used when the installed onnxruntime build offers them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from edgeperc.runtime.backends.base import Backend

from edgeperc.errors import BackendUnavailableError, ModelFileError
from edgeperc.manifest import Manifest, TensorSpec, manifest_of
from edgeperc.onnx_io import load_onnx

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def choose_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """``None``/``["auto"]``: GPU providers that are available, then CPU; else exactly what was asked."""
    if not requested or list(requested) == ["auto"]:
        return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]
    missing = [p for p in requested if p not in available]
    if missing:
        raise BackendUnavailableError(
            f"ONNX Runtime execution provider(s) {missing} are not in this onnxruntime build (available: {list(available)})"
        )
    return list(requested)


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file (or in-memory model) with ONNX Runtime; specs come from the manifest."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path | onnx.ModelProto,
        providers: Sequence[str] | None = ("CPUExecutionProvider",),
        intra_op_threads: int = 0,
        disabled_optimizers: Sequence[str] = (),
        save_optimized: str | Path | None = None,
    ) -> None:
        """``disabled_optimizers``: ONNX Runtime graph transformers to skip by name (for a graph where
        one was measured to slow the result, e.g. SkipLayerNormFusion on LISAt's mask decoder);
        ``save_optimized``: write the graph as ONNX Runtime optimized it (what actually runs) there."""
        super().__init__()
        self.disabled_optimizers = tuple(disabled_optimizers)
        import onnxruntime as ort

        proto = model if isinstance(model, onnx.ModelProto) else load_onnx(model, check=False)
        self.manifest: Manifest = manifest_of(proto)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.log_severity_level = 3
        if save_optimized is not None:
            options.optimized_model_filepath = str(save_optimized)
        self.providers = choose_providers(providers, ort.get_available_providers())
        try:
            extra = {"disabled_optimizers": list(disabled_optimizers)} if disabled_optimizers else {}
            self.session = ort.InferenceSession(proto.SerializeToString(), options, providers=self.providers, **extra)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            source = "in-memory model" if isinstance(model, onnx.ModelProto) else str(model)
            raise ModelFileError(f"ONNX Runtime cannot load {source}: {str(exc).strip().splitlines()[0]}") from exc
        self._inputs = [self._spec(i) for i in self.session.get_inputs()]
        self._outputs = [self._spec(o) for o in self.session.get_outputs()]

    @staticmethod
    def _spec(arg: object) -> TensorSpec:
        dtype = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
                 "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
                 "tensor(int8)": "int8", "tensor(double)": "float64"}.get(arg.type, arg.type)
        shape = [d if isinstance(d, int) else (d or f"dim{i}") for i, d in enumerate(arg.shape)]
        return TensorSpec(name=arg.name, shape=shape, dtype=dtype)

    @property
    def inputs(self) -> list[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self._outputs

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._outputs]
        return dict(zip(names, self.session.run(names, feeds)))
