"""FP16 and INT8 (QDQ) quantization with a measured accuracy-drop report.

Tool choice, per target (README: "Quantization: which tool, and why"): ONNX Runtime's ``quantize_static`` for the
CPU target (ORT turns its QDQ into QLinearConv: faster than FP32 on the CPU), NVIDIA ModelOpt for
TensorRT targets (Q/DQ placed where TensorRT fuses them; ORT runs its output as fake-quant, slower
than FP32). FP16 uses ORT's float16 converter with graph I/O kept FP32.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from edgeperc.export.calibration import SampleSet
from edgeperc.export.graph_passes import topological_sort
from edgeperc.profiling.latency import summarise_ms, time_interleaved
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

from edgeperc.errors import BackendUnavailableError, ConfigError
from edgeperc.manifest import AccuracyReport, CalibrationInfo, Manifest, graph_sha256, manifest_of, write_manifest
from edgeperc.models import metrics

Method = Literal["ort", "modelopt"]
# "heads": the last weighted layer before each graph output and what follows it, so logits are
# never squeezed through int8 right before a sigmoid/softplus.
DEFAULT_KEEP_FP32 = ("heads", "Sigmoid", "Softmax", "Softplus", "LayerNormalization", "InstanceNormalization")
_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def output_heads(model: onnx.ModelProto) -> list[str]:
    """Names of nodes from each graph output back to (and including) its last weighted layer."""
    producers = {out: node for node in model.graph.node for out in node.output}
    heads: list[str] = []
    for output in model.graph.output:
        node = producers.get(output.name)
        while node is not None:
            heads.append(node.name)
            if node.op_type in _WEIGHTED or not node.input:
                break
            node = producers.get(node.input[0])
    return heads


def resolve_nodes(model: onnx.ModelProto, keep_fp32: list[str]) -> list[str]:
    """Node names to keep FP32 from op types, node names and "heads"; unknown names are errors."""
    names = {node.name for node in model.graph.node}
    ops = {node.op_type for node in model.graph.node}
    unknown = [k for k in keep_fp32 if k not in names and k not in ops and k not in DEFAULT_KEEP_FP32]
    if unknown:
        raise ConfigError(f"--keep-fp32 {unknown}: no node or op type of that name in the graph")
    heads = set(output_heads(model)) if "heads" in keep_fp32 else set()
    return [n.name for n in model.graph.node if n.name in keep_fp32 or n.op_type in keep_fp32 or n.name in heads]


def to_fp16(model: onnx.ModelProto, keep_fp32: list[str]) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    ops = [k for k in keep_fp32 if k in {n.op_type for n in model.graph.node}]
    nodes = resolve_nodes(model, keep_fp32)
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=ops or None, node_block_list=nodes or None, disable_shape_infer=False)
    return topological_sort(converted)


@contextlib.contextmanager
def quiet_root_logger():
    """ORT's quantizer logs a pre-processing hint on the root logger at every call; the graph was
    already shape-inferred and constant-folded at export, so the hint is noise here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a SampleSet."""

    def __init__(self, samples: SampleSet) -> None:
        self._iter = iter(samples.feeds)

    def get_next(self):  # noqa: ANN201 (ORT's protocol)
        return next(self._iter, None)

    def rewind(self) -> None:  # ORT >= 1.17 may call it
        pass


def to_int8_ort(model: onnx.ModelProto, calibration: SampleSet, keep_fp32: list[str], calibrate_method: str = "minmax",
                symmetric_activations: bool = False) -> onnx.ModelProto:
    """ORT QDQ, per-channel int8 weights. TensorRT target: int8 activations, symmetric (zero point
    0), as TensorRT requires. ONNX Runtime CPU target: uint8 asymmetric activations, because ORT's
    CPU EP (1.31) fuses DQ->Conv->Q into QLinearConv only for u8 activations with s8 weights on
    x86: with s8 activations 20 of the depth Y-Net's 25 convolutions stayed fake-quant (float
    Conv between DequantizeLinear and QuantizeLinear), slower than FP32 (docs/BENCHMARKS.md)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
    if calibrate_method not in methods:
        raise ConfigError(f"--calibrate-method '{calibrate_method}' must be one of {sorted(methods)}")
    exclude = resolve_nodes(model, keep_fp32)
    with tempfile.TemporaryDirectory() as tmp, quiet_root_logger():
        src, dst = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
        onnx.save(model, src)
        quantize_static(
            str(src), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude, calibrate_method=methods[calibrate_method],
            extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True},
        )
        return onnx.load(str(dst))


def to_int8_modelopt(model: onnx.ModelProto, calibration: SampleSet, keep_fp32: list[str]) -> onnx.ModelProto:
    try:
        from modelopt.onnx.quantization import quantize as modelopt_quantize
    except ImportError as exc:
        raise BackendUnavailableError(
            "NVIDIA ModelOpt is not installed: `pip install edgeperc[modelopt]` in its own environment "
            "(it pulls onnxruntime-gpu, which clashes with the CPU onnxruntime)"
        ) from exc
    names = list(calibration.feeds[0])
    data = {n: np.concatenate([f[n] for f in calibration.feeds]) for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
        onnx.save(model, src)
        modelopt_quantize(onnx_path=str(src), quantize_mode="int8", calibration_data=data, calibration_eps=["cpu"],
                          high_precision_dtype="fp32", nodes_to_exclude=resolve_nodes(model, keep_fp32), output_path=str(dst))
        return onnx.load(str(dst))


@dataclass
class QuantizeResult:
    model: onnx.ModelProto
    manifest: Manifest
    report: AccuracyReport


def accuracy_report(
    reference: onnx.ModelProto,
    quantized: onnx.ModelProto,
    held_out: SampleSet,
    family_name: str | None,
    latency_runs: int = 20,
    source_config: dict | None = None,
) -> AccuracyReport:
    """Family metric (or output drift) on ``held_out``, plus size and CPU latency ratios."""
    ref_backend, q_backend = OnnxRuntimeBackend(reference), OnnxRuntimeBackend(quantized)
    out_names = [o.name for o in ref_backend.outputs]
    ref_out = {n: [] for n in out_names}
    q_out = {n: [] for n in out_names}
    for feeds in held_out.feeds:
        for store, backend in ((ref_out, ref_backend), (q_out, q_backend)):
            result = backend.infer(feeds)
            for n in out_names:
                store[n].append(result[n])
    ref_cat = {n: np.concatenate(v) for n, v in ref_out.items()}
    q_cat = {n: np.concatenate(v) for n, v in q_out.items()}
    first = out_names[0]
    drift = metrics.output_drift(ref_cat[first], q_cat[first])
    if ref_cat[first].ndim == 2:
        drift["top1_agreement"] = metrics.top1_agreement(ref_cat[first], q_cat[first])
    elif 0.0 <= ref_cat[first].min() and ref_cat[first].max() <= 1.0:
        drift["mask_agreement"] = metrics.mask_agreement(ref_cat[first], q_cat[first])
    if family_name and held_out.targets is not None:
        from edgeperc.models.registry import get_family

        family = get_family(family_name)
        metric, higher = family.primary_metric, family.higher_is_better
        config = family.make_config(source_config)
        ref_value = family.evaluate(config, ref_cat, held_out.targets)[metric]
        q_value = family.evaluate(config, q_cat, held_out.targets)[metric]
    else:
        metric, higher = "cosine_to_fp32", True
        ref_value, q_value = 1.0, drift["cosine"]
    feeds = held_out.feeds[0]
    timings = time_interleaved({"ref": lambda: ref_backend.infer(feeds), "q": lambda: q_backend.infer(feeds)}, latency_runs)
    ref_ms, q_ms = summarise_ms(timings["ref"]).median_ms, summarise_ms(timings["q"]).median_ms
    return AccuracyReport(
        metric=metric, higher_is_better=higher, reference=ref_value, quantized=q_value,
        drop=(ref_value - q_value) if higher else (q_value - ref_value), drift=drift,
        held_out=held_out.description, samples=len(held_out),
        size_ratio=len(quantized.SerializeToString()) / len(reference.SerializeToString()),
        cpu_latency_ratio=q_ms / ref_ms, reference_latency_ms=ref_ms, quantized_latency_ms=q_ms,
    )


def quantize_model(
    model: onnx.ModelProto,
    precision: Literal["fp16", "int8"],
    calibration: SampleSet | None,
    held_out: SampleSet,
    keep_fp32: list[str] | None = None,
    method: Method = "ort",
    calibrate_method: str = "minmax",
    latency_runs: int = 20,
    for_tensorrt: bool = False,
) -> QuantizeResult:
    """Quantize ``model`` (FP32, with or without manifest); the result carries the report in its manifest."""
    source = manifest_of(model)
    if source.precision != "fp32":
        raise ConfigError(f"model is already {source.precision}: quantize the FP32 export")
    keep = list(DEFAULT_KEEP_FP32 if keep_fp32 is None else keep_fp32)
    if precision == "fp16":
        quantized, calib_info = to_fp16(model, keep), None
    elif precision == "int8":
        if calibration is None or not len(calibration):
            raise ConfigError("INT8 needs a calibration set (--calibration FOLDER, FILE.npz or family)")
        quantized = to_int8_modelopt(model, calibration, keep) if method == "modelopt" else to_int8_ort(model, calibration, keep, calibrate_method, symmetric_activations=for_tensorrt)
        calib_info = CalibrationInfo(source=calibration.source, samples=len(calibration),
                                     method=f"{method}:{calibrate_method if method == 'ort' else 'modelopt-default'}"
                                            + (":symmetric" if for_tensorrt or method == "modelopt" else ""),
                                     description=calibration.description)
    else:
        raise ConfigError(f"--precision '{precision}' must be fp16 or int8")
    quantized.ClearField("metadata_props")
    report = accuracy_report(model, quantized, held_out, source.family, latency_runs, source.family_config)
    manifest = source.model_copy(update={
        "precision": precision, "calibration": calib_info, "accuracy": report,
        "parent_graph_sha256": graph_sha256(model), "keep_fp32_nodes": resolve_nodes(model, keep),
        "derived": False,
    })
    write_manifest(quantized, manifest)
    return QuantizeResult(quantized, manifest_of(quantized), report)
