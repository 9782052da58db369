"""The edge checks every backend shares, run through the real ONNX Runtime backend."""

import numpy as np
import pytest
from edgeperc.runtime.backends import OnnxRuntimeBackend, check_feeds
from edgeperc.runtime.backends.onnxruntime_backend import choose_providers

from edgeperc.errors import BackendUnavailableError, InvalidInputError, ModelFileError
from edgeperc.manifest import TensorSpec
from tests.conftest import make_foreign_onnx

SPECS = [TensorSpec(name="pixels", shape=["N", 3, 32, 32])]


def _ok(batch=2):
    return {"pixels": np.zeros((batch, 3, 32, 32), np.float32)}


def test_valid_feeds_pass_with_any_batch():
    for batch in (1, 5):
        assert check_feeds(SPECS, _ok(batch))["pixels"].shape[0] == batch


@pytest.mark.parametrize(
    "feeds, message",
    [
        ({"pixels": np.zeros((2, 3, 32, 31), np.float32)}, r"input 'pixels' has shape \(2, 3, 32, 31\)"),
        ({"pixels": np.zeros((3, 32, 32), np.float32)}, "input 'pixels' has shape"),
        ({"pixels": np.zeros((2, 3, 32, 32), np.float64)}, "input 'pixels' has dtype float64"),
        ({"pixels": np.zeros((2, 3, 32, 32), np.uint8)}, "dtype uint8"),
        ({}, "input 'pixels' is missing"),
        ({**_ok(), "extra": np.zeros(1)}, r"unknown input\(s\) \['extra'\]"),
    ],
)
def test_bad_feeds_are_named(feeds, message):
    with pytest.raises(InvalidInputError, match=message):
        check_feeds(SPECS, feeds)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    feeds = _ok()
    feeds["pixels"][1, 2, 3, 4] = bad
    with pytest.raises(InvalidInputError, match="input 'pixels' contains 1 NaN/Inf"):
        check_feeds(SPECS, feeds)


def test_backend_runs_foreign_model_and_times_it(tmp_path):
    backend = OnnxRuntimeBackend(make_foreign_onnx(tmp_path / "m.onnx"))
    assert [s.name for s in backend.inputs] == ["pixels"] and backend.inputs[0].shape[1:] == [3, 32, 32]
    out = backend.infer(_ok(3))
    assert out["logits"].shape == (3, 5)
    assert backend.last_latency_ms > 0
    with pytest.raises(InvalidInputError, match="NaN"):
        backend.infer({"pixels": np.full((1, 3, 32, 32), np.nan, np.float32)})


def test_unchecked_hand_off_runs_the_same_and_skips_only_the_scan(tmp_path):
    """check=False (graph-to-graph hand-offs) gives the checked call's outputs; a NaN passes through
    to the outputs instead of being refused, which is why hand-off users check their logits."""
    backend = OnnxRuntimeBackend(make_foreign_onnx(tmp_path / "m.onnx"))
    feeds = {"pixels": np.random.default_rng(0).random((2, 3, 32, 32), np.float32)}
    np.testing.assert_array_equal(backend.infer(feeds, check=False)["logits"], backend.infer(feeds)["logits"])
    out = backend.infer({"pixels": np.full((1, 3, 32, 32), np.nan, np.float32)}, check=False)
    assert np.isnan(out["logits"]).all()


def test_backend_refuses_truncated_file(tmp_path):
    path = make_foreign_onnx(tmp_path / "m.onnx")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError):
        OnnxRuntimeBackend(path)


def test_provider_choice():
    assert choose_providers(None, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["auto"], ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(BackendUnavailableError, match="TensorrtExecutionProvider"):
        choose_providers(["TensorrtExecutionProvider"], ["CPUExecutionProvider"])
