"""RoI crop-warp-normalise: host library vs the numpy reference (1e-5) and cv2.warpPerspective (1 LSB)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from edgeperc.kernels import BadArgumentError, TooManyRoisError, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kernels.helpers import frames, lsb_scale

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ONE_TO_FOUR = st.integers(1, 4)
KINDS = ("affine", "perspective", "off", "degenerate", "huge", "tiny")
NORM = {"scale": 1 / 255, "mean": 0.45, "std": 0.225}


@st.composite
def matrices(draw, frame_hw, count=ONE_TO_FOUR, kinds=KINDS):
    """Output→source matrices: affine, perspective, off the frame, degenerate (w ≈ 0), huge/tiny scale."""
    h, w = frame_hw
    out = []
    for _ in range(draw(count)):
        kind = draw(st.sampled_from(kinds))
        f = st.floats(-1, 1, allow_nan=False, width=32)
        if kind == "degenerate":
            m = [draw(f) for _ in range(6)] + [draw(st.floats(-1e-13, 1e-13)), 0.0, 0.0]
        else:
            s = {"huge": 40.0, "tiny": 0.01}.get(kind, 1.0)
            tx = draw(st.floats(-0.5 * w, 1.5 * w, width=32)) + (10 * w if kind == "off" else 0)
            ty = draw(st.floats(-0.5 * h, 1.5 * h, width=32))
            m = [s * (1 + 0.3 * draw(f)), s * 0.3 * draw(f), tx, s * 0.3 * draw(f), s * (1 + 0.3 * draw(f)), ty,
                 0.0, 0.0, 1.0]
            if kind == "perspective":
                m[6], m[7] = 2e-3 * draw(f), 2e-3 * draw(f)
        out.append(m)
    return np.asarray(out, np.float32).reshape(-1, 3, 3)


@SETTINGS
@given(frame=frames(max_side=40), data=st.data())
def test_matches_reference(host, frame, data):
    m = data.draw(matrices(frame.shape[:2]))
    out_hw = (data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24)))
    pad = data.draw(st.sampled_from([0.0, 114.0, 255.0]))
    got = host.roi_warp_normalise(frame, m, out_hw, pad=pad, **NORM)
    want = reference.roi_warp_normalise(frame, m, out_hw, pad=pad, **NORM)
    assert got.shape == (len(m), 1 if frame.ndim == 2 else frame.shape[2], *out_hw)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    half = host.roi_warp_normalise(frame, m, out_hw, pad=pad, dtype=np.float16, **NORM)
    np.testing.assert_array_equal(half.view(np.uint16), got.astype(np.float16).view(np.uint16))


@settings(max_examples=40, deadline=None)
@given(frame=frames(max_side=64, channels=(1, 3), smooth=True), data=st.data())
def test_within_one_lsb_of_opencv_on_smooth_frames(host, frame, data):
    """OpenCV snaps coordinates to 1/32 px and rounds to uint8: ≤ 1 LSB where the image is smooth."""
    h, w = frame.shape[:2]
    m = data.draw(matrices((h, w), count=st.just(2), kinds=("affine", "off", "huge", "tiny")))
    got = host.roi_warp_normalise(frame, m, (20, 30), pad=114.0, **NORM)
    want = reference.roi_warp_normalise_opencv(frame, m, (20, 30), pad=114.0, **NORM)
    assert np.abs(got - want).max() <= 1.0 * lsb_scale(NORM["std"]) + 1e-5


def test_rois_partly_and_fully_outside_are_padded(host):
    frame = np.full((50, 60, 3), 200, np.uint8)
    shift = np.array([[[1, 0, 40], [0, 1, 30], [0, 0, 1]], [[1, 0, 1e4], [0, 1, 0], [0, 0, 1]]], np.float32)
    out = host.roi_warp_normalise(frame, shift, (40, 40), scale=1.0, mean=0.0, std=1.0, pad=7.0)
    assert np.all(out[0, :, :19, :19] == 200) and np.all(out[0, :, 21:, :] == 7) and np.all(out[0, :, :, 21:] == 7)
    assert np.all(out[1] == 7)
    np.testing.assert_array_equal(out, reference.roi_warp_normalise(frame, shift, (40, 40), 1.0, 0.0, 1.0, 7.0))


def test_identity_reproduces_the_normalised_frame(host):
    frame = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = host.roi_warp_normalise(frame, np.eye(3), (37, 53), mean=mean, std=std)
    want = ((frame / np.float32(255) - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)
    np.testing.assert_allclose(out[0], want, atol=1e-5)


def test_bad_arguments(host):
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TooManyRoisError):
        host.roi_warp_normalise(frame, np.stack([np.eye(3)] * 5), (4, 4), max_rois=4)
    with pytest.raises(BadArgumentError):
        host.roi_warp_normalise(frame, np.full((3, 3), np.nan), (4, 4))
    with pytest.raises(BadArgumentError):
        host.roi_warp_normalise(frame, np.eye(3), (4, 4), std=[1, 0, 1])
    with pytest.raises(BadArgumentError):
        host.roi_warp_normalise(frame, np.eye(3), (4, 4), dtype=np.int32)
    assert host.roi_warp_normalise(frame, np.zeros((0, 3, 3)), (4, 4)).shape == (0, 3, 4, 4)


def test_opencv_reference_is_warpperspective():
    frame = np.random.default_rng(5).integers(0, 256, (30, 40), dtype=np.uint8)
    m = np.array([[0.9, 0.1, 3], [-0.1, 1.1, 2], [1e-3, 0, 1]], np.float32)
    want = cv2.warpPerspective(frame, m.astype(np.float64), (20, 10), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    got = reference.roi_warp_normalise_opencv(frame, m, (10, 20), scale=1.0, mean=0.0, std=1.0)
    np.testing.assert_array_equal(got[0, 0], want.astype(np.float32))
