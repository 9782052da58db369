"""Plan and build TensorRT engines for a device target (Polygraphy loaders, lazy TensorRT).

``plan_build`` is pure planning: it reads the ONNX manifest, derives optimisation-profile
shapes, checks the precision against the target and the model, and computes the engine cache
key from the *target's* TensorRT version and GPU — so ``edgeperc build --dry-run`` works on any
machine. ``build_engine`` imports TensorRT, re-reads the real TensorRT version and GPU (an
engine is only valid where it was built), recomputes the key and builds through Polygraphy
into the verified ``EngineCache``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx
from edgeperc.runtime.backends.tensorrt_backend import import_tensorrt

from edgeperc.engine_cache import EngineCache, EngineKey, cache_key
from edgeperc.errors import BackendUnavailableError, ConfigError, ModelFileError
from edgeperc.hashing import sha256_bytes, sha256_file
from edgeperc.manifest import Manifest, TensorSpec, manifest_of
from edgeperc.onnx_io import load_onnx
from edgeperc.targets import TargetConfig

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
ShapeRange = tuple[Shape, Shape, Shape]
BATCH_DIM_NAMES = frozenset({"batch", "batch_size", "n", "b"})
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_QOPERATOR_OPS = frozenset({"QLinearConv", "QLinearMatMul", "QLinearAdd", "QGemm", "MatMulInteger", "ConvInteger"})


def default_cache_dir() -> Path:
    """``$EDGEPERC_ENGINE_CACHE`` or ``~/.cache/edgeperc/engines``."""
    env = os.environ.get("EDGEPERC_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeperc" / "engines"


def gpu_identity(name: str, multiprocessors: int | None) -> str:
    """GPU name for the cache key, e.g. ``'Orin (16 SMs)'``: all Orin modules report 'Orin'."""
    return f"{name} ({multiprocessors} SMs)" if multiprocessors else name


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def parse_profile_override(text: str) -> tuple[str, ShapeRange]:
    """``'images:1x3x224x224,4x3x224x224,8x3x224x224'`` → (name, (min, opt, max)); for ``--profile``."""
    name, sep, shapes = text.rpartition(":")
    parts = shapes.split(",")
    if not sep or not name or len(parts) != 3 or not all(re.fullmatch(r"\d+(x\d+)*", p.strip()) for p in parts):
        raise ConfigError(f"--profile {text!r}: expected NAME:MIN,OPT,MAX with shapes like 1x3x224x224")
    shape_min, shape_opt, shape_max = (tuple(int(d) for d in p.strip().split("x")) for p in parts)
    return name, (shape_min, shape_opt, shape_max)


def _check_range(name: str, spec: TensorSpec, shapes: ShapeRange) -> ShapeRange:
    shape_min, shape_opt, shape_max = (tuple(int(d) for d in s) for s in shapes)
    rank = len(spec.shape)
    if not len(shape_min) == len(shape_opt) == len(shape_max) == rank:
        raise ConfigError(f"profile for input {name!r}: every shape needs rank {rank} like {spec.shape}")
    for axis, (dim, lo, mid, hi) in enumerate(zip(spec.shape, shape_min, shape_opt, shape_max)):
        if not 1 <= lo <= mid <= hi:
            raise ConfigError(f"profile for input {name!r} axis {axis}: need 1 <= min <= opt <= max (got {lo}, {mid}, {hi})")
        if isinstance(dim, int) and dim > 0 and not lo == mid == hi == dim:
            raise ConfigError(f"profile for input {name!r} axis {axis}: the model fixes it to {dim} (got {lo}, {mid}, {hi})")
    return shape_min, shape_opt, shape_max


def derive_profile_shapes(
    inputs: Sequence[TensorSpec],
    max_batch: int,
    overrides: Mapping[str, Sequence[Sequence[int]]] | None = None,
) -> dict[str, ShapeRange]:
    """(min, opt, max) per input: fixed dims as is, a dynamic batch dim 1 / 1 / ``max_batch``.

    Other dynamic dims (e.g. ``height``) have no safe default and need an override.
    """
    overrides = dict(overrides or {})
    names = [spec.name for spec in inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(f"profile override for unknown input(s) {unknown}; the model's inputs are {names}")
    profiles: dict[str, ShapeRange] = {}
    for spec in inputs:
        if spec.name in overrides:
            shape_min, shape_opt, shape_max = overrides[spec.name]
            profiles[spec.name] = _check_range(spec.name, spec, (tuple(shape_min), tuple(shape_opt), tuple(shape_max)))
            continue
        ranges: list[tuple[int, int, int]] = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                ranges.append((dim, dim, dim))
            elif isinstance(dim, str) and dim.lower() in BATCH_DIM_NAMES:
                ranges.append((1, 1, max_batch))
            else:
                raise ConfigError(
                    f"input {spec.name!r} axis {axis} ({dim!r}) is dynamic and not a batch dim: give a profile, "
                    f"e.g. --profile {spec.name}:MIN,OPT,MAX with shapes like 1x3x224x224"
                )
        shape_min, shape_opt, shape_max = (tuple(column) for column in zip(*ranges)) if ranges else ((), (), ())
        profiles[spec.name] = (shape_min, shape_opt, shape_max)
    return profiles


def precision_flags(precision: str) -> dict[str, bool]:
    """Builder flags per precision; INT8/INT4 also allow FP16 for the layers left unquantized."""
    return {"fp16": precision in ("fp16", "int8", "int4"), "int8": precision in ("int8", "int4")}


def check_model_precision(model: onnx.ModelProto, precision: str, label: str) -> None:
    """Calibration-free INT8/INT4 in TensorRT reads scales from Q/DQ nodes: refuse graphs without them."""
    ops = {node.op_type for node in model.graph.node}
    if precision not in ("int8", "int4"):
        return
    if "MatMulNBits" in ops:
        raise ConfigError(
            f"{label}: MatMulNBits is an ONNX Runtime op TensorRT cannot parse; for TensorRT quantize INT4 "
            "with ModelOpt (DequantizeLinear blocks)"
        )
    if ops & _QOPERATOR_OPS and not ops & _QDQ_OPS:
        raise ConfigError(
            f"{label}: quantized in ONNX Runtime's QOperator format ({', '.join(sorted(ops & _QOPERATOR_OPS))}), "
            "which TensorRT cannot parse; re-quantize in QDQ format"
        )
    if not ops & _QDQ_OPS:
        raise ConfigError(
            f"{label}: precision {precision} needs a QDQ-quantized ONNX (calibration-free INT8 in TensorRT reads "
            "its scales from QuantizeLinear/DequantizeLinear nodes); quantize it first (edgeperc quantize) "
            "or build with fp16"
        )
    asymmetric = asymmetric_quantizers(model)
    if asymmetric:
        raise ConfigError(
            f"{label}: TensorRT takes only symmetric INT8 (int8 zero point 0), but {len(asymmetric)} Q/DQ node(s) "
            f"have other zero points (first: '{asymmetric[0]}'); re-quantize for TensorRT: "
            "edgeperc quantize MODEL --precision int8 --target <jetson target>"
        )
    if precision == "int4" and not any(init.data_type == onnx.TensorProto.INT4 for init in model.graph.initializer):
        raise ConfigError(f"{label}: precision int4 needs INT4 weights behind DequantizeLinear; this graph has none")


def asymmetric_quantizers(model: onnx.ModelProto) -> list[str]:
    """Names of Q/DQ nodes whose zero point is non-zero or unsigned (TensorRT rejects both)."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    bad = []
    for node in model.graph.node:
        if node.op_type in _QDQ_OPS and len(node.input) > 2 and node.input[2] in initializers:
            zero_point = initializers[node.input[2]]
            if zero_point.data_type == onnx.TensorProto.UINT8 or numpy_helper.to_array(zero_point).any():
                bad.append(node.name)
    return bad


def onnx_file_sha256(path: Path) -> str:
    """sha256 of the ONNX file, folded with its external-data files when it has any."""
    digest = sha256_file(path)
    proto = onnx.load(str(path), load_external_data=False)
    locations = sorted(
        {
            entry.value
            for tensor in proto.graph.initializer
            if tensor.data_location == onnx.TensorProto.EXTERNAL
            for entry in tensor.external_data
            if entry.key == "location"
        }
    )
    if not locations:
        return digest
    parts = [digest] + [f"{loc}:{sha256_file(path.parent / loc)}" for loc in locations]
    return sha256_bytes("\n".join(parts).encode("utf-8"))


@dataclass(frozen=True)
class BuildPlan:
    """Everything ``build_engine`` needs, decided up front; ``describe()`` is the dry run."""

    onnx_path: Path
    target: TargetConfig
    precision: str
    fp16: bool
    int8: bool
    profile_shapes: dict[str, ShapeRange]
    workspace_mib: int
    dla_core: int | None
    gpu_fallback: bool
    sparsity: bool
    timing_cache: bool
    plugin_library: Path | None
    cache_dir: Path
    manifest: Manifest
    key: EngineKey

    @property
    def digest(self) -> str:
        return cache_key(self.key)

    @property
    def engine_path(self) -> Path:
        return EngineCache(self.cache_dir).path_for(self.key)

    def is_cached(self) -> bool:
        """Whether an engine file exists for the planned key (``load`` still verifies it)."""
        return self.engine_path.is_file()

    def describe(self) -> str:
        key = self.key
        flags = [name for name, on in (("fp16", self.fp16), ("int8", self.int8)) if on] or ["none (fp32)"]
        lines = [
            f"engine plan: {self.onnx_path} for target {self.target.name} ({self.target.device})",
            f"  cache key            {self.digest}",
            f"  onnx_sha256          {key.onnx_sha256}",
            f"  tensorrt_version     {key.tensorrt_version}  (from the target; build_engine uses the installed TensorRT)",
            f"  gpu_name             {key.gpu_name}  (from the target; build_engine reads the real GPU)",
            f"  compute_capability   {key.compute_capability}",
            f"  precision            {key.precision}  (builder flags: {', '.join(flags)})",
            f"  plugin_library       {self.plugin_library or '-'}  sha256 {key.plugin_library_sha256 or '-'}",
            f"  dla_core             {key.dla_core if key.dla_core is not None else '- (GPU only)'}"
            + (f", gpu_fallback {self.gpu_fallback}" if key.dla_core is not None else ""),
            f"  builder_opt_level    {key.builder_optimization_level}",
            f"  workspace            {self.workspace_mib} MiB",
            f"  sparsity             {self.sparsity}, timing cache {self.timing_cache}",
            "  profile shapes (min / opt / max):",
        ]
        for name, (lo, mid, hi) in self.profile_shapes.items():
            lines.append(f"    {name:18s} {format_shape(lo)} / {format_shape(mid)} / {format_shape(hi)}")
        lines.append(f"  cache path           {self.engine_path}")
        lines.append(f"  cached engine        {'yes' if self.is_cached() else 'no'}")
        return "\n".join(lines)


def plan_build(
    onnx_path: str | Path,
    target: TargetConfig,
    precision: str | None = None,
    cache_dir: str | Path | None = None,
    plugin_library: str | Path | None = None,
    profile_overrides: Mapping[str, Sequence[Sequence[int]]] | None = None,
) -> BuildPlan:
    """Decide how to build ``onnx_path`` for ``target``; pure apart from reading the files."""
    onnx_path = Path(onnx_path)
    if target.backend != "tensorrt" or target.gpu is None or target.tensorrt_version is None:
        raise ConfigError(
            f"target {target.name} uses the {target.backend} backend: TensorRT engines need a target with "
            "backend 'tensorrt', a gpu and a tensorrt_version"
        )
    chosen = precision or target.default_precision
    if chosen not in target.precisions:
        raise ConfigError(
            f"precision {chosen!r} is not allowed on target {target.name}; allowed: {', '.join(target.precisions)}"
        )
    model = load_onnx(onnx_path)
    check_model_precision(model, chosen, str(onnx_path))
    manifest = manifest_of(model)
    options = target.tensorrt
    dla_core = (options.dla_core or 0) if options.use_dla else None
    if dla_core is not None and chosen == "fp32":
        raise ConfigError(f"target {target.name} uses the DLA, which runs fp16/int8 only; allowed: fp16, int8 (got fp32)")
    plugin = None
    if plugin_library is not None:
        plugin = Path(plugin_library)
        if not plugin.is_file():
            raise ConfigError(f"plugin library not found: {plugin}")
    profiles = derive_profile_shapes(manifest.inputs, options.max_batch, profile_overrides)
    key = EngineKey(
        onnx_sha256=onnx_file_sha256(onnx_path),
        tensorrt_version=target.tensorrt_version,
        gpu_name=gpu_identity(target.gpu.name, target.gpu.multiprocessors),
        compute_capability=target.gpu.compute_capability,
        precision=chosen,
        profile_shapes=profiles,
        plugin_library_sha256=sha256_file(plugin) if plugin else None,
        dla_core=dla_core,
        dla_gpu_fallback=options.gpu_fallback if dla_core is not None else None,
        builder_optimization_level=options.builder_optimization_level,
        sparsity=options.sparsity,
    )
    flags = precision_flags(chosen)
    return BuildPlan(
        onnx_path=onnx_path,
        target=target,
        precision=chosen,
        fp16=flags["fp16"],
        int8=flags["int8"],
        profile_shapes=profiles,
        workspace_mib=target.workspace_mib,
        dla_core=dla_core,
        gpu_fallback=options.gpu_fallback,
        sparsity=options.sparsity,
        timing_cache=options.timing_cache,
        plugin_library=plugin,
        cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
        manifest=manifest,
        key=key,
    )


# --- the real build (needs TensorRT and a GPU) --------------------------------------------------

_CU_ATTR_MULTIPROCESSOR_COUNT = 16
_CU_ATTR_COMPUTE_CAPABILITY_MAJOR = 75
_CU_ATTR_COMPUTE_CAPABILITY_MINOR = 76


def probe_cuda_device(index: int = 0) -> tuple[str, str, int]:
    """(name, compute capability 'M.m', multiprocessors) of CUDA device ``index``, via the driver API."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise BackendUnavailableError(f"no CUDA driver (libcuda.so.1) on this machine: {exc}") from exc

    def check(status: int, call: str) -> None:
        if status != 0:
            raise BackendUnavailableError(f"CUDA driver call {call} failed with CUresult {status} (no usable GPU?)")

    check(driver.cuInit(0), "cuInit")
    device = ctypes.c_int()
    check(driver.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
    name = ctypes.create_string_buffer(256)
    check(driver.cuDeviceGetName(name, len(name), device), "cuDeviceGetName")
    values = {}
    for attr in (_CU_ATTR_MULTIPROCESSOR_COUNT, _CU_ATTR_COMPUTE_CAPABILITY_MAJOR, _CU_ATTR_COMPUTE_CAPABILITY_MINOR):
        value = ctypes.c_int()
        check(driver.cuDeviceGetAttribute(ctypes.byref(value), attr, device), "cuDeviceGetAttribute")
        values[attr] = value.value
    capability = f"{values[_CU_ATTR_COMPUTE_CAPABILITY_MAJOR]}.{values[_CU_ATTR_COMPUTE_CAPABILITY_MINOR]}"
    return name.value.decode("utf-8", "replace"), capability, values[_CU_ATTR_MULTIPROCESSOR_COUNT]


def engine_manifest(plan: BuildPlan, tensorrt_version: str) -> dict[str, Any]:
    """The ONNX manifest as it holds for the engine: its precision and the TensorRT that built it."""
    tools = dict(plan.manifest.tool_versions, tensorrt=tensorrt_version)
    return plan.manifest.model_copy(update={"precision": plan.precision, "tool_versions": tools}).model_dump(mode="json")


def build_engine(plan: BuildPlan) -> Path:
    """Build (or reuse) the engine of ``plan`` on this machine; returns the verified engine path.

    The key is recomputed with the installed TensorRT version and the GPU found here, so the
    returned path can differ from ``plan.engine_path`` when the target file does not match the
    machine (a warning says so).
    """
    trt = import_tensorrt()
    from polygraphy.backend.trt import (
        CreateConfig,
        EngineBytesFromNetwork,
        LoadPlugins,
        NetworkFromOnnxPath,
        PostprocessConfig,
        Profile,
    )
    from polygraphy.exception import PolygraphyException

    gpu_name, capability, multiprocessors = probe_cuda_device()
    key = EngineKey.model_validate(
        plan.key.model_dump()
        | {
            "tensorrt_version": trt.__version__,
            "gpu_name": gpu_identity(gpu_name, multiprocessors),
            "compute_capability": capability,
        }
    )
    if key != plan.key:
        log.warning(
            "building for this machine (TensorRT %s, %s, sm %s), not the target's (TensorRT %s, %s, sm %s)",
            key.tensorrt_version, key.gpu_name, key.compute_capability,
            plan.key.tensorrt_version, plan.key.gpu_name, plan.key.compute_capability,
        )
    cache = EngineCache(plan.cache_dir)
    timing_cache_path = None
    if plan.timing_cache:
        plan.cache_dir.mkdir(parents=True, exist_ok=True)
        device_tag = sha256_bytes(f"{key.tensorrt_version}|{key.gpu_name}|{key.compute_capability}".encode())[:16]
        timing_cache_path = str(plan.cache_dir / f"timing-{device_tag}.cache")

    def build() -> bytes:
        network: Any = NetworkFromOnnxPath(str(plan.onnx_path))
        if plan.plugin_library is not None:
            network = LoadPlugins(plugins=[str(plan.plugin_library)], obj=network)
        profile = Profile()
        for name, (shape_min, shape_opt, shape_max) in plan.profile_shapes.items():
            profile.add(name, min=shape_min, opt=shape_opt, max=shape_max)
        config: Any = CreateConfig(
            fp16=plan.fp16,
            int8=plan.int8,
            profiles=[profile],
            memory_pool_limits={trt.MemoryPoolType.WORKSPACE: plan.workspace_mib << 20},
            builder_optimization_level=key.builder_optimization_level,
            sparse_weights=key.sparsity,
            use_dla=key.dla_core is not None,
            allow_gpu_fallback=bool(key.dla_gpu_fallback),
            load_timing_cache=timing_cache_path,
        )
        if key.dla_core:  # Polygraphy's use_dla always picks core 0
            core = key.dla_core
            config = PostprocessConfig(config, lambda builder, network, cfg: setattr(cfg, "DLA_core", core))
        serialized = EngineBytesFromNetwork(network, config=config, save_timing_cache=timing_cache_path)()
        return bytes(serialized)

    try:
        cache.get_or_build(key, build, engine_manifest(plan, trt.__version__))
    except PolygraphyException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"TensorRT could not build an engine from {plan.onnx_path}: {first}") from exc
    return cache.path_for(key)
