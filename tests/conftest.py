"""Shared fixtures: tiny exported models built once per session (no training, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

WEIGHTS = Path(__file__).resolve().parents[1] / "edgeperc" / "models" / "weights"


@pytest.fixture(scope="session", autouse=True)
def _lisat_cache(tmp_path_factory):
    """LISAt exports made by tests (the shipped checkpoint's, first of all) go to one session folder,
    never into the user's ~/.cache; a test that sets EDGEPERC_LISAT_CACHE itself still wins."""
    import os

    folder = tmp_path_factory.mktemp("lisat_cache")
    previous = os.environ.get("EDGEPERC_LISAT_CACHE")
    os.environ["EDGEPERC_LISAT_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("EDGEPERC_LISAT_CACHE", None)
    else:
        os.environ["EDGEPERC_LISAT_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_ynet_barcode_onnx(tmp_path_factory) -> Path:
    """ynet-barcode at width 4, random init, exported through the real path."""
    pytest.importorskip("torch", reason="export tests need the [export] extra (torch)")
    from edgeperc.export.onnx_export import export_family

    out = tmp_path_factory.mktemp("export") / "ynet-barcode-w4.onnx"
    export_family("ynet-barcode", out, config_overrides={"base_width": 4}, allow_random_init=True)
    return out


def make_foreign_onnx(path: Path, batch_dim: str | int = "N") -> Path:
    """A small conv classifier written with onnx.helper: an ONNX file edgeperc did not produce."""
    rng = np.random.default_rng(7)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 5)).astype(np.float32) * 0.3, "w2")
    nodes = [
        helper.make_node("Conv", ["pixels", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "w2"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "foreign_classifier",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch_dim, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch_dim, 5])],
        initializer=[w1, b1, w2],
    )
    model = helper.make_model(graph, producer_name="someone-else", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture()
def foreign_onnx(tmp_path) -> Path:
    return make_foreign_onnx(tmp_path / "foreign.onnx")
