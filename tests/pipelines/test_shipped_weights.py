"""The shipped weights are real trained models: exported and run on ONNX Runtime they still do
their job on held-out synthetic data (these fail if the weights or the export path break)."""

import numpy as np
import pytest
from edgeperc.runtime.backends import OnnxRuntimeBackend

from edgeperc.cli import main
from edgeperc.models.registry import get_family
from tests.conftest import WEIGHTS

pytest.importorskip("torch", reason="export needs the [export] extra (torch)")


# Floors well above an untrained network (random init: mask IoU ~0, depth delta1 0.04 on these samples).
@pytest.mark.parametrize("name, floor", [("ynet-barcode", 0.8), ("ynet-depth", 0.35)])
def test_exported_shipped_weights_hold_their_metric(tmp_path, name, floor):
    out = tmp_path / f"{name}.onnx"
    assert main(["export", str(WEIGHTS / f"{name}-w8.safetensors"), "--out", str(out)]) == 0
    backend = OnnxRuntimeBackend(out)
    family = get_family(name)
    config = family.make_config(backend.manifest.family_config)
    pixels, truth = family.generate(config, 4, seed=777)
    feeds = family.example_inputs(config, 4, seed=777)
    metric = family.evaluate(config, backend.infer(feeds), truth)[family.primary_metric]
    assert metric > floor, f"{name} {family.primary_metric} {metric:.3f} <= {floor}"
    # and a blank input is not mistaken for the trained signal
    if name == "ynet-barcode":
        blank = {"image": np.zeros_like(feeds["image"][:1])}
        assert backend.infer(blank)["mask"].mean() < 0.2


def test_depth_infer_writes_previews(tmp_path):
    import cv2

    from edgeperc.synth.panoramas import panorama_recipe, render_panorama

    onnx_path = tmp_path / "depth.onnx"
    assert main(["export", str(WEIGHTS / "ynet-depth-w8.safetensors"), "--out", str(onnx_path)]) == 0
    rgb = render_panorama(np.random.default_rng(5), panorama_recipe("default", (256, 512))).rgb
    cv2.imwrite(str(tmp_path / "pano.png"), rgb[..., ::-1])
    assert main(["infer", str(onnx_path), "--image", str(tmp_path / "pano.png"), "--out", str(tmp_path / "inf")]) == 0
    outputs = np.load(tmp_path / "inf" / "outputs.npz")
    assert outputs["depth"].shape == (1, 1, 256, 512) and (outputs["depth"] > 0).all()
    assert {p.name for p in (tmp_path / "inf").glob("*.png")} == {"depth_0.png", "log_var_0.png"}
