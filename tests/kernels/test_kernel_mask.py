"""Mask post-processing: threshold + erosion + 8-connected boxes, bit-exact vs cv2 (erode,
connectedComponentsWithStats), and the boxes masks_to_boxes' contours would give."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from edgeperc.kernels import BadArgumentError, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeperc.errors import InvalidInputError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def prob_maps(draw, max_side: int = 48):
    """Blobs (blurred noise), thin diagonal lines (8- but not 4-connected), or salt, in float32."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["blobs", "lines", "salt"]))
    if kind == "blobs":
        p = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), draw(st.sampled_from([0.8, 1.5, 3.0])))
        p = (p - p.min()) / (np.ptp(p) + 1e-6)
    elif kind == "lines":
        p = np.zeros((h, w), np.float32)
        for _ in range(draw(st.integers(1, 6))):
            x, y, n = rng.integers(0, w), rng.integers(0, h), rng.integers(1, 30)
            for k in range(n):
                if 0 <= y + k < h and 0 <= x + k < w:
                    p[y + k, x + k] = 0.9
    else:
        p = (rng.random((h, w)) > draw(st.sampled_from([0.5, 0.8, 0.95]))).astype(np.float32)
    return p


def assert_same(got, want):
    np.testing.assert_array_equal(got.eroded, want.eroded)
    np.testing.assert_array_equal(got.boxes, want.boxes)
    np.testing.assert_array_equal(got.areas, want.areas)
    np.testing.assert_array_equal(got.labels, want.labels)
    assert got.boxes.dtype == np.int32 and got.boxes.shape == (len(got.areas), 4)


@SETTINGS
@given(prob=prob_maps(), erode_px=st.integers(0, 4), shape=st.sampled_from(["disk", "square"]),
       threshold=st.sampled_from([0.3, 0.5, 0.7]))
def test_matches_opencv_exactly(host, prob, erode_px, shape, threshold):
    assert_same(host.mask_components(prob, threshold, erode_px, shape),
                reference.mask_components(prob, threshold, erode_px, shape))


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8, 13, 21, 34, 40])
def test_disk_is_opencvs_ellipse(host, radius):
    """Eroding a single hole paints the reflected structuring element around it."""
    side = 2 * radius + 5
    prob = np.ones((side, side), np.float32)
    prob[side // 2, side // 2] = 0
    got = host.mask_components(prob, 0.5, radius, "disk")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    hole = 1 - got.eroded[2 : 2 + 2 * radius + 1, 2 : 2 + 2 * radius + 1]
    np.testing.assert_array_equal(hole, kernel[::-1, ::-1])
    assert_same(got, reference.mask_components(prob, 0.5, radius, "disk"))


def test_many_components_grow_the_box_buffer(host):
    prob = np.zeros((90, 90), np.float32)
    prob[::2, ::2] = 1  # 2025 isolated pixels: more than the first buffer holds
    got = host.mask_components(prob, 0.5, 0)
    assert len(got.boxes) == 45 * 45
    assert_same(got, reference.mask_components(prob, 0.5, 0))


def test_boxes_are_what_masks_to_boxes_contours_bound():
    """Same thresholding/erosion as masks_to_boxes: each component's box = its external contour's."""
    from edgeperc.kernels.host import host_library

    prob = np.zeros((120, 160), np.float32)
    for x0, y0, x1, y1 in [(10, 10, 60, 30), (62, 10, 90, 30), (20, 50, 140, 70), (100, 90, 150, 115)]:
        prob[y0:y1, x0:x1] = 0.9
    got = host_library().mask_components(prob, 0.5, 2, "disk")
    eroded = cv2.erode((prob > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    contours, _ = cv2.findContours(eroded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rects = sorted((x, y, x + w, y + h) for x, y, w, h in map(cv2.boundingRect, contours))
    assert sorted(map(tuple, got.boxes.tolist())) == rects
    assert len(rects) == 4  # the two touching boxes were split by the erosion


def test_bad_arguments(host):
    with pytest.raises(BadArgumentError):
        host.mask_components(np.zeros((4, 4), np.float32), float("nan"))
    with pytest.raises(BadArgumentError):
        host.mask_components(np.zeros((4, 4), np.float32), 0.5, -1)
    with pytest.raises(BadArgumentError):
        host.mask_components(np.zeros((4, 4), np.float32), 0.5, 1, "ellipse")
    with pytest.raises(InvalidInputError):
        host.mask_components(np.zeros((0, 4), np.float32))
    with pytest.raises(InvalidInputError):
        host.mask_components(np.zeros((4, 4, 1), np.float32))
