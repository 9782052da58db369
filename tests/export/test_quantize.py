"""FP16 / INT8 quantization: real ONNX Runtime tools, reports stored in the manifest."""

import cv2
import numpy as np
import onnx
import pytest
from edgeperc.export.calibration import from_folder, from_npz, load_samples
from edgeperc.export.quantize import quantize_model
from edgeperc.runtime.backends import OnnxRuntimeBackend

from edgeperc.errors import BackendUnavailableError, ConfigError, InvalidInputError
from edgeperc.manifest import graph_sha256, manifest_of, read_manifest
from edgeperc.onnx_io import load_onnx
from tests.conftest import make_foreign_onnx


@pytest.fixture(scope="module")
def family_sets(tiny_ynet_barcode_onnx):
    manifest = manifest_of(load_onnx(tiny_ynet_barcode_onnx))
    return load_samples(None, manifest, 8, 0), load_samples(None, manifest, 4, 1000)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_family_quantization_reports_accuracy(tiny_ynet_barcode_onnx, family_sets, precision):
    model = load_onnx(tiny_ynet_barcode_onnx)
    calib, held = family_sets
    result = quantize_model(model, precision, calib if precision == "int8" else None, held, latency_runs=3)
    manifest = read_manifest(result.model)
    assert manifest.precision == precision and manifest.family == "ynet-barcode"
    assert manifest.parent_graph_sha256 == graph_sha256(model)
    report = manifest.accuracy
    assert report.metric == "mask_iou" and report.samples == 4
    assert report.drop == pytest.approx(report.reference - report.quantized)
    assert 0.0 < report.size_ratio < 0.75  # weights really shrank
    assert report.drift["cosine"] > 0.99 and report.cpu_latency_ratio > 0
    ops = {n.op_type for n in result.model.graph.node}
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        assert manifest.calibration.samples == 8 and manifest.calibration.source == "family:ynet-barcode"
    else:
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in result.model.graph.initializer)
    # I/O stays FP32 and the model runs on the CPU backend.
    out = OnnxRuntimeBackend(result.model).infer(held.feeds[0])
    assert out["mask"].dtype == np.float32


def test_final_sigmoid_stays_fp32(tiny_ynet_barcode_onnx, family_sets):
    model = load_onnx(tiny_ynet_barcode_onnx)
    result = quantize_model(model, "int8", *family_sets, latency_runs=2)
    producers = {out: n for n in result.model.graph.node for out in n.output}
    sigmoid = next(n for n in result.model.graph.node if n.op_type == "Sigmoid")
    assert producers[sigmoid.input[0]].op_type != "DequantizeLinear"
    assert sigmoid.name in read_manifest(result.model).keep_fp32_nodes


def test_cpu_int8_convolutions_run_as_qlinearconv(tiny_ynet_barcode_onnx, family_sets, tmp_path):
    """The CPU target's INT8 graph must become real int8 kernels in ONNX Runtime, not fake-quant
    (float Conv between DequantizeLinear and QuantizeLinear), which runs slower than FP32."""
    import onnxruntime as ort

    model = load_onnx(tiny_ynet_barcode_onnx)
    result = quantize_model(model, "int8", *family_sets, latency_runs=2)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(result.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath)
    ops = [n.op_type for n in optimized.graph.node]
    kept = set(read_manifest(result.model).keep_fp32_nodes)
    float_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in kept]
    assert ops.count("QLinearConv") == len(float_convs), ops


def test_requantizing_is_refused(tiny_ynet_barcode_onnx, family_sets):
    quantized = quantize_model(load_onnx(tiny_ynet_barcode_onnx), "fp16", None, family_sets[1], latency_runs=2).model
    with pytest.raises(ConfigError, match="already fp16"):
        quantize_model(quantized, "int8", *family_sets)


def test_unknown_keep_fp32_name(tiny_ynet_barcode_onnx, family_sets):
    with pytest.raises(ConfigError, match="NoSuchNode"):
        quantize_model(load_onnx(tiny_ynet_barcode_onnx), "int8", *family_sets, keep_fp32=["NoSuchNode"])


def test_foreign_model_int8_from_npz_reports_drift(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "f.onnx"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", pixels=rng.standard_normal((20, 3, 32, 32)).astype(np.float32))
    samples = from_npz(tmp_path / "calib.npz", manifest_of(model))
    calib, held = samples.split(0.2)
    assert (len(calib), len(held)) == (16, 4)
    result = quantize_model(model, "int8", calib, held, latency_runs=2)
    report = result.report
    assert report.metric == "cosine_to_fp32" and report.quantized == report.drift["cosine"]
    assert 0.0 <= report.drift["top1_agreement"] <= 1.0 and report.drift["cosine"] > 0.9
    manifest = read_manifest(result.model)
    assert manifest.precision == "int8" and manifest.family is None and manifest.inputs[0].name == "pixels"


def test_npz_errors_are_named(tmp_path):
    manifest = manifest_of(onnx.load(make_foreign_onnx(tmp_path / "f.onnx")))
    np.savez(tmp_path / "a.npz", wrong=np.zeros((2, 3, 32, 32), np.float32), other=np.zeros(2))
    with pytest.raises(InvalidInputError, match=r"lacks arrays for input\(s\) \['pixels'\]"):
        from_npz(tmp_path / "a.npz", manifest)
    (tmp_path / "b.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match="b.npz"):
        from_npz(tmp_path / "b.npz", manifest)


def test_folder_calibration_and_corrupt_image(tmp_path):
    manifest = manifest_of(onnx.load(make_foreign_onnx(tmp_path / "f.onnx")))
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        cv2.imwrite(str(images / f"{index}.png"), np.full((40, 50, 3), index * 60, np.uint8))
    samples = from_folder(images, manifest)
    assert len(samples) == 3 and samples.feeds[0]["pixels"].shape == (1, 3, 32, 32)
    (images / "3.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(InvalidInputError, match="3.png"):
        from_folder(images, manifest)


def test_modelopt_absent_is_one_clear_error(tiny_ynet_barcode_onnx, family_sets):
    try:
        import modelopt.onnx.quantization  # noqa: F401
        pytest.skip("ModelOpt is installed here; this checks the message when it is absent")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailableError, match="ModelOpt is not installed"):
        quantize_model(load_onnx(tiny_ynet_barcode_onnx), "int8", *family_sets, method="modelopt")
