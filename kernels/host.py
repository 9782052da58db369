"""The host library (same kernel code built with the C++ compiler): for checking, and for
machines without a GPU when OpenCV is not wanted."""

from __future__ import annotations

import functools

from edgeperc.kernels.bindings import KernelLibrary
from edgeperc.kernels.library import HOST_LIB, load


@functools.cache
def host_library() -> KernelLibrary:
    """Raises BackendUnavailableError (with the build command) when the library is not built."""
    return KernelLibrary(load(HOST_LIB), "ep_", "", "host")
