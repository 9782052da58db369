"""The model manifest: what a model needs to be run correctly, carried inside the ONNX file.

Every stage (export, quantize, build, runtime) reads the manifest written by the one before it,
so normalisation, I/O names, dynamic axes, precision and calibration are never re-typed by hand.
It lives as JSON under one key of ONNX ``metadata_props`` and is copied next to engines.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import onnx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeperc.errors import ModelFileError
from edgeperc.hashing import sha256_bytes

MANIFEST_KEY = "edgeperc.manifest"
SCHEMA_VERSION = 1

Precision = Literal["fp32", "fp16", "int8", "int4"]

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TensorSpec(_Strict):
    """One graph input or output; a str dimension is dynamic (e.g. ``"batch"``)."""

    name: str
    shape: list[int | str]
    dtype: str = "float32"


class Normalisation(_Strict):
    """x_model = (x_pixel * scale - mean) / std, per channel, in ``color`` order."""

    scale: float = 1.0 / 255.0
    mean: list[float] = Field(default_factory=lambda: [0.0])
    std: list[float] = Field(default_factory=lambda: [1.0])
    color: Literal["gray", "rgb", "bgr", "none"] = "gray"


class ParityReport(_Strict):
    """PyTorch vs ONNX Runtime on fixed seeds, per output."""

    seeds: list[int]
    max_abs_error: dict[str, float]
    max_rel_error: dict[str, float]
    atol: float
    rtol: float
    passed: bool


class CalibrationInfo(_Strict):
    source: str
    samples: int
    method: str
    description: str = ""


class AccuracyReport(_Strict):
    """Reference (FP32) vs quantized model on a held-out set; ``drop`` = reference - quantized."""

    metric: str
    higher_is_better: bool = True
    reference: float
    quantized: float
    drop: float
    drift: dict[str, float] = Field(default_factory=dict)
    held_out: str
    samples: int
    size_ratio: float
    cpu_latency_ratio: float
    reference_latency_ms: float
    quantized_latency_ms: float


class Manifest(_Strict):
    schema_version: int = SCHEMA_VERSION
    family: str | None = None
    family_version: str | None = None
    family_config: dict[str, Any] = Field(default_factory=dict)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    layout: str = "NCHW"
    normalisation: Normalisation | None = None
    precision: Precision = "fp32"
    opset: int | None = None
    checkpoint_sha256: str | None = None
    graph_sha256: str | None = None
    parent_graph_sha256: str | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    calibration: CalibrationInfo | None = None
    parity: ParityReport | None = None
    accuracy: AccuracyReport | None = None
    keep_fp32_nodes: list[str] = Field(default_factory=list)
    derived: bool = False

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def graph_sha256(model: onnx.ModelProto) -> str:
    """sha256 of the model with our manifest removed: stable across manifest rewrites."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    kept = [p for p in stripped.metadata_props if p.key != MANIFEST_KEY]
    del stripped.metadata_props[:]
    stripped.metadata_props.extend(kept)
    return sha256_bytes(stripped.SerializeToString(deterministic=True))


def write_manifest(model: onnx.ModelProto, manifest: Manifest) -> onnx.ModelProto:
    """Store ``manifest`` in ``model.metadata_props`` (in place), refreshing graph_sha256."""
    manifest = manifest.model_copy(update={"graph_sha256": graph_sha256(model)})
    kept = [p for p in model.metadata_props if p.key != MANIFEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = MANIFEST_KEY
    entry.value = manifest.model_dump_json()
    return model


def read_manifest(model: onnx.ModelProto) -> Manifest | None:
    """The embedded manifest, or None when the model was not written by edgeperc."""
    for prop in model.metadata_props:
        if prop.key == MANIFEST_KEY:
            try:
                return Manifest.model_validate(json.loads(prop.value))
            except (ValueError, ValidationError) as exc:
                raise ModelFileError(f"embedded edgeperc manifest is malformed: {exc}") from exc
    return None


def value_info_spec(info: onnx.ValueInfoProto) -> TensorSpec:
    """One ONNX graph input/output as a TensorSpec (symbolic dims kept as names)."""
    tensor = info.type.tensor_type
    shape: list[int | str] = []
    for index, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        else:
            shape.append(dim.dim_param or f"dim{index}")
    return TensorSpec(name=info.name, shape=shape, dtype=_ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)))


def derive_manifest(model: onnx.ModelProto) -> Manifest:
    """A manifest read off the graph alone, for ONNX files edgeperc did not produce."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value_info_spec(i) for i in model.graph.input if i.name not in initializers]
    outputs = [value_info_spec(o) for o in model.graph.output]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return Manifest(
        inputs=inputs,
        outputs=outputs,
        opset=opset,
        precision=guess_precision(model),
        graph_sha256=graph_sha256(model),
        tool_versions={"producer": f"{model.producer_name} {model.producer_version}".strip()},
        derived=True,
    )


def guess_precision(model: onnx.ModelProto) -> Precision:
    ops = {node.op_type for node in model.graph.node}
    if "MatMulNBits" in ops:
        return "int4"
    if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}:
        return "int8"
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        return "fp16"
    return "fp32"


def manifest_of(model: onnx.ModelProto) -> Manifest:
    """The embedded manifest if present, else one derived from the graph."""
    return read_manifest(model) or derive_manifest(model)
