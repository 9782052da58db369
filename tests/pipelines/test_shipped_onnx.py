"""The shipped ONNX files are exports of the shipped safetensors: same checkpoint, same outputs."""

import numpy as np
import pytest
from edgeperc.runtime.backends import OnnxRuntimeBackend

from edgeperc.hashing import sha256_file
from edgeperc.manifest import read_manifest
from edgeperc.models.registry import get_family
from edgeperc.onnx_io import load_onnx
from tests.conftest import WEIGHTS

SHIPPED = ["ynet-barcode-w8", "barcode-rpn-w16", "ynet-depth-w8", "rpt-policy-pick", "rpt-policy-stack"]


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_onnx_matches_its_checkpoint(stem, tmp_path):
    onnx_path, weights = WEIGHTS / f"{stem}.onnx", WEIGHTS / f"{stem}.safetensors"
    manifest = read_manifest(load_onnx(onnx_path))
    assert manifest.checkpoint_sha256 == sha256_file(weights), f"{onnx_path.name} was not exported from {weights.name}"
    pytest.importorskip("torch", reason="re-exporting needs the [export] extra")
    from edgeperc.export.onnx_export import export_family

    fresh = export_family(manifest.family, tmp_path / "fresh.onnx", checkpoint=weights).path
    family = get_family(manifest.family)
    feeds = family.example_inputs(family.make_config(manifest.family_config), 1, seed=9)
    shipped_out, fresh_out = OnnxRuntimeBackend(onnx_path).infer(feeds), OnnxRuntimeBackend(fresh).infer(feeds)
    for name, value in shipped_out.items():
        np.testing.assert_allclose(value, fresh_out[name], atol=1e-5)


def test_shipped_int8_depth_model_comes_from_its_half_checkpoint(tmp_path):
    """ynet-depth-w32n ships as a float16 safetensors (store_half) and its INT8 ONNX: the INT8 graph
    names that checkpoint, and it agrees with a fresh FP32 export of it within INT8's error."""
    int8_path, weights = WEIGHTS / "ynet-depth-w32n.int8.onnx", WEIGHTS / "ynet-depth-w32n.safetensors"
    manifest = read_manifest(load_onnx(int8_path))
    assert manifest.precision == "int8" and manifest.checkpoint_sha256 == sha256_file(weights)
    assert manifest.family_config["upsample"] == "nearest" and manifest.family_config["base_width"] == 32
    pytest.importorskip("torch", reason="re-exporting needs the [export] extra")
    from edgeperc.export.onnx_export import export_family

    fresh = export_family(manifest.family, tmp_path / "fresh.onnx", checkpoint=weights).path
    from edgeperc.export.calibration import load_samples

    feeds = load_samples(None, manifest, 2, 1000).feeds[0]  # a generated panorama, not noise
    fp32, int8 = OnnxRuntimeBackend(fresh).infer(feeds), OnnxRuntimeBackend(int8_path).infer(feeds)
    relative = np.abs(int8["depth"] - fp32["depth"]) / fp32["depth"]
    assert np.median(relative) < 0.03, np.median(relative)
