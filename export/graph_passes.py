"""Graph clean-up after torch.onnx.export: checker, shape inference, constant folding."""

from __future__ import annotations

import onnx

from edgeperc.errors import ModelFileError


def check_and_infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX checker (full) + shape inference; a failure names the first problem."""
    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelFileError(f"exported graph is invalid: {str(exc).strip().splitlines()[0]}") from exc


def fold_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Polygraphy's constant folding (ONNX-GraphSurgeon + ONNX Runtime), then cleanup.

    Returns (model, note); without Polygraphy the model is returned unchanged and the note says so.
    """
    try:
        from polygraphy.backend.onnx import fold_constants as polygraphy_fold
        from polygraphy.logger import G_LOGGER
    except ImportError:
        return model, "constant folding skipped: polygraphy not installed (pip install edgeperc[export])"
    before = len(model.graph.node)
    metadata = list(model.metadata_props)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # ORT's optimiser notes are noise here
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        folded = polygraphy_fold(model, num_passes=None, do_shape_inference=True, error_ok=False)
    del folded.metadata_props[:]
    folded.metadata_props.extend(metadata)
    return folded, f"constant folding: {before} -> {len(folded.graph.node)} nodes"


def topological_sort(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reorder main-graph nodes so every input is produced before use (the FP16 converter appends
    its input casts at the end, which the ONNX checker rejects). Stable for already-sorted graphs."""
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            missing = sorted({i for n in pending for i in n.input} - available - {o for n in pending for o in n.output})
            raise ModelFileError(f"graph has a cycle or dangling inputs: {missing[:5]}")
        ready_ids = {id(n) for n in ready}
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
    return model
