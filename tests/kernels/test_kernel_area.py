"""Area downsample: host library == numpy reference == cv2.resize(INTER_AREA), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.kernels import reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeperc.errors import InvalidInputError
from tests.kernels.helpers import frames

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(host, frame, out_hw):
    got = host.area_downsample(frame, out_hw)
    np.testing.assert_array_equal(got, reference.area_downsample(frame, out_hw))
    np.testing.assert_array_equal(got, reference.area_downsample_opencv(frame, out_hw).reshape(got.shape))
    assert got.shape[:2] == tuple(out_hw) and got.ndim == frame.ndim


@SETTINGS
@given(frame=frames(), data=st.data())
def test_any_ratio_matches_opencv_exactly(host, frame, data):
    out_h = data.draw(st.integers(1, frame.shape[0]))
    out_w = data.draw(st.integers(1, frame.shape[1]))
    _check(host, frame, (out_h, out_w))


@SETTINGS
@given(frame=frames(max_side=12), fy=st.integers(1, 6), fx=st.integers(1, 6))
def test_integer_factors_take_opencvs_fast_path(host, frame, fy, fx):
    """Exact factors: integer sums, (sum + 2) >> 2 for 2x2, sum * (1/area) rounded otherwise."""
    big = np.repeat(np.repeat(frame, fy, axis=0), fx, axis=1)
    big = big ^ np.arange(big.size, dtype=np.uint8).reshape(big.shape)  # not blockwise constant
    _check(host, big, frame.shape[:2])


@pytest.mark.parametrize("shape, out_hw", [((1, 1), (1, 1)), ((1, 1, 3), (1, 1)), ((1, 97), (1, 5)),
                                           ((500, 700), (1, 1)), ((333, 517, 3), (256, 256)),
                                           ((1024, 768, 3), (256, 256)), ((257, 256), (256, 256))])
def test_edge_shapes(host, shape, out_hw):
    frame = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    _check(host, frame, out_hw)


def test_crop_view_is_read_in_place(host):
    frame = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    crop = frame[17:250, 31:333]
    assert not crop.flags.c_contiguous
    _check(host, crop, (64, 97))


def test_upsampling_is_refused(host):
    with pytest.raises(InvalidInputError, match="out must be <= in"):
        host.area_downsample(np.zeros((10, 10), np.uint8), (11, 10))
