"""EdgepercRoiWarp: the ONNX custom-op form, its numpy reference against OpenCV, the built plugin
library's entry points, and (where TensorRT is installed) an engine built with the plugin."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import cv2
import numpy as np
import onnx
import pytest
from edgeperc.export.oplint import lint_model
from edgeperc.export.plugin_ops import (
    AUTOREG_LIBRARY,
    PLUGIN_DOMAIN,
    PLUGIN_NAME,
    RoiWarpAttrs,
    find_plugin_library,
    prepend_roi_warp,
    quad_to_matrix,
    roi_warp_model,
    roi_warp_reference,
)
from onnx import AttributeProto, TensorProto

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.manifest import (
    Manifest,
    Normalisation,
    derive_manifest,
    graph_sha256,
    read_manifest,
    write_manifest,
)
from tests.conftest import make_foreign_onnx

IMAGENET = {"scale": 1 / 255, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def plugin_node(model: onnx.ModelProto) -> onnx.NodeProto:
    nodes = [n for n in model.graph.node if n.op_type == PLUGIN_NAME]
    assert len(nodes) == 1
    return nodes[0]


def dims(info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]


# --- the ONNX node ---------------------------------------------------------------------------

def test_node_carries_the_parser_lookup_keys_and_typed_attributes():
    attrs = RoiWarpAttrs(out_h=400, out_w=400, channels=3, pad_value=114.0, max_rois=32, **IMAGENET)
    model = roi_warp_model(attrs)
    onnx.checker.check_model(model, full_check=True)
    node = plugin_node(model)
    assert node.domain == PLUGIN_DOMAIN
    types = {a.name: a.type for a in node.attribute}
    assert types == {
        "plugin_version": AttributeProto.STRING, "plugin_namespace": AttributeProto.STRING,
        "out_h": AttributeProto.INT, "out_w": AttributeProto.INT, "channels": AttributeProto.INT,
        "max_rois": AttributeProto.INT, "fp16_output": AttributeProto.INT,
        "pad_value": AttributeProto.FLOAT, "scale": AttributeProto.FLOAT,
        "mean": AttributeProto.FLOATS, "std": AttributeProto.FLOATS,
    }
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert values["plugin_version"] == b"1" and values["plugin_namespace"] == b"edgeperc"
    assert values["out_h"] == 400 and values["max_rois"] == 32 and values["fp16_output"] == 0
    back = RoiWarpAttrs.from_node(node)  # FLOAT attributes are float32: equal up to rounding
    assert (back.out_h, back.out_w, back.channels, back.max_rois, back.pad_value) == (400, 400, 3, 32, 114.0)
    assert back.scale == pytest.approx(attrs.scale, rel=1e-7) and back.std == pytest.approx(attrs.std, rel=1e-7)
    assert back.mean == pytest.approx(attrs.mean, rel=1e-7)
    # uint8 frame -> Cast to FP16 (TensorRT plugins take no UINT8) -> plugin -> (N, 3, 400, 400) float32
    assert [n.op_type for n in model.graph.node] == ["Cast", PLUGIN_NAME]
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert dims(model.graph.input[0]) == ["frame_h", "frame_w", 3]
    assert dims(model.graph.input[1]) == ["num_rois", 9]
    assert dims(model.graph.output[0]) == ["num_rois", 3, 400, 400]
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {(o.domain, o.version) for o in model.opset_import} == {("", 17), (PLUGIN_DOMAIN, 1)}


def test_frame_cast_and_fp16_output_options():
    direct = roi_warp_model(RoiWarpAttrs(64, 32, channels=1, fp16_output=True), frame_cast=None)
    assert [n.op_type for n in direct.graph.node] == [PLUGIN_NAME]
    assert direct.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    half = roi_warp_model(RoiWarpAttrs(64, 32), frame_dtype="float16")
    assert [n.op_type for n in half.graph.node] == [PLUGIN_NAME]
    with pytest.raises(ConfigError, match="frame_cast"):
        roi_warp_model(RoiWarpAttrs(64, 32), frame_cast="int8")


@pytest.mark.parametrize("kwargs, field", [
    ({"out_h": 0, "out_w": 8}, "out_h"),
    ({"out_h": 8, "out_w": 20000}, "out_w"),
    ({"out_h": 8, "out_w": 8, "channels": 5}, "channels"),
    ({"out_h": 8, "out_w": 8, "channels": 3, "mean": (0.1, 0.2)}, "mean"),
    ({"out_h": 8, "out_w": 8, "std": (0.0,)}, "std"),
    ({"out_h": 8, "out_w": 8, "max_rois": 70000}, "max_rois"),
    ({"out_h": 8, "out_w": 8, "scale": float("nan")}, "scale"),
])
def test_attributes_are_checked_like_the_creator_checks_them(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        RoiWarpAttrs(**kwargs)


# --- in front of an existing model -----------------------------------------------------------

def test_prepend_feeds_the_image_input_and_the_rest_of_the_graph_still_infers(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "foreign.onnx"))
    joined = prepend_roi_warp(model)
    onnx.checker.check_model(joined)
    assert [i.name for i in joined.graph.input] == ["frame", "rois"]
    assert dims(joined.graph.input[0]) == ["frame_h", "frame_w", 3]
    assert dims(joined.graph.input[1]) == ["N", 9]  # the batch becomes the RoI count
    assert [n.op_type for n in joined.graph.node[:2]] == ["Cast", PLUGIN_NAME]
    node = plugin_node(joined)
    assert list(node.output) == ["pixels"]
    attrs = RoiWarpAttrs.from_node(node)
    assert (attrs.out_h, attrs.out_w, attrs.channels) == (32, 32, 3)
    assert (attrs.scale, attrs.mean, attrs.std) == (1.0, (0.0,), (1.0,))  # no manifest: identity
    assert len(model.graph.input) == 1 and model.graph.input[0].name == "pixels"  # input untouched

    # Shape inference skips the custom op; its declared output keeps the graph inferable.
    del joined.graph.value_info[1:]
    inferred = onnx.shape_inference.infer_shapes(joined)
    shapes = {v.name: dims(v) for v in inferred.graph.value_info}
    assert shapes["pixels"] == ["N", 3, 32, 32]
    assert shapes["c1"] == ["N", 8, 32, 32] and shapes["f"] == ["N", 8]
    assert "edgeperc_frame_float16" in shapes  # the Cast's output infers too

    findings = lint_model(joined).findings
    assert [(f.op_type, f.status) for f in findings] == [(PLUGIN_NAME, "plugin")]


def test_prepend_takes_normalisation_from_the_manifest_and_rewrites_it(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "foreign.onnx", batch_dim="batch"))
    base = derive_manifest(model).model_dump()
    base.update(derived=False, family="foreign", normalisation=Normalisation(color="rgb", **IMAGENET).model_dump())
    write_manifest(model, Manifest.model_validate(base))
    joined = prepend_roi_warp(model, pad_value=114.0, max_rois=8)
    attrs = RoiWarpAttrs.from_node(plugin_node(joined))
    assert attrs.mean == pytest.approx(IMAGENET["mean"]) and attrs.std == pytest.approx(IMAGENET["std"])
    assert attrs.scale == pytest.approx(1 / 255) and attrs.pad_value == 114.0 and attrs.max_rois == 8
    manifest = read_manifest(joined)
    assert manifest is not None and manifest.normalisation is None and manifest.layout == "HWC"
    assert [(s.name, s.shape, s.dtype) for s in manifest.inputs] == [
        ("frame", ["frame_h", "frame_w", 3], "uint8"), ("rois", ["batch", 9], "float32")]
    assert manifest.parent_graph_sha256 == graph_sha256(model)
    assert manifest.graph_sha256 == graph_sha256(joined) and manifest.family == "foreign"


def test_prepend_refuses_what_cannot_fit(tmp_path):
    model = onnx.load(make_foreign_onnx(tmp_path / "foreign.onnx"))
    with pytest.raises(ConfigError, match="3x32x32"):
        prepend_roi_warp(model, RoiWarpAttrs(out_h=64, out_w=64, channels=3))
    with pytest.raises(ConfigError, match="no input"):
        prepend_roi_warp(model, image_input="image")
    with pytest.raises(ConfigError, match="already used"):
        prepend_roi_warp(model, frame_input="c1")


# --- the numpy reference ---------------------------------------------------------------------

def smooth_frame(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 with small gradients, so OpenCV builds that quantise coordinates (1/32 px)
    still agree within one LSB."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [127 + 100 * np.sin(xx / 9) * np.cos(yy / 11), 127 + 90 * np.cos((xx + yy) / 13), 40 + 1.5 * xx + yy]
    return np.clip(np.rint(np.stack(planes, -1)), 0, 255).astype(np.uint8)


MATRICES = {
    "shift": np.array([1, 0, 5, 0, 1, 3, 0, 0, 1], np.float32),
    "affine": np.array([0.7, 0.2, 10, -0.15, 0.9, 8, 0, 0, 1], np.float32),
    "quad": quad_to_matrix([[5, 4], [70, 10], [75, 55], [2, 50]], 32, 48),
    "perspective_partly_off": np.array([1.3, 0.1, -10, 0.05, 1.2, -6, 0.001, 0.002, 1], np.float32),
    "mostly_off": np.array([0.5, 0, 70, 0, 0.5, 50, 0, 0, 1], np.float32),
}


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("layout", ["hwc_uint8", "gray_uint8", "hwc_float32"])
def test_reference_matches_opencv_warp_perspective_inverse_map(name, layout):
    frame = smooth_frame(60, 80)
    if layout == "gray_uint8":
        frame = frame[:, :, 0]
    elif layout == "hwc_float32":
        frame = frame.astype(np.float32)
    matrix, pad = MATRICES[name], 114.0
    ours = roi_warp_reference(frame, matrix[None], 32, 48, pad_value=pad, scale=1.0)
    theirs = cv2.warpPerspective(frame, matrix.reshape(3, 3).astype(np.float64), (48, 32),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(pad,) * 4)
    theirs = theirs.reshape(32, 48, -1).transpose(2, 0, 1).astype(np.float32)
    assert ours.shape == (1, theirs.shape[0], 32, 48)
    # uint8: OpenCV rounds its result, so half an LSB plus coordinate rounding; float32: no rounding.
    tolerance = 1.0 if frame.dtype == np.uint8 else 0.5
    assert np.abs(ours[0] - theirs).max() <= tolerance


def test_reference_normalises_per_channel_and_pads_off_frame():
    frame = smooth_frame(20, 30)
    identity = np.eye(3, dtype=np.float32).reshape(1, 9)
    raw = roi_warp_reference(frame, identity, 20, 30, scale=1.0)
    assert np.array_equal(raw[0], frame.transpose(2, 0, 1).astype(np.float32))  # identity crop is exact
    normed = roi_warp_reference(frame, identity.reshape(1, 3, 3), 20, 30, **IMAGENET)
    mean = np.float32(IMAGENET["mean"]).reshape(3, 1, 1)
    std = np.float32(IMAGENET["std"]).reshape(3, 1, 1)
    np.testing.assert_allclose(normed[0], (raw[0] / 255 - mean) / std, atol=1e-5)
    # w == 0 everywhere (degenerate) and a crop far off the frame: all pad, normalised like a pixel.
    off = np.array([[0] * 9, [1, 0, 1e4, 0, 1, 0, 0, 0, 1]], np.float32)
    padded = roi_warp_reference(frame, off, 4, 5, pad_value=114.0, **IMAGENET)
    expected = (np.float32(114 / 255) - mean) / std
    np.testing.assert_allclose(padded, np.broadcast_to(expected, (2, 3, 4, 5)), atol=1e-5)
    assert roi_warp_reference(frame, np.zeros((0, 9), np.float32), 4, 5).shape == (0, 3, 4, 5)


def test_reference_is_the_kernels_reference():
    """The plugin's semantics are the kernels library's: bit-identical references."""
    kernels = pytest.importorskip("edgeperc.kernels.reference", reason="edgeperc.kernels.reference not present")
    frame = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rois = np.stack([MATRICES[k] for k in sorted(MATRICES)] + [np.zeros(9, np.float32)])
    ours = roi_warp_reference(frame, rois, 24, 40, pad_value=114.0, **IMAGENET)
    theirs = kernels.roi_warp_normalise(frame, rois.reshape(-1, 3, 3), (24, 40), pad=114.0, **IMAGENET)
    assert np.array_equal(ours, theirs)


def test_reference_rejects_bad_shapes():
    with pytest.raises(InvalidInputError, match="frame"):
        roi_warp_reference(np.zeros((4, 4, 5), np.uint8), np.zeros((1, 9)), 2, 2)
    with pytest.raises(InvalidInputError, match="rois"):
        roi_warp_reference(np.zeros((4, 4), np.uint8), np.zeros((1, 8)), 2, 2)
    with pytest.raises(ConfigError, match="mean"):
        roi_warp_reference(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 9)), 2, 2, mean=(0.1, 0.2))


def test_quad_to_matrix_maps_output_corners_onto_the_quad():
    quad = np.array([[5, 4], [70, 10], [75, 55], [2, 50]], np.float32)
    m = quad_to_matrix(quad, 32, 48).reshape(3, 3).astype(np.float64)
    corners = np.array([[0, 0, 1], [47, 0, 1], [47, 31, 1], [0, 31, 1]], np.float64)
    mapped = corners @ m.T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], quad, atol=1e-3)


# --- the built plugin library ----------------------------------------------------------------

def test_built_plugin_library_exports_its_entry_points():
    library = find_plugin_library()
    if library is None:
        pytest.skip("plugin library not built: cmake -S kernels/plugin -B build-plugin && cmake --build build-plugin "
                    "(or set EDGEPERC_TRT_PLUGIN)")
    if shutil.which("nm"):
        exported = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True,
                                  check=True).stdout.split()
        assert "getCreators" in exported and "setLoggerFinder" in exported
        undefined = subprocess.run(["nm", "-D", "--undefined-only", str(library)], capture_output=True, text=True,
                                   check=True).stdout
        assert "nvinfer1" not in undefined and "getPluginRegistry" not in undefined  # loads without libnvinfer
    # Loading it runs no CUDA: the static CUDA runtime only starts on the first CUDA call.
    lib = ctypes.CDLL(str(library))
    count = ctypes.c_int32(-1)
    lib.getCreators.restype = ctypes.c_void_p
    assert lib.getCreators(ctypes.byref(count)) and count.value == 1
    autoreg = library.with_name(AUTOREG_LIBRARY)
    if autoreg.is_file() and shutil.which("nm"):
        exported = subprocess.run(["nm", "-D", "--defined-only", str(autoreg)], capture_output=True, text=True,
                                  check=True).stdout.split()
        assert "getCreators" not in exported  # loadLibrary must not be pointed at it


# --- TensorRT --------------------------------------------------------------------------------

def test_tensorrt_engine_with_the_plugin_matches_the_reference(tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is absent: install JetPack or edgeperc[tensorrt]")
    library = find_plugin_library()
    if library is None:
        pytest.skip("plugin library not built (cmake -S kernels/plugin -B build-plugin)")
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    logger = trt.Logger(trt.Logger.WARNING)
    registry = trt.get_plugin_registry()
    if registry.get_creator(PLUGIN_NAME, "1", "edgeperc") is None:
        assert registry.load_library(str(library)) is not None
    attrs = RoiWarpAttrs(out_h=24, out_w=40, channels=3, pad_value=114.0, max_rois=8, **IMAGENET)
    model = roi_warp_model(attrs)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("frame", (8, 8, 3), (60, 80, 3), (256, 256, 3))
    profile.set_shape("rois", (1, 9), (4, 9), (attrs.max_rois, 9))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None

    frame = smooth_frame(60, 80)
    rois = np.stack([MATRICES[k] for k in ("shift", "affine", "quad", "perspective_partly_off")])
    with TrtRunner(EngineFromBytes(bytes(plan))) as runner:
        crops = runner.infer({"frame": frame, "rois": rois})["crops"]
    expected = roi_warp_reference(frame, rois, 24, 40, pad_value=114.0, **IMAGENET)
    # --fmad=false and an exact uint8 -> FP16 cast: expected equal up to float32 rounding noise.
    np.testing.assert_allclose(crops, expected, rtol=0, atol=1e-5)
