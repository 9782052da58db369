"""Which implementation the pipelines use — chosen once per process and reported with its reason.

auto: "cuda" when the CUDA library loads and a GPU answers, else "opencv" (the host library is
for checking the kernel code on the CPU; OpenCV's SIMD code is the faster CPU path).
EDGEPERC_KERNELS_BACKEND=cuda|host|opencv forces one (an unavailable forced one is an error).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from edgeperc.errors import BackendUnavailableError, ConfigError

BACKENDS = ("cuda", "host", "opencv")


@dataclass(frozen=True)
class BackendChoice:
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"backend": self.name, "reason": self.reason}


@functools.cache
def select_backend() -> BackendChoice:
    from edgeperc.kernels.cuda import cuda_status
    from edgeperc.kernels.host import host_library

    forced = os.environ.get("EDGEPERC_KERNELS_BACKEND", "auto").strip().lower() or "auto"
    if forced not in BACKENDS + ("auto",):
        raise ConfigError(f"EDGEPERC_KERNELS_BACKEND must be one of auto, {', '.join(BACKENDS)}, got {forced!r}")
    if forced == "opencv":
        return BackendChoice("opencv", "forced by EDGEPERC_KERNELS_BACKEND")
    if forced == "host":
        host_library()  # raises BackendUnavailableError with the build command
        return BackendChoice("host", "forced by EDGEPERC_KERNELS_BACKEND")
    status = cuda_status()
    if status.usable:
        return BackendChoice("cuda", status.reason)
    if forced == "cuda":
        raise BackendUnavailableError(f"EDGEPERC_KERNELS_BACKEND=cuda but {status.reason}")
    return BackendChoice("opencv", status.reason)
