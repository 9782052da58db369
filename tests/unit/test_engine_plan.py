"""Engine planning on a tiny ONNX built here: profile shapes, precision checks, a deterministic
key that follows the target. TensorRT is not needed, and where it is absent the real build
must say so with BackendUnavailableError."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from edgeperc.export.engine_build import (
    build_engine,
    derive_profile_shapes,
    gpu_identity,
    parse_profile_override,
    plan_build,
)
from onnx import TensorProto, helper, numpy_helper

from edgeperc.engine_cache import EngineCache, cache_key
from edgeperc.errors import BackendUnavailableError, ConfigError
from edgeperc.manifest import TensorSpec
from edgeperc.targets import load_target

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def tiny_conv(path: Path, qdq: bool = False, spatial: int | str = 16) -> Path:
    """(batch, 3, S, S) float32 → Conv 3x3 (4 filters) + ReLU → (batch, 4, S, S); optional Q/DQ on the input."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes, inits, conv_in = [], [weight, bias], "x"
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        conv_in = "xd"
    nodes += [
        helper.make_node("Conv", [conv_in, "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, spatial, spatial])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, spatial, spatial])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgeperc-test")
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture()
def model_path(tmp_path) -> Path:
    return tiny_conv(tmp_path / "tiny.onnx")


@pytest.fixture()
def nx():
    return load_target("orin-nx-16gb")


def test_plan_is_deterministic_and_described(model_path, nx, tmp_path):
    plan = plan_build(model_path, nx, cache_dir=tmp_path / "cache")
    again = plan_build(model_path, nx, cache_dir=tmp_path / "cache")
    assert plan.digest == again.digest == cache_key(plan.key)
    assert plan.precision == "fp16" and plan.fp16 and not plan.int8
    assert plan.profile_shapes == {"x": ((1, 3, 16, 16), (1, 3, 16, 16), (8, 3, 16, 16))}
    assert plan.key.gpu_name == gpu_identity("Orin", 8) == "Orin (8 SMs)"
    assert plan.key.tensorrt_version == nx.tensorrt_version and plan.key.compute_capability == "8.7"
    assert plan.engine_path == tmp_path / "cache" / f"{plan.digest}.engine"
    text = plan.describe()
    for needle in (plan.digest, plan.key.onnx_sha256, "10.3.0", "Orin (8 SMs)", "8.7", "fp16", "1x3x16x16 / 1x3x16x16 / 8x3x16x16", "2048 MiB", str(plan.engine_path)):
        assert needle in text, needle
    assert "cached engine        no" in text


def test_describe_reports_a_cached_engine(model_path, nx, tmp_path):
    plan = plan_build(model_path, nx, cache_dir=tmp_path)
    EngineCache(tmp_path).store(plan.key, b"engine", {"inputs": [], "outputs": []})
    assert "cached engine        yes" in plan.describe()


def test_precision_not_allowed_by_target(model_path, tmp_path):
    drone = load_target("drone-orin-nx")  # fp16 / int8 only
    with pytest.raises(ConfigError, match=r"'fp32' is not allowed on target drone-orin-nx; allowed: fp16, int8"):
        plan_build(model_path, drone, precision="fp32", cache_dir=tmp_path)


def test_int8_needs_a_qdq_model(model_path, nx, tmp_path):
    with pytest.raises(ConfigError, match="QDQ"):
        plan_build(model_path, nx, precision="int8", cache_dir=tmp_path)
    qdq = plan_build(tiny_conv(tmp_path / "qdq.onnx", qdq=True), nx, precision="int8", cache_dir=tmp_path)
    assert qdq.int8 and qdq.fp16 and qdq.key.precision == "int8"


def test_onnxruntime_target_cannot_plan_an_engine(model_path, tmp_path):
    with pytest.raises(ConfigError, match="onnxruntime backend"):
        plan_build(model_path, load_target("x86-scanner-host"), cache_dir=tmp_path)


def test_target_changes_the_key(model_path, tmp_path):
    agx, nano = load_target("agx-orin-64gb"), load_target("orin-nano-8gb")
    assert agx.gpu.compute_capability == nano.gpu.compute_capability
    plan_agx = plan_build(model_path, agx, cache_dir=tmp_path)
    plan_nano = plan_build(model_path, nano, cache_dir=tmp_path)
    assert plan_agx.key.gpu_name != plan_nano.key.gpu_name
    assert plan_agx.digest != plan_nano.digest


def test_precision_and_model_change_the_key(model_path, nx, tmp_path):
    fp16 = plan_build(model_path, nx, cache_dir=tmp_path)
    fp32 = plan_build(model_path, nx, precision="fp32", cache_dir=tmp_path)
    other = plan_build(tiny_conv(tmp_path / "other.onnx", spatial=32), nx, cache_dir=tmp_path)
    assert len({fp16.digest, fp32.digest, other.digest}) == 3


def test_plugin_library_hash_enters_the_key(model_path, nx, tmp_path):
    plugin = tmp_path / "libplugin.so"
    plugin.write_bytes(b"\x7fELF fake bytes: only hashed, never loaded")
    with_plugin = plan_build(model_path, nx, cache_dir=tmp_path, plugin_library=plugin)
    assert with_plugin.key.plugin_library_sha256 is not None
    assert with_plugin.digest != plan_build(model_path, nx, cache_dir=tmp_path).digest
    with pytest.raises(ConfigError, match="plugin library not found"):
        plan_build(model_path, nx, cache_dir=tmp_path, plugin_library=tmp_path / "absent.so")


def test_profile_override(model_path, nx, tmp_path):
    plan = plan_build(model_path, nx, cache_dir=tmp_path, profile_overrides={"x": ((1, 3, 16, 16), (2, 3, 16, 16), (4, 3, 16, 16))})
    assert plan.profile_shapes["x"][2] == (4, 3, 16, 16)
    with pytest.raises(ConfigError, match="unknown input"):
        plan_build(model_path, nx, cache_dir=tmp_path, profile_overrides={"images": ((1,), (1,), (1,))})
    with pytest.raises(ConfigError, match="fixes it to 3"):
        plan_build(model_path, nx, cache_dir=tmp_path, profile_overrides={"x": ((1, 1, 16, 16), (1, 3, 16, 16), (1, 3, 16, 16))})
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        plan_build(model_path, nx, cache_dir=tmp_path, profile_overrides={"x": ((4, 3, 16, 16), (2, 3, 16, 16), (8, 3, 16, 16))})


def test_dynamic_spatial_dims_need_an_override(tmp_path, nx):
    path = tiny_conv(tmp_path / "dyn.onnx", spatial="size")
    with pytest.raises(ConfigError, match=r"axis 2 \('size'\) is dynamic"):
        plan_build(path, nx, cache_dir=tmp_path)
    plan = plan_build(path, nx, cache_dir=tmp_path, profile_overrides=dict([parse_profile_override("x:1x3x32x32,1x3x64x64,2x3x128x128")]))
    assert plan.profile_shapes["x"] == ((1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 128, 128))


def test_derive_profile_shapes_static_and_batch():
    specs = [TensorSpec(name="a", shape=["batch", 7]), TensorSpec(name="b", shape=[2, 5])]
    assert derive_profile_shapes(specs, max_batch=16) == {
        "a": ((1, 7), (1, 7), (16, 7)),
        "b": ((2, 5), (2, 5), (2, 5)),
    }


@pytest.mark.parametrize("text", ["x", "x:1x3,1x3", "x:1x3,1xa,1x3", ":1,1,1"])
def test_parse_profile_override_rejects_malformed(text):
    with pytest.raises(ConfigError):
        parse_profile_override(text)


def test_dla_target_refuses_fp32(model_path, tmp_path):
    data = load_target("agx-orin-64gb").model_dump()
    data["tensorrt"].update(use_dla=True, dla_core=1)
    dla = type(load_target("agx-orin-64gb")).model_validate(data)
    with pytest.raises(ConfigError, match="DLA"):
        plan_build(model_path, dla, precision="fp32", cache_dir=tmp_path)
    plan = plan_build(model_path, dla, precision="fp16", cache_dir=tmp_path)
    assert plan.key.dla_core == 1 and "dla_core             1" in plan.describe()


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: tests/tensorrt covers the real build")
def test_build_engine_without_tensorrt_says_how_to_install(model_path, nx, tmp_path):
    plan = plan_build(model_path, nx, cache_dir=tmp_path)
    with pytest.raises(BackendUnavailableError, match=r"TensorRT is not installed: install JetPack 6 on the Jetson, or `pip install edgeperc\[tensorrt\]`"):
        build_engine(plan)
    assert not plan.is_cached()


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: tests/tensorrt covers the real backend")
def test_tensorrt_backend_without_tensorrt_says_how_to_install(model_path, nx, tmp_path):
    from edgeperc.runtime.backends.tensorrt_backend import TensorRTBackend

    plan = plan_build(model_path, nx, cache_dir=tmp_path)
    path = EngineCache(tmp_path).store(plan.key, b"not an engine", {"inputs": [], "outputs": []})
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        TensorRTBackend(path)


@pytest.mark.parametrize(
    "section, update",
    [("tensorrt", {"sparsity": True}), ("tensorrt", {"builder_optimization_level": 5}), (None, {"tensorrt_version": "10.3.1"})],
)
def test_builder_options_that_change_the_engine_change_the_key(model_path, nx, tmp_path, section, update):
    data = nx.model_dump()
    (data[section] if section else data).update(update)
    changed = type(nx).model_validate(data)
    assert plan_build(model_path, changed, cache_dir=tmp_path).digest != plan_build(model_path, nx, cache_dir=tmp_path).digest


def test_workspace_does_not_change_the_key(model_path, nx, tmp_path):
    """Workspace bounds tactic memory; the engine stays valid, so it is not part of the key."""
    data = nx.model_dump()
    data["workspace_mib"] = 1024
    smaller = type(nx).model_validate(data)
    assert plan_build(model_path, smaller, cache_dir=tmp_path).digest == plan_build(model_path, nx, cache_dir=tmp_path).digest
