from __future__ import annotations

import pytest

from tests.kernels.helpers import ensure_host_library


@pytest.fixture(scope="session")
def host():
    return ensure_host_library()


@pytest.fixture(scope="session")
def cuda():
    """The CUDA kernel library; skips with the reason (no library, no driver, no device)."""
    from edgeperc.kernels.cuda import cuda_library, cuda_status

    status = cuda_status()
    if not status.usable:
        pytest.skip(f"no usable GPU for the CUDA kernels: {status.reason}")
    return cuda_library()
