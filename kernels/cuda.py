"""The CUDA library, and whether a GPU is usable here — decided once per process.

The library links the CUDA runtime statically, so loading it needs no toolkit; the first CUDA
call (cudaGetDeviceCount) tells whether a driver and a device are present.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np
from edgeperc.kernels.bindings import KernelLibrary, _frame_args
from edgeperc.kernels.library import CUDA_LIB, load
from edgeperc.kernels.params import as_frame, check_out_hw
from edgeperc.kernels.status import raise_for_status

from edgeperc.errors import BackendUnavailableError


@dataclass(frozen=True)
class CudaStatus:
    usable: bool
    reason: str
    devices: int = 0


@functools.cache
def cuda_status() -> CudaStatus:
    try:
        lib = load(CUDA_LIB)
    except BackendUnavailableError as exc:
        return CudaStatus(False, f"CUDA library unavailable: {exc}")
    count = ctypes.c_int32(0)
    if lib.ep_cuda_device_count(ctypes.addressof(count)) != 0:
        return CudaStatus(False, f"no usable GPU: {lib.ep_cuda_last_error().decode(errors='replace')}")
    return CudaStatus(True, f"{count.value} CUDA device(s)", count.value)


class CudaKernelLibrary(KernelLibrary):
    def area_downsample_zero_copy(self, frame: np.ndarray, out_hw: tuple[int, int] = (256, 256)) -> np.ndarray:
        """area_downsample reading the frame in place (page-locked and mapped; Jetson zero-copy)."""
        array, was_2d = as_frame(frame)
        out_h, out_w = check_out_hw(out_hw)
        out = np.empty((out_h, out_w, array.shape[2]), np.uint8)
        status = self._lib.ep_cuda_area_downsample_u8_zero_copy(*_frame_args(array), out_h, out_w, out.ctypes.data, out.nbytes)
        raise_for_status(status, "cuda area_downsample_zero_copy", self.last_error())
        return out[..., 0] if was_2d else out

    def last_error(self) -> str:
        return self._lib.ep_cuda_last_error().decode(errors="replace")

    def _call(self, base: str, args: list, detail: str) -> None:
        try:
            super()._call(base, args, detail)
        except BackendUnavailableError as exc:
            raise type(exc)(f"{exc}: {self.last_error()}") from None


@functools.cache
def cuda_library() -> CudaKernelLibrary:
    """The CUDA kernels (host-pointer entry points); BackendUnavailableError says why not."""
    status = cuda_status()
    if not status.usable:
        raise BackendUnavailableError(status.reason)
    return CudaKernelLibrary(load(CUDA_LIB), "ep_cuda_", "_host", "cuda")
