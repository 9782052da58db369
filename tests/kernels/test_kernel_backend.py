"""Backend selection: chosen once, with its reason; forced by EDGEPERC_KERNELS_BACKEND."""

from __future__ import annotations

import numpy as np
import pytest
from edgeperc.kernels.backend import select_backend
from edgeperc.kernels.cuda import cuda_status

from edgeperc import kernels
from edgeperc.errors import BackendUnavailableError, ConfigError


@pytest.fixture()
def fresh_choice():
    select_backend.cache_clear()
    yield
    select_backend.cache_clear()


def test_auto_picks_cuda_only_with_a_gpu(fresh_choice, host):
    choice = select_backend()
    status = cuda_status()
    assert choice.name == ("cuda" if status.usable else "opencv")
    assert choice.reason == status.reason and choice.reason
    assert select_backend() is choice  # decided once
    if not status.usable:
        assert "GPU" in choice.reason or "CUDA" in choice.reason


def test_forced_backends(fresh_choice, host, monkeypatch):
    monkeypatch.setenv("EDGEPERC_KERNELS_BACKEND", "host")
    assert select_backend().as_dict() == {"backend": "host", "reason": "forced by EDGEPERC_KERNELS_BACKEND"}
    select_backend.cache_clear()
    monkeypatch.setenv("EDGEPERC_KERNELS_BACKEND", "gpu-please")
    with pytest.raises(ConfigError):
        select_backend()
    if not cuda_status().usable:
        select_backend.cache_clear()
        monkeypatch.setenv("EDGEPERC_KERNELS_BACKEND", "cuda")
        with pytest.raises(BackendUnavailableError):
            select_backend()


def test_public_functions_agree_across_cpu_backends(host):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    np.testing.assert_array_equal(kernels.area_downsample(frame, (32, 40), backend="host"),
                                  kernels.area_downsample(frame, (32, 40), backend="opencv"))
    prob = rng.random((40, 50)).astype(np.float32)
    a = kernels.mask_components(prob, 0.7, 1, backend="host")
    b = kernels.mask_components(prob, 0.7, 1, backend="opencv")
    np.testing.assert_array_equal(a.boxes, b.boxes)
    with pytest.raises(ConfigError):
        kernels.area_downsample(frame, backend="fpga")
