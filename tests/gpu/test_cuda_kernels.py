"""CUDA library vs the host library (bit for bit: same code, --fmad=false) and vs the references
(the same bounds as tests/kernels). Skipped with the reason where no GPU is usable."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.kernels import BadArgumentError, TooManyRoisError, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kernels.helpers import frames
from tests.kernels.test_kernel_mask import assert_same, prob_maps
from tests.kernels.test_kernel_roi_warp import NORM, matrices

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(frame=frames(), data=st.data())
def test_area_downsample(cuda, host, frame, data):
    out_hw = (data.draw(st.integers(1, frame.shape[0])), data.draw(st.integers(1, frame.shape[1])))
    got = cuda.area_downsample(frame, out_hw)
    np.testing.assert_array_equal(got, host.area_downsample(frame, out_hw))
    np.testing.assert_array_equal(got, reference.area_downsample_opencv(frame, out_hw).reshape(got.shape))
    np.testing.assert_array_equal(cuda.area_downsample_zero_copy(frame, out_hw), got)


@pytest.mark.parametrize("shape", [(8192, 8192), (6000, 8000, 3)])
def test_area_downsample_uhr(cuda, shape):
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    want = reference.area_downsample_opencv(frame, (256, 256))
    np.testing.assert_array_equal(cuda.area_downsample(frame, (256, 256)), want)
    np.testing.assert_array_equal(cuda.area_downsample_zero_copy(frame, (256, 256)), want)


@SETTINGS
@given(frame=frames(max_side=40), data=st.data())
def test_roi_warp_normalise(cuda, host, frame, data):
    m = data.draw(matrices(frame.shape[:2]))
    out_hw = (data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24)))
    got = cuda.roi_warp_normalise(frame, m, out_hw, pad=114.0, **NORM)
    np.testing.assert_array_equal(got, host.roi_warp_normalise(frame, m, out_hw, pad=114.0, **NORM))
    np.testing.assert_allclose(got, reference.roi_warp_normalise(frame, m, out_hw, pad=114.0, **NORM), atol=1e-5)
    half = cuda.roi_warp_normalise(frame, m, out_hw, pad=114.0, dtype=np.float16, **NORM)
    np.testing.assert_array_equal(half.view(np.uint16), got.astype(np.float16).view(np.uint16))


def test_roi_batch_of_16_at_400(cuda, host):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    m = np.array([[[0.5, 0.1, x], [-0.1, 0.5, y], [0, 0, 1]] for x, y in rng.uniform(-100, 1900, (16, 2))], np.float32)
    np.testing.assert_array_equal(cuda.roi_warp_normalise(frame, m, **NORM), host.roi_warp_normalise(frame, m, **NORM))


@SETTINGS
@given(prob=prob_maps(), erode_px=st.integers(0, 4), shape=st.sampled_from(["disk", "square"]))
def test_mask_components(cuda, host, prob, erode_px, shape):
    got = cuda.mask_components(prob, 0.5, erode_px, shape)
    assert_same(got, host.mask_components(prob, 0.5, erode_px, shape))
    assert_same(got, reference.mask_components(prob, 0.5, erode_px, shape))


def test_mask_components_large(cuda):
    rng = np.random.default_rng(2)
    prob = (rng.random((1200, 1600)) > 0.45).astype(np.float32)  # long, tangled components
    assert_same(cuda.mask_components(prob, 0.5, 1), reference.mask_components(prob, 0.5, 1))


@SETTINGS
@given(frame=frames(max_side=40, channels=(1, 3)), out_h=st.integers(1, 50), out_w=st.integers(1, 50),
       pad=st.integers(0, 60))
def test_panorama_input(cuda, host, frame, out_h, out_w, pad):
    got = cuda.panorama_input(frame, (out_h, out_w), pad)
    np.testing.assert_array_equal(got, host.panorama_input(frame, (out_h, out_w), pad))


def test_bad_input_raises_the_same_errors(cuda):
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TooManyRoisError):
        cuda.roi_warp_normalise(frame, np.stack([np.eye(3)] * 3), (4, 4), max_rois=2)
    with pytest.raises(BadArgumentError):
        cuda.area_downsample(frame, (9, 8))
    with pytest.raises(BadArgumentError):
        cuda.panorama_input(frame, (4, 4), 1, std=0.0)
