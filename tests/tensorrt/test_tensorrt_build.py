"""Real TensorRT: build the tiny ONNX through build_engine, run it through TensorRTBackend and
compare with ONNX Runtime. Skipped where TensorRT is absent (this needs a GPU and TensorRT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tensorrt", reason="TensorRT is absent: install JetPack or edgeperc[tensorrt]")

import onnxruntime as ort  # noqa: E402
from edgeperc.export.engine_build import build_engine, plan_build, probe_cuda_device  # noqa: E402
from edgeperc.runtime.backends.tensorrt_backend import TensorRTBackend  # noqa: E402

from edgeperc.engine_cache import read_verified_engine  # noqa: E402
from edgeperc.errors import EngineCacheError  # noqa: E402
from edgeperc.targets import TargetConfig, load_target  # noqa: E402


def tiny_conv(path: Path) -> Path:
    """(batch, 3, 16, 16) float32 → Conv 3x3 (4 filters) + ReLU → (batch, 4, 16, 16)."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 16, 16])],
        initializer=[
            numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def here_target() -> TargetConfig:
    """A tensorrt target describing this machine's GPU, so plan and build keys agree."""
    import tensorrt as trt

    name, capability, multiprocessors = probe_cuda_device()
    data = load_target("orin-nx-16gb").model_dump()
    data.update(name="this-machine", device=name, tensorrt_version=trt.__version__, dla_cores=0)
    data["gpu"] = {"name": name, "compute_capability": capability, "sm": int(capability.replace(".", "")), "multiprocessors": multiprocessors}
    data["tensorrt"].update(use_dla=False, dla_core=None)
    return TargetConfig.model_validate(data)


@pytest.mark.parametrize("precision, atol", [("fp32", 1e-4), ("fp16", 2e-2)])
def test_build_and_run_matches_onnxruntime(tmp_path, here_target, precision, atol):
    model = tiny_conv(tmp_path / "tiny.onnx")
    plan = plan_build(model, here_target, precision=precision, cache_dir=tmp_path / "cache")
    engine_path = build_engine(plan)
    assert engine_path == plan.engine_path  # the target describes this machine, so the keys agree
    assert plan.is_cached()
    mtime = engine_path.stat().st_mtime_ns
    assert build_engine(plan) == engine_path and engine_path.stat().st_mtime_ns == mtime  # cache hit

    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    expected = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
    with TensorRTBackend(engine_path) as backend:
        assert [s.name for s in backend.inputs] == ["x"] and [s.name for s in backend.outputs] == ["y"]
        first = backend.infer({"x": x})["y"]
        second = backend.infer({"x": x[:1]})["y"]
        assert backend.last_latency_ms > 0
    np.testing.assert_allclose(first, expected, atol=atol, rtol=atol)
    np.testing.assert_allclose(second, expected[:1], atol=atol, rtol=atol)
    _, key, manifest = read_verified_engine(engine_path)
    assert manifest["precision"] == precision and key.precision == precision


def test_tampered_engine_is_refused_then_rebuilt(tmp_path, here_target):
    plan = plan_build(tiny_conv(tmp_path / "tiny.onnx"), here_target, precision="fp32", cache_dir=tmp_path / "cache")
    engine_path = build_engine(plan)
    data = bytearray(engine_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    engine_path.write_bytes(bytes(data))
    with pytest.raises(EngineCacheError, match="sha256"):
        TensorRTBackend(engine_path)
    rebuilt = build_engine(plan)
    with TensorRTBackend(rebuilt) as backend:
        assert backend.infer({"x": np.zeros((1, 3, 16, 16), np.float32)})["y"].shape == (1, 4, 16, 16)
