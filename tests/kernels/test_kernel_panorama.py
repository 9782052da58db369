"""Panorama input: resize + normalise + longitude wrap; host == numpy reference (1e-5) and within
1 LSB of cv2.resize(INTER_LINEAR) (which rounds to uint8 with 11-bit fixed-point weights)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.kernels import BadArgumentError, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kernels.helpers import frames, lsb_scale

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@SETTINGS
@given(frame=frames(max_side=40, channels=(1, 3)), out_h=st.integers(1, 50), out_w=st.integers(1, 50),
       pad=st.integers(0, 60))
def test_matches_reference_and_opencv(host, frame, out_h, out_w, pad):
    c = 1 if frame.ndim == 2 else frame.shape[2]
    mean, std = (MEAN, STD) if c == 3 else (0.5, 0.25)
    got = host.panorama_input(frame, (out_h, out_w), pad, mean=mean, std=std)
    assert got.shape == (c, out_h, out_w + 2 * pad) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference.panorama_input(frame, (out_h, out_w), pad, mean=mean, std=std),
                               rtol=0, atol=1e-5)
    ocv = reference.panorama_input_opencv(frame, (out_h, out_w), pad, mean=mean, std=std)
    lsb = lsb_scale(np.asarray(std, np.float32)).reshape(-1, 1, 1)
    assert np.all(np.abs(got - ocv) <= lsb + 1e-5)


def test_wrap_takes_the_opposite_edge(host):
    frame = np.tile(np.arange(8, dtype=np.uint8) * 10, (3, 1))
    out = host.panorama_input(frame, (3, 8), 3, scale=1.0, mean=0.0, std=1.0)[0]
    np.testing.assert_array_equal(out[:, :3], frame[:, -3:])   # left pad = rightmost columns
    np.testing.assert_array_equal(out[:, -3:], frame[:, :3])   # right pad = leftmost columns
    np.testing.assert_array_equal(out[:, 3:-3], frame)
    wide = host.panorama_input(frame, (3, 8), 19, scale=1.0, mean=0.0, std=1.0)[0]  # pad > width wraps again
    np.testing.assert_array_equal(wide, frame[:, (np.arange(8 + 38) - 19) % 8])


@pytest.mark.parametrize("shape, out_hw", [((960, 1920, 3), (512, 1024)), ((1, 1, 3), (4, 8)), ((512, 1024), (256, 512))])
def test_sizes(host, shape, out_hw):
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    got = host.panorama_input(frame, out_hw, 16)
    np.testing.assert_allclose(got, reference.panorama_input(frame, out_hw, 16), atol=1e-5)
    assert np.abs(got - reference.panorama_input_opencv(frame, out_hw, 16)).max() <= 1 / 255 + 1e-6


def test_bad_arguments(host):
    frame = np.zeros((4, 8, 3), np.uint8)
    with pytest.raises(BadArgumentError):
        host.panorama_input(frame, (4, 8), -1)
    with pytest.raises(BadArgumentError):
        host.panorama_input(frame, (4, 8), 2, std=0.0)
    with pytest.raises(BadArgumentError):
        host.panorama_input(frame, (4, 8), 2, mean=[0.1, 0.2])
