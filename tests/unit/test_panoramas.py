"""Synthetic panoramas: deterministic, seamless at ±180°, depth = exact ray length + the stated
sensor noise, and the ambiguity features (mirrors, glass) appear exactly when asked for."""

import json

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edgeperc.errors import ConfigError
from edgeperc.synth.panoramas import (LABEL_GLASS, LABEL_MIRROR, PanoramaRecipe, depth_noise_sigma, depth_to_mm,
                                      panorama_directions, panorama_recipe, render_panorama)

SMALL = (64, 128)


def _render(seed, **fields):
    return render_panorama(np.random.default_rng(seed), PanoramaRecipe(size_hw=fields.pop("size_hw", SMALL), **fields))


def test_recipe_validation():
    with pytest.raises(ValidationError, match="1:2"):
        PanoramaRecipe(size_hw=(64, 100))
    with pytest.raises(ValidationError):
        PanoramaRecipe(colour_grading=True)  # extra fields are refused
    with pytest.raises(ValidationError, match="room_width_m"):
        PanoramaRecipe(room_width_m=(8.0, 4.0))
    with pytest.raises(ValidationError):
        PanoramaRecipe(textureless_fraction=1.5)
    with pytest.raises(ConfigError, match="default, shifted"):
        panorama_recipe("nope")
    with pytest.raises(ConfigError, match="1:2"):
        panorama_recipe("default", (256, 256))
    shifted = panorama_recipe("shifted", (128, 256))
    assert shifted.size_hw == (128, 256) and shifted.room_width_m != PanoramaRecipe().room_width_m


def test_directions_follow_the_equirectangular_convention():
    """Longitude -pi..pi along W, latitude +pi/2..-pi/2 along H, pixel centres, z up."""
    x, y, z = panorama_directions((8, 16))
    lon = (np.arange(16) + 0.5) / 16 * 2 * np.pi - np.pi
    lat = np.pi / 2 - (np.arange(8) + 0.5) / 8 * np.pi
    lon, lat = np.meshgrid(lon, lat)
    expected = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
    assert np.allclose(np.stack([x, y, z], -1), expected, atol=1e-6)
    assert z[0, 0] > 0.9 and z[-1, 0] < -0.9  # top row looks up


def test_deterministic_per_seed_with_shapes_and_dtypes():
    a, b, c = _render(5), _render(5), _render(6)
    h, w = SMALL
    assert a.rgb.shape == (h, w, 3) and a.rgb.dtype == np.uint8
    for name, dtype in (("depth", np.float32), ("clean_depth", np.float32), ("valid", np.bool_),
                        ("noise_sigma", np.float32), ("labels", np.uint8)):
        assert getattr(a, name).shape == (h, w) and getattr(a, name).dtype == dtype, name
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.rgb.tobytes() == b.rgb.tobytes() and a.metadata == b.metadata
    assert not np.array_equal(a.clean_depth, c.clean_depth)
    json.dumps(a.metadata)  # serialisable for index.json


def test_seam_is_continuous():
    ratios = []
    for seed in range(4):
        pano = _render(seed, size_hw=(64, 128))
        for image in (pano.clean_depth, pano.rgb.astype(np.float32).mean(-1)):
            steps = np.abs(np.diff(image, axis=1)).mean(axis=0)  # the W-1 interior column pairs
            seam = np.abs(image[:, 0] - image[:, -1]).mean()
            assert seam <= steps.max(), (seed, seam, steps.max())
            ratios.append(seam / np.median(steps))
    assert np.median(ratios) < 2.0, ratios


def test_turning_the_camera_by_half_a_turn_rolls_the_image():
    """The seam is an ordinary column pair: with the heading turned by pi, column 0 | W-1 is
    rendered in the middle of the image, and the two renders are the same up to a roll."""
    from edgeperc.synth.panoramas import build_scene, render_scene

    recipe = PanoramaRecipe(size_hw=(48, 96))
    scene = build_scene(np.random.default_rng(3), recipe)
    a = render_scene(scene, np.random.default_rng(0))
    scene.camera_yaw += np.pi
    b = render_scene(scene, np.random.default_rng(0))
    rolled = np.roll(a.clean_depth, -48, axis=1)
    close = np.abs(rolled - b.clean_depth) < 2e-3 * b.clean_depth
    assert close.mean() > 0.995
    assert np.abs(b.clean_depth[:, 47] - b.clean_depth[:, 48]).mean() == pytest.approx(
        np.abs(a.clean_depth[:, -1] - a.clean_depth[:, 0]).mean(), rel=0.05, abs=1e-3)


def test_depth_is_positive_and_inside_the_room():
    for seed in range(3):
        pano = _render(seed, size_hw=(32, 64))
        width, depth, height = pano.metadata["room_size_m"]
        assert pano.clean_depth.min() > 0.05
        assert pano.clean_depth.max() <= np.sqrt(width**2 + depth**2 + height**2) + 1e-3
        assert np.all(pano.depth[pano.valid] > 0) and np.all(pano.depth[~pano.valid] == 0)
        assert np.all(pano.clean_depth[pano.valid] <= pano.metadata["max_range_m"])


def test_out_of_range_pixels_are_invalid():
    pano = _render(1, max_range_m=3.0)
    assert not pano.valid.all()
    assert np.array_equal(pano.valid, pano.clean_depth <= 3.0)


def test_depth_matches_clean_depth_within_the_noise_model():
    pano = _render(2, size_hw=(96, 192), edge_mix_fraction=0.0)
    z = (pano.depth - pano.clean_depth)[pano.valid] / pano.noise_sigma[pano.valid]
    assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05
    assert np.allclose(pano.noise_sigma, depth_noise_sigma(pano.clean_depth, PanoramaRecipe()))
    # with flying pixels on, only edge pixels leave the Gaussian model
    mixed = _render(2, size_hw=(96, 192))
    outliers = np.abs(mixed.depth - mixed.clean_depth)[mixed.valid] > 5 * mixed.noise_sigma[mixed.valid]
    assert 0 < outliers.mean() < 0.03


def test_noise_grows_with_distance():
    pano = _render(4, size_hw=(128, 256), room_width_m=(8.0, 9.0), room_depth_m=(8.0, 9.0), edge_mix_fraction=0.0, max_range_m=20.0)
    error = np.abs(pano.depth - pano.clean_depth)
    bins = [(1.0, 2.0), (3.0, 4.0), (5.0, 7.0)]
    means = [error[(pano.clean_depth >= lo) & (pano.clean_depth < hi)].mean() for lo, hi in bins]
    assert means[0] < means[1] < means[2]
    expected = [np.sqrt(2 / np.pi) * (0.01 + 0.003 * ((lo + hi) / 2) ** 2) for lo, hi in bins]
    assert np.allclose(means, expected, rtol=0.25)


def test_mirrors_and_glass_present_when_enabled_absent_when_disabled():
    on = [_render(seed, size_hw=(96, 192), mirrors=(2, 2), glass=(2, 2)) for seed in (0, 1)]
    for pano in on:
        assert pano.metadata["mirrors"] >= 1 and pano.metadata["glass"] >= 1
    assert sum((p.labels == LABEL_MIRROR).sum() for p in on) > 0
    assert sum((p.labels == LABEL_GLASS).sum() for p in on) > 0
    for seed in (0, 1):
        off = _render(seed, mirrors=(0, 0), glass=(0, 0), chrome_fraction=0.0)
        assert off.metadata["mirrors"] == off.metadata["glass"] == 0
        assert not np.isin(off.labels, [LABEL_MIRROR, LABEL_GLASS]).any()


def test_glass_can_be_marked_invalid():
    pano = _render(0, size_hw=(96, 192), glass=(2, 2), glass_valid=False)
    glass = pano.labels == LABEL_GLASS
    assert glass.any() and not pano.valid[glass].any()


@pytest.mark.parametrize("shape", ["box", "l_shape", "rounded", "cylinder"])
def test_every_room_shape_renders(shape):
    pano = _render(3, size_hw=(32, 64), room_shapes=(shape,))
    assert pano.metadata["room_shape"] == shape and np.isfinite(pano.clean_depth).all()


def test_cli_writes_the_data_set(tmp_path):
    from edgeperc.cli import main

    out = tmp_path / "panos"
    assert main(["generate", "panoramas", "-o", str(out), "--count", "2", "--size", "32x64", "--seed", "7"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert [r["index"] for r in index["images"]] == [0, 1] and index["recipe"] == "default"
    for record in index["images"]:
        files = record["files"]
        rgb = cv2.imread(str(out / files["rgb"]))
        depth_mm = cv2.imread(str(out / files["depth_png_mm"]), cv2.IMREAD_UNCHANGED)
        depth_m = np.load(out / files["depth_npy_m"])
        valid = cv2.imread(str(out / files["valid"]), cv2.IMREAD_UNCHANGED)
        assert rgb.shape == (32, 64, 3) and depth_mm.dtype == np.uint16 and depth_m.dtype == np.float32
        assert np.array_equal(depth_mm, depth_to_mm(depth_m)) and np.array_equal(valid > 0, depth_m > 0)
        again = render_panorama(np.random.default_rng(record["seed"]), panorama_recipe("default", (32, 64)))
        assert np.array_equal(again.depth, depth_m)
    assert main(["generate", "panoramas", "-o", str(out), "--size", "32x48"]) == 3


def test_mirror_and_glass_depth_is_their_own_plane():
    """Colour comes from the reflected or transmitted scene, depth stays on the pane: the 3-D
    points of each pane's pixels lie on one plane (a scene with one mirror and one glass pane)."""
    from edgeperc.synth.panoramas import build_scene, render_scene

    recipe = PanoramaRecipe(size_hw=(96, 192), mirrors=(1, 1), glass=(1, 1), chrome_fraction=0.0)
    scene = build_scene(np.random.default_rng(8), recipe)
    pano = render_scene(scene, np.random.default_rng(0))
    x, y, z = panorama_directions(recipe.size_hw)
    yaw_c, yaw_s = np.cos(scene.camera_yaw), np.sin(scene.camera_yaw)
    points = np.stack([yaw_c * x - yaw_s * y, yaw_s * x + yaw_c * y, z], -1) * pano.clean_depth[..., None]
    for label in (LABEL_MIRROR, LABEL_GLASS):
        pane = points[pano.labels == label]
        assert len(pane) >= 20, label
        spread = np.linalg.svd(pane - pane.mean(0), compute_uv=False) / np.sqrt(len(pane))
        assert spread[2] < 0.005 and spread[1] > 0.05, (label, spread)  # flat, yet not a line
