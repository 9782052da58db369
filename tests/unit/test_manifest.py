import numpy as np
import onnx
import pytest

from edgeperc.errors import ModelFileError
from edgeperc.manifest import (
    MANIFEST_KEY,
    AccuracyReport,
    Manifest,
    Normalisation,
    TensorSpec,
    derive_manifest,
    graph_sha256,
    manifest_of,
    read_manifest,
    write_manifest,
)
from edgeperc.onnx_io import load_onnx, save_onnx
from tests.conftest import make_foreign_onnx


def _manifest() -> Manifest:
    return Manifest(
        family="ynet-barcode", family_version="1.0", family_config={"base_width": 8},
        inputs=[TensorSpec(name="image", shape=["batch", 1, 400, 400])],
        outputs=[TensorSpec(name="mask", shape=["batch", 1, 400, 400])],
        normalisation=Normalisation(mean=[0.5], std=[0.5]), precision="int8", opset=17,
        checkpoint_sha256="ab" * 32, tool_versions={"torch": "2.13.0"},
        accuracy=AccuracyReport(metric="mask_iou", reference=0.9, quantized=0.88, drop=0.02, held_out="x", samples=4,
                                size_ratio=0.3, cpu_latency_ratio=0.5, reference_latency_ms=10, quantized_latency_ms=5),
    )


def test_round_trip_through_file(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    write_manifest(model, _manifest())
    save_onnx(model, tmp_path / "with.onnx")
    back = read_manifest(load_onnx(tmp_path / "with.onnx"))
    expected = _manifest().model_copy(update={"graph_sha256": graph_sha256(model)})
    assert back == expected
    assert back.accuracy.drop == pytest.approx(0.02)


def test_rewrite_replaces_not_appends(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    write_manifest(model, _manifest())
    write_manifest(model, _manifest().model_copy(update={"precision": "fp16"}))
    assert [p.key for p in model.metadata_props].count(MANIFEST_KEY) == 1
    assert read_manifest(model).precision == "fp16"


def test_graph_hash_ignores_manifest_but_not_weights(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    before = graph_sha256(model)
    write_manifest(model, _manifest())
    assert graph_sha256(model) == before
    model.graph.initializer[0].raw_data = np.ones(8 * 27, np.float32).tobytes()
    assert graph_sha256(model) != before


def test_derived_manifest_for_foreign_model(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    manifest = manifest_of(model)
    assert manifest.derived and manifest.family is None
    assert manifest.inputs == [TensorSpec(name="pixels", shape=["N", 3, 32, 32], dtype="float32")]
    assert manifest.outputs[0].shape == ["N", 5]
    assert manifest.opset == 17 and manifest.precision == "fp32"
    assert derive_manifest(model) == manifest


def test_malformed_embedded_manifest_is_named(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    entry = model.metadata_props.add()
    entry.key, entry.value = MANIFEST_KEY, '{"inputs": 3}'
    with pytest.raises(ModelFileError, match="manifest is malformed"):
        read_manifest(model)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_onnx_is_a_named_error(tmp_path, damage):
    path = make_foreign_onnx(tmp_path / "m.onnx")
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x08\xff" * 50, "empty": b""}[damage])
    with pytest.raises(ModelFileError, match=str(path.name)):
        load_onnx(path)


def test_missing_onnx(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_onnx(tmp_path / "nope.onnx")


def test_checker_failure_is_named(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "m.onnx"))
    model.graph.node[0].input[1] = "no_such_tensor"
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(ModelFileError, match="checker"):
        load_onnx(tmp_path / "bad.onnx")


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    path = make_foreign_onnx(tmp_path / "m.onnx")
    original = path.read_bytes()
    with pytest.raises(Exception):
        save_onnx("not a model", path)  # type: ignore[arg-type]
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
