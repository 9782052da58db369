"""Pure pre/post functions against plain numpy references."""

import numpy as np
import pytest
from edgeperc.profiling.latency import summarise_ms

from edgeperc.errors import InvalidInputError
from edgeperc.manifest import Normalisation
from edgeperc.models import metrics
from edgeperc.preprocess import normalise_images, to_rgb


def test_normalise_grey_matches_reference():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 5, 7), dtype=np.uint8)
    out = normalise_images(images, Normalisation(scale=1 / 255, mean=[0.5], std=[0.25]))
    reference = ((images / 255.0 - 0.5) / 0.25)[:, None].astype(np.float32)
    assert out.shape == (2, 1, 5, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, channels", [((2, 37, 41, 3), 3), ((1, 16, 16), 1), ((3, 9, 5, 1), 1)])
def test_uint8_lookup_path_is_bit_identical_to_the_float_formula(shape, channels):
    """uint8 images go through a 256-entry table per channel; float images through the formula:
    the same pixels must give the same float32 bits either way."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    norm = Normalisation(scale=1 / 255, mean=[0.485, 0.456, 0.406][:channels], std=[0.229, 0.224, 0.225][:channels])
    out = normalise_images(images, norm)
    as_float = normalise_images(images.astype(np.float32), norm)  # the formula's path
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"] and out.shape == as_float.shape
    np.testing.assert_array_equal(out, as_float)


def test_normalise_rgb_per_channel():
    images = np.zeros((1, 2, 2, 3), np.uint8)
    images[..., 0], images[..., 1], images[..., 2] = 255, 0, 51
    out = normalise_images(images, Normalisation(mean=[1.0, 0.0, 0.1], std=[1.0, 2.0, 0.5], color="rgb"))
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 0.0, 0.2], atol=1e-6)


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 3), np.uint8), "shape"),
    (np.zeros((1, 4, 4, 3), np.uint8), "3-channel"),
    (np.full((1, 4, 4), np.nan, np.float32), "NaN"),
])
def test_normalise_refuses(images, message):
    norm = Normalisation(mean=[0.5, 0.5], std=[0.5, 0.5]) if message == "3-channel" else Normalisation()
    with pytest.raises(InvalidInputError, match=message):
        normalise_images(images, norm)


def test_to_rgb_flips_last_axis():
    assert to_rgb(np.array([[1, 2, 3]]))[0].tolist() == [3, 2, 1]


def test_mask_iou_reference():
    prob = np.zeros((2, 1, 4, 4), np.float32)
    truth = np.zeros((2, 4, 4), np.uint8)
    prob[0, 0, :2, :2] = 0.9  # 4 predicted
    truth[0, :2, :4] = 1  # 8 true, 4 overlap -> 0.5
    assert metrics.mask_iou(prob, truth) == pytest.approx((0.5 + 1.0) / 2)  # image 2: empty vs empty = 1


def test_depth_metrics_reference():
    truth = np.array([[[1.0, 2.0], [4.0, 8.0]]], np.float32)
    pred = np.array([[[[1.1, 3.0], [4.0, 6.0]]]], np.float32)
    from edgeperc.evaluation.depth_metrics import depth_errors

    errors = depth_errors(pred[:, 0], truth)
    assert errors["delta1"] == pytest.approx(0.5)  # 3.0/2.0 = 1.5 and 8/6 = 1.33 fail
    assert errors["abs_rel"] == pytest.approx(np.mean([0.1, 0.5, 0.0, 0.25]))


def test_drift_and_agreement():
    ref = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert metrics.output_drift(ref, ref)["max_abs_error"] == 0 and metrics.output_drift(ref, ref)["cosine"] == pytest.approx(1)
    assert metrics.output_drift(ref, -ref)["cosine"] == pytest.approx(-1)
    assert metrics.top1_agreement(ref, ref[:, ::-1]) == 0.0
    assert metrics.mask_agreement(ref, np.array([[0.2, 0.7], [0.1, 0.3]])) == 0.75


def test_latency_percentiles_reference():
    samples = np.arange(1, 101, dtype=float)
    stats = summarise_ms(samples)
    assert stats.median_ms == pytest.approx(50.5) and stats.p99_ms == pytest.approx(np.percentile(samples, 99))
    assert stats.runs == 100 and stats.min_ms == 1 and stats.max_ms == 100
    with pytest.raises(ValueError):
        summarise_ms([])
