"""`edgeperc scan` end to end on the shipped models: generated frames, phone-sized photos, and a
batch with broken files that must not stop the good ones."""

import json

import cv2
import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene
from edgeperc.synth.symbols import render_symbol

pytest.importorskip("zxingcpp", reason="decoding needs zxing-cpp")


def scan_json(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["scan", *map(str, args), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def uhr_scene(tmp_path_factory):
    scene = generate_scene(np.random.default_rng(31), SceneRecipe(size_hw=(4096, 4096), mean_count=5, module_px=(3, 5)))
    path = tmp_path_factory.mktemp("scan") / "frame4k.png"
    cv2.imwrite(str(path), scene.image)
    return path, scene


def test_scan_uhr_frame_finds_and_decodes(uhr_scene, capsys, tmp_path):
    path, scene = uhr_scene
    [record] = scan_json(capsys, path, "--save-vis", tmp_path / "vis")
    assert (record["width"], record["height"]) == (4096, 4096)
    assert set(record["latency_ms"]) >= {"load", "proposals", "segmentation", "boxes", "decode", "total"}
    texts = {b["text"] for b in record["barcodes"] if b["text"]}
    truth = {t.text for t in scene.barcodes}
    assert len(texts & truth) >= 0.6 * len(truth), (texts, truth)
    assert texts <= truth, f"wrong texts reported: {texts - truth}"
    for barcode in record["barcodes"]:
        assert len(barcode["box"]) == 4 and np.asarray(barcode["polygon"]).shape == (4, 2) and 0 <= barcode["score"] <= 1
    overlay = cv2.imread(str(tmp_path / "vis" / "frame4k.overlay.png"))
    assert overlay is not None and max(overlay.shape[:2]) <= 1600


@pytest.mark.parametrize("symbology, module_px, angle", [("EAN13", 3, 8), ("QRCode", 5, -20), ("Code128", 2, 0)])
def test_small_photo_of_one_code(tmp_path, capsys, symbology, module_px, angle):
    """A phone-sized photo (300-500 px) of one code: it must not be shrunk to 256 px and lost."""
    symbol = render_symbol(np.random.default_rng(2), symbology, module_px)
    image = symbol.image
    side = max(300, max(image.shape) + 60)
    canvas = np.full((side, side), 200, np.uint8)
    y, x = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas = cv2.warpAffine(cv2.GaussianBlur(canvas, (0, 0), 0.6), rotation, (side, side), borderValue=200)
    cv2.imwrite(str(tmp_path / "photo.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    [record] = scan_json(capsys, tmp_path / "photo.jpg")
    assert [b["text"] for b in record["barcodes"] if b["text"]] == [symbol.text]


def test_blank_and_textured_frames_give_no_barcodes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((2048, 2048), 180, np.uint8))
    texture = cv2.resize(rng.integers(60, 200, (64, 64), dtype=np.uint8), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "texture.png"), texture)
    records = scan_json(capsys, tmp_path)
    assert [len(r["barcodes"]) for r in records] == [0, 0]


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path, capsys, uhr_scene):
    (tmp_path / "a_empty.png").write_bytes(b"")
    good = cv2.imread(str(uhr_scene[0]), cv2.IMREAD_GRAYSCALE)[:1024, :1024]
    cv2.imwrite(str(tmp_path / "b_good.png"), good)
    data = cv2.imencode(".jpg", good)[1].tobytes()
    (tmp_path / "c_truncated.jpg").write_bytes(data[: len(data) // 3])
    cv2.imwrite(str(tmp_path / "d_one_pixel.png"), np.zeros((1, 1), np.uint8))
    cv2.imwrite(str(tmp_path / "e_rgba16.png"), np.dstack([good.astype(np.uint16) * 257] * 3 + [np.full_like(good, 65535, dtype=np.uint16)]))
    records = scan_json(capsys, tmp_path)
    by_name = {r["image"].split("/")[-1]: r for r in records}
    assert "0 bytes" in by_name["a_empty.png"]["error"]
    assert "truncated" in by_name["c_truncated.jpg"]["error"]
    assert "smaller than" in by_name["d_one_pixel.png"]["error"]
    assert "error" not in by_name["b_good.png"] and "error" not in by_name["e_rgba16.png"]
    assert by_name["b_good.png"]["width"] == 1024


def test_all_images_failing_exits_nonzero(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"not an image")
    assert main(["scan", str(tmp_path / "x.png")]) == 5
