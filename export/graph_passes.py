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
