"""The synthetic barcode generator: deterministic, and its truth is decodable where it says."""

import cv2
import numpy as np
import pytest

zxingcpp = pytest.importorskip("zxingcpp", reason="barcode synthesis renders with zxing-cpp")

from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene, low_res_copy, rasterise_mask  # noqa: E402
from edgeperc.synth.symbols import SYMBOLOGIES, render_symbol  # noqa: E402

CLEAN = SceneRecipe(size_hw=(1536, 1536), mean_count=4, blur_sigma_px=(0, 0), noise_sigma=(0, 0.5), lighting=0,
                    jpeg_quality=None, perspective=0.0, module_px=(3, 4), blobs=(0, 0))


@pytest.mark.parametrize("symbology", sorted(SYMBOLOGIES))
def test_every_symbology_renders_and_reads_back(symbology):
    symbol = render_symbol(np.random.default_rng(3), symbology, 3)
    results = zxingcpp.read_barcodes(symbol.image)
    assert [r.text for r in results] == [symbol.text]


def test_scene_is_deterministic_per_seed():
    a = generate_scene(np.random.default_rng(11), SceneRecipe(size_hw=(1024, 1024)))
    b = generate_scene(np.random.default_rng(11), SceneRecipe(size_hw=(1024, 1024)))
    c = generate_scene(np.random.default_rng(12), SceneRecipe(size_hw=(1024, 1024)))
    assert np.array_equal(a.image, b.image) and [t.text for t in a.barcodes] == [t.text for t in b.barcodes]
    assert not np.array_equal(a.image, c.image)


def _upright(image, polygon, margin=0.25):
    """Warp the polygon (grown by ``margin`` of its size, for the quiet zone) to an upright rectangle."""
    centre = polygon.mean(0)
    grown = (centre + (polygon - centre) * (1 + margin)).astype(np.float32)
    w = int(np.linalg.norm(grown[1] - grown[0]))
    h = int(np.linalg.norm(grown[3] - grown[0]))
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(grown, rect), (w, h), borderValue=255)


def test_truth_polygons_hold_decodable_codes():
    scene = generate_scene(np.random.default_rng(5), CLEAN)
    assert len(scene.barcodes) >= 3, "recipe should place codes"
    for truth in scene.barcodes:
        texts = {r.text for r in zxingcpp.read_barcodes(_upright(scene.image, truth.polygon))}
        assert truth.text in texts, (truth.symbology, truth.text, texts)


def test_mask_matches_polygon_area_and_lr_copy_shape():
    scene = generate_scene(np.random.default_rng(5), CLEAN)
    for truth in scene.barcodes:
        x0, y0, x1, y1 = truth.box_xyxy
        mask = rasterise_mask([truth], (x0, y0, x1, y1))
        assert mask.sum() == pytest.approx(cv2.contourArea(truth.polygon), rel=0.05)
    assert low_res_copy(scene.image).shape == (256, 256)


def test_empty_recipe_has_no_codes():
    scene = generate_scene(np.random.default_rng(0), SceneRecipe(size_hw=(512, 512), mean_count=0))
    assert scene.barcodes == [] and scene.image.dtype == np.uint8


@pytest.mark.parametrize("module_px", [2, 3])
def test_other_renderer_symbols_read_back(module_px):
    pytest.importorskip("barcode", reason="the robustness renderer needs python-barcode")
    pytest.importorskip("segno", reason="the robustness renderer needs segno")
    from edgeperc.synth.other_renderer import ALT_SYMBOLOGIES, render_symbol_alt

    rng = np.random.default_rng(module_px)
    for symbology in ALT_SYMBOLOGIES:
        symbol = render_symbol_alt(rng, symbology, module_px)
        assert [r.text for r in zxingcpp.read_barcodes(symbol.image)] == [symbol.text], symbology


def test_other_renderer_scene_truth_is_decodable():
    pytest.importorskip("barcode", reason="the robustness renderer needs python-barcode")
    scene = generate_scene(np.random.default_rng(6), CLEAN.model_copy(update={"renderer": "python-barcode+segno"}))
    assert scene.barcodes
    for truth in scene.barcodes:
        assert truth.text in {r.text for r in zxingcpp.read_barcodes(_upright(scene.image, truth.polygon))}


def test_quarter_turn_rotates_frame_and_truth_together():
    flat = generate_scene(np.random.default_rng(8), CLEAN)
    turned = generate_scene(np.random.default_rng(8), CLEAN.model_copy(update={"quarter_turns": 1}))
    assert np.array_equal(turned.image, np.rot90(flat.image))
    for before, after in zip(flat.barcodes, turned.barcodes):
        width = flat.image.shape[1]
        assert np.allclose(after.polygon, np.stack([before.polygon[:, 1], width - before.polygon[:, 0]], 1))
        assert after.text in {r.text for r in zxingcpp.read_barcodes(_upright(turned.image, after.polygon))}


def test_curved_codes_keep_truth_on_the_dark_modules():
    """Codes wrapped round a cylinder: the truth polygon still bounds the modules, and the codes stay
    decodable once the polygon is flattened (at most one lost to the squeezed edge modules)."""
    recipe = CLEAN.model_copy(update={"curvature": 0.9, "module_px": (3, 4), "min_count": 4})
    scene = generate_scene(np.random.default_rng(9), recipe)
    assert len(scene.barcodes) >= 3
    dark = scene.image < 90
    inside = rasterise_mask(scene.barcodes, (0, 0, *scene.image.shape[::-1])).astype(bool)
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert dark[grown].sum() >= 0.97 * dark.sum(), "dark modules outside every truth polygon"
    read = sum(t.text in {r.text for r in zxingcpp.read_barcodes(_upright(scene.image, t.polygon))} for t in scene.barcodes)
    assert read >= len(scene.barcodes) - 1


def test_min_count_and_glare_are_deterministic():
    recipe = SceneRecipe(size_hw=(480, 480), mean_count=0, min_count=1, glare=1.0, curvature=0.6, module_px=(2, 3))
    a, b = (generate_scene(np.random.default_rng(4), recipe) for _ in range(2))
    assert len(a.barcodes) == 1 and np.array_equal(a.image, b.image)
