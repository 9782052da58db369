"""The scanner on the kernel code (host build of the CUDA kernels) gives what it gives on OpenCV,
and every scan reports which kernels backend ran."""

import json

import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.cli_barcode import make_scanner
from edgeperc.kernels import BackendChoice
from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene
from tests.kernels.helpers import ensure_host_library

pytest.importorskip("zxingcpp", reason="decoding needs zxing-cpp")


def test_host_kernels_scan_like_opencv():
    ensure_host_library()
    scene = generate_scene(np.random.default_rng(12), SceneRecipe(size_hw=(4096, 4096), mean_count=5, module_px=(3, 5)))
    on_opencv = make_scanner(None, None, None)
    on_opencv.kernels = BackendChoice("opencv", "test")
    on_host = make_scanner(None, None, None)
    on_host.kernels = BackendChoice("host", "test")
    a, b = on_opencv.scan(scene.image), on_host.scan(scene.image)
    assert np.array_equal(a.proposals_uhr, b.proposals_uhr)  # area downsample is bit-exact
    assert a.windows == b.windows
    native = [i for i, w in enumerate(a.windows) if w.side_px == on_host.config.crop_px]
    assert native, "expected native-size crops"
    for i in range(len(a.windows)):
        np.testing.assert_allclose(a.window_masks[i], b.window_masks[i], atol=1e-4)
    assert [(x.box_xyxy, x.text) for x in a.barcodes] == [(x.box_xyxy, x.text) for x in b.barcodes]
    assert b.kernels == {"backend": "host", "reason": "test"}


def test_scan_json_reports_the_kernels_backend(tmp_path, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "blank.png"), np.full((600, 600), 200, np.uint8))
    capsys.readouterr()
    assert main(["scan", str(tmp_path / "blank.png"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kernels"]["backend"] in ("cuda", "opencv", "host") and record["kernels"]["reason"]
