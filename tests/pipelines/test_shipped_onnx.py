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
