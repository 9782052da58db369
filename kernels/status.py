"""EpStatus codes of the C ABI and the named exception each one becomes."""

from __future__ import annotations

from edgeperc.errors import BackendUnavailableError, EdgepercError, InvalidInputError


class KernelInputError(InvalidInputError):
    """A kernel rejected its arguments (the C code checks before it touches any buffer)."""


class NullBufferError(KernelInputError):
    """A required buffer pointer was null."""


class BadShapeError(KernelInputError):
    """Zero/negative/too large sizes, wrong channel count, or a buffer smaller than its shape."""


class BadStrideError(KernelInputError):
    """A row stride smaller than width × channels (or absurdly large)."""


class TooManyRoisError(KernelInputError):
    """More RoIs than the configured maximum."""


class BadArgumentError(KernelInputError):
    """A non-finite or out-of-range scalar argument (std 0, NaN threshold, upsampling area...)."""


class CudaKernelError(EdgepercError):
    """A CUDA call failed at run time (not the caller's input)."""


class NoCudaDeviceError(BackendUnavailableError):
    """The CUDA library loaded but no usable GPU/driver is present."""


EXCEPTIONS: dict[int, type[EdgepercError]] = {
    1: NullBufferError,
    2: BadShapeError,
    3: BadStrideError,
    4: TooManyRoisError,
    5: BadArgumentError,
    6: CudaKernelError,
    7: NoCudaDeviceError,
}
NAMES = {0: "ok", 1: "null pointer", 2: "bad shape", 3: "bad stride", 4: "too many rois",
         5: "bad argument", 6: "cuda error", 7: "no cuda device"}


def raise_for_status(status: int, what: str, detail: str = "") -> None:
    """0 → return; any other code → its exception, naming the call and its arguments."""
    if status == 0:
        return
    cls = EXCEPTIONS.get(status, EdgepercError)
    name = NAMES.get(status, f"unknown status {status}")
    raise cls(f"{what}: {name}" + (f" ({detail})" if detail else ""))
