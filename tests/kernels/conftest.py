from __future__ import annotations

import pytest

from tests.kernels.helpers import ensure_host_library


@pytest.fixture(scope="session")
def host():
    """The host kernel library (built with CMake on first use if needed)."""
    return ensure_host_library()
