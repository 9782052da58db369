"""Two paths of the scanner beyond the default frame: huge frames proposed tile by tile, and
phone-photo-like images (tilt, curved pack, glare) scanned from the CLI."""

import json

import cv2
import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.cli_barcode import make_scanner
from edgeperc.models.metrics import box_recall
from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene, stress_recipe

pytest.importorskip("zxingcpp", reason="decoding needs zxing-cpp")


@pytest.fixture(scope="module")
def scanner():
    return make_scanner(None, None, None)


def test_tiled_low_res_pass_finds_what_the_single_copy_finds(scanner):
    """An 8k frame proposed as 2x2 tiles (each at about the 4k copy's scale) keeps every code the
    single 256 px copy proposes, and its proposals stay inside the frame."""
    scene = generate_scene(np.random.default_rng(5), SceneRecipe(size_hw=(8192, 8192), mean_count=6, degrade=False))
    truths = np.array([t.box_xyxy for t in scene.barcodes], np.float64)
    single = scanner.propose(scene.image)
    tiled_scanner = make_scanner(None, None, None)
    tiled_scanner.config = tiled_scanner.config.model_copy(update={"lr_tile_px": 4608, "lr_tile_overlap_px": 1024})
    tiled = tiled_scanner.propose(scene.image)
    assert len(truths) >= 3
    assert box_recall([tiled], [truths]) >= box_recall([single], [truths])
    assert box_recall([tiled], [truths]) >= 0.8
    assert (tiled[:, :2] >= 0).all() and (tiled[:, 2] <= 8192).all() and (tiled[:, 3] <= 8192).all()


def test_phone_photos_scan_from_the_cli_without_wrong_texts(tmp_path, capsys):
    """Generated phone photos (480 px, one code, curved pack, glare): most codes decode, none wrongly."""
    rng = np.random.default_rng(7)
    recipe = stress_recipe("phone-photo", 480, 1.0)
    truths = {}
    for index in range(8):
        scene = generate_scene(rng, recipe)
        path = tmp_path / f"photo{index}.jpg"
        colour = cv2.cvtColor(scene.image, cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(path), colour, [cv2.IMWRITE_JPEG_QUALITY, 92])
        truths[path.name] = {t.text for t in scene.barcodes}
    capsys.readouterr()
    assert main(["scan", str(tmp_path), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    decoded = wrong = 0
    for record in records:
        texts = {b["text"] for b in record["barcodes"] if b["text"]}
        truth = truths[record["image"].split("/")[-1]]
        decoded += len(texts & truth)
        wrong += len(texts - truth)
    assert len(records) == 8 and wrong == 0
    assert decoded >= 2, f"only {decoded} of {sum(map(len, truths.values()))} phone-photo codes decoded"
