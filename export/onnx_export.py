"""PyTorch module -> checked ONNX with the manifest inside.

One path for registered families and for users' own modules: export (opset >= 17, named I/O,
dynamic batch), checker + shape inference, constant folding, parity vs PyTorch on fixed seeds,
TensorRT op lint, manifest. The file is written only after parity passes.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from edgeperc.export.graph_passes import check_and_infer, fold_constants
from edgeperc.export.oplint import LintReport, lint_model
from edgeperc.export.parity import check_parity

import edgeperc
from edgeperc.errors import ConfigError, ModelFileError, ParityError
from edgeperc.hashing import sha256_file
from edgeperc.manifest import (
    Manifest,
    Normalisation,
    read_manifest,
    value_info_spec,
    write_manifest,
)
from edgeperc.onnx_io import save_onnx

MIN_OPSET = 17

InputMaker = Callable[[int], dict[str, np.ndarray]]


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    lint: LintReport
    notes: list[str] = field(default_factory=list)


def tool_versions() -> dict[str, str]:
    import onnxruntime
    import torch

    versions = {"edgeperc": edgeperc.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__, "python": sys.version.split()[0]}
    try:
        import polygraphy

        versions["polygraphy"] = polygraphy.__version__
    except ImportError:
        pass
    return versions


def _torch_reference(module: Any, input_names: list[str], output_names: list[str]) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    import torch

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outs = module(*(torch.from_numpy(feeds[n]) for n in input_names))
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {name: out.detach().numpy() for name, out in zip(output_names, outs)}

    return run


def torch_to_onnx(module: Any, example: dict[str, np.ndarray], input_names: list[str], output_names: list[str], dynamic_batch: bool, opset: int,
                  dynamic_axes: dict[str, dict[int, str]] | None = None) -> onnx.ModelProto:
    """torch.onnx.export (TorchScript exporter: stable op set for TensorRT) into memory.

    ``dynamic_axes`` (name -> {axis: symbol}) replaces the batch-only axes, for graphs whose
    dynamic dimension is a sequence length (LISAt's prefill / decode)."""
    import torch

    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset} is too old: edgeperc exports opset >= {MIN_OPSET}")
    args = tuple(torch.from_numpy(example[name]) for name in input_names)
    axes = {name: {0: "batch"} for name in input_names + output_names} if dynamic_batch else None
    if dynamic_axes is not None:
        axes = dynamic_axes
    buffer = io.BytesIO()
    # The TorchScript exporter is deprecated upstream but still gives the plainest graphs for
    # TensorRT's parser (no functions, folded shapes); its deprecation notice is noise for users.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=input_names, output_names=output_names,
                          opset_version=opset, dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def export_torch_module(
    module: Any,
    out: str | Path,
    input_names: list[str],
    output_names: list[str],
    make_inputs: InputMaker,
    dynamic_batch: bool = True,
    opset: int = MIN_OPSET,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seeds: tuple[int, ...] = (0, 1),
    tensorrt_version: str = "10.3",
    manifest_fields: dict[str, Any] | None = None,
) -> ExportResult:
    module.eval()
    notes: list[str] = []
    example = make_inputs(seeds[0])
    model = check_and_infer(torch_to_onnx(module, example, input_names, output_names, dynamic_batch, opset))
    model, note = fold_constants(model)
    notes.append(note)
    model = check_and_infer(model)
    parity = check_parity(model, _torch_reference(module, input_names, output_names), make_inputs, seeds, atol, rtol)
    worst = ", ".join(f"{n}: abs {parity.max_abs_error[n]:.2e} rel {parity.max_rel_error[n]:.2e}" for n in output_names)
    if not parity.passed:
        raise ParityError(f"ONNX Runtime does not reproduce PyTorch within atol={atol} rtol={rtol} ({worst}); nothing written")
    notes.append(f"parity PyTorch vs ONNX Runtime on seeds {list(seeds)}: {worst}")
    lint = lint_model(model, tensorrt_version)
    specs = {i.name: i for i in list(model.graph.input) + list(model.graph.output)}
    manifest = Manifest(
        inputs=[value_info_spec(specs[n]) for n in input_names],
        outputs=[value_info_spec(specs[n]) for n in output_names],
        opset=opset,
        parity=parity,
        tool_versions=tool_versions(),
        **(manifest_fields or {}),
    )
    write_manifest(model, manifest)
    path = save_onnx(model, out)
    return ExportResult(path=path, manifest=read_manifest(model), lint=lint, notes=notes)


def export_family(
    family_name: str,
    out: str | Path,
    checkpoint: str | Path | None = None,
    config_overrides: dict[str, Any] | None = None,
    opset: int = MIN_OPSET,
    batch: int = 2,
    seeds: tuple[int, ...] = (0, 1),
    tensorrt_version: str = "10.3",
    allow_random_init: bool = False,
) -> ExportResult:
    """Export a registered family from a checkpoint (config read from its metadata if present)."""
    from edgeperc.models.checkpoints import checkpoint_config, load_into, read_state
    from edgeperc.models.registry import get_family

    family = get_family(family_name)
    overrides = dict(config_overrides or {})
    state, checkpoint_sha = None, None
    if checkpoint is not None:
        state, metadata = read_state(checkpoint)
        stored_family, stored_config = checkpoint_config(metadata)
        if stored_family and stored_family != family_name:
            raise ModelFileError(f"checkpoint {checkpoint} is a '{stored_family}' checkpoint, not '{family_name}'")
        overrides = {**stored_config, **overrides}
        checkpoint_sha = sha256_file(checkpoint)
    elif not allow_random_init:
        raise ConfigError("a checkpoint is required (or --random-init for a smoke export)")
    config = family.make_config(overrides)
    import torch

    torch.manual_seed(0)
    module = family.build(config)
    if state is not None:
        load_into(module, state, checkpoint)
    return export_torch_module(
        module,
        out,
        input_names=list(family.input_names),
        output_names=list(family.output_names(config)),
        make_inputs=lambda seed: family.example_inputs(config, batch, seed),
        dynamic_batch=family.dynamic_batch,
        opset=opset,
        atol=family.atol,
        rtol=family.rtol,
        seeds=seeds,
        tensorrt_version=tensorrt_version,
        manifest_fields={
            "family": family.name,
            "family_version": family.version,
            "family_config": config.model_dump(mode="json"),
            "normalisation": family.normalisation,
            "checkpoint_sha256": checkpoint_sha,
        },
    )


def import_module_class(spec: str) -> Any:
    """'package.module:ClassName' -> the class; errors say which half failed."""
    if ":" not in spec:
        raise ConfigError(f"--module must be 'package.module:ClassName', got '{spec}'")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module '{module_name}' for --module: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise ConfigError(f"module '{module_name}' has no attribute '{attribute}'") from exc


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"--input-shape '{text}' must be comma-separated integers, e.g. 1,3,224,224") from exc
    if not shape or any(d <= 0 for d in shape):
        raise ConfigError(f"--input-shape '{text}' must have positive dimensions")
    return shape


def export_user_module(
    module_spec: str,
    out: str | Path,
    input_shapes: list[tuple[int, ...]],
    checkpoint: str | Path | None = None,
    kwargs: dict[str, Any] | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    normalisation: Normalisation | None = None,
    dynamic_batch: bool = True,
    opset: int = MIN_OPSET,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    tensorrt_version: str = "10.3",
) -> ExportResult:
    """Bring your own nn.Module: ``pkg.mod:Class(**kwargs)`` + checkpoint -> ONNX with a manifest."""
    import torch

    from edgeperc.models.checkpoints import load_into, read_state

    cls = import_module_class(module_spec)
    try:
        module = cls(**(kwargs or {}))
    except TypeError as exc:
        raise ConfigError(f"cannot construct {module_spec} with {kwargs or {}}: {exc}") from exc
    checkpoint_sha = None
    if checkpoint is not None:
        state, _ = read_state(checkpoint)
        load_into(module, state, checkpoint)
        checkpoint_sha = sha256_file(checkpoint)
    names = input_names or [f"input_{i}" if len(input_shapes) > 1 else "input" for i in range(len(input_shapes))]
    if len(names) != len(input_shapes):
        raise ConfigError(f"{len(names)} input names for {len(input_shapes)} input shapes")

    def make_inputs(seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, input_shapes)}

    module.eval()
    with torch.no_grad():
        probe = module(*(torch.from_numpy(a) for a in make_inputs(0).values()))
    count = len(probe) if isinstance(probe, (tuple, list)) else 1
    outs = output_names or (["output"] if count == 1 else [f"output_{i}" for i in range(count)])
    if len(outs) != count:
        raise ConfigError(f"{len(outs)} output names for a module that returns {count} output(s)")
    return export_torch_module(
        module, out, names, outs, make_inputs, dynamic_batch=dynamic_batch, opset=opset, atol=atol, rtol=rtol,
        tensorrt_version=tensorrt_version,
        manifest_fields={
            "family": None,
            "family_config": {"module": module_spec, "kwargs": json.loads(json.dumps(kwargs or {}))},
            "normalisation": normalisation,
            "checkpoint_sha256": checkpoint_sha,
        },
    )
