"""Pre/post-processing kernels: CUDA for the device, the same code built for the host to check
it, and numpy/OpenCV references with the same signatures (edgeperc.kernels.reference).

The functions below run on the backend `select_backend()` picks once per process (or the one
named by `backend=`): "cuda" (GPU present), "host" (kernel code on the CPU), "opencv".
"""

from __future__ import annotations

from edgeperc.kernels import reference
from edgeperc.kernels.backend import BackendChoice, select_backend
from edgeperc.kernels.reference import MaskComponents
from edgeperc.kernels.status import (
    BadArgumentError,
    BadShapeError,
    BadStrideError,
    CudaKernelError,
    KernelInputError,
    NoCudaDeviceError,
    NullBufferError,
    TooManyRoisError,
)

__all__ = [
    "BackendChoice", "BadArgumentError", "BadShapeError", "BadStrideError", "CudaKernelError", "KernelInputError",
    "MaskComponents", "NoCudaDeviceError", "NullBufferError", "TooManyRoisError", "area_downsample", "implementation",
    "mask_components", "panorama_input", "reference", "roi_warp_normalise", "select_backend",
]


def implementation(backend: str | None = None):
    """The object whose methods/functions run the kernels on `backend` (default: select_backend())."""
    name = backend or select_backend().name
    if name == "cuda":
        from edgeperc.kernels.cuda import cuda_library

        return cuda_library()
    if name == "host":
        from edgeperc.kernels.host import host_library

        return host_library()
    if name == "opencv":
        return _OPENCV
    from edgeperc.errors import ConfigError

    raise ConfigError(f"backend must be cuda, host or opencv, got {backend!r}")


class _OpenCV:
    area_downsample = staticmethod(reference.area_downsample_opencv)
    roi_warp_normalise = staticmethod(reference.roi_warp_normalise_opencv)
    mask_components = staticmethod(reference.mask_components_opencv)
    panorama_input = staticmethod(reference.panorama_input_opencv)


_OPENCV = _OpenCV()


def area_downsample(frame, out_hw=(256, 256), *, backend: str | None = None):
    """(H, W[, C]) uint8 frame → (out_h, out_w[, C]) uint8, OpenCV INTER_AREA semantics (out ≤ in)."""
    return implementation(backend).area_downsample(frame, out_hw)


def roi_warp_normalise(frame, matrices, out_hw=(400, 400), scale=1 / 255, mean=0.0, std=1.0, pad=0.0,
                       dtype="float32", max_rois=64, *, backend: str | None = None):
    """Frame + (N, 3, 3) output→source matrices → (N, C, out_h, out_w) network input (float32/16)."""
    return implementation(backend).roi_warp_normalise(frame, matrices, out_hw, scale, mean, std, pad, dtype, max_rois)


def mask_components(prob, threshold=0.5, erode_px=2, shape="disk", *, backend: str | None = None):
    """(H, W) probabilities → MaskComponents: threshold, erosion, 8-connected boxes.

    On the GPU the labelling is union-find (fixed number of launches whatever the component
    shapes; label propagation needs one sweep per pixel of the longest path) and the boxes an
    atomic min/max reduction, so the host receives final boxes.
    """
    return implementation(backend).mask_components(prob, threshold, erode_px, shape)


def panorama_input(frame, out_hw=(512, 1024), pad_cols=0, scale=1 / 255, mean=0.0, std=1.0, *,
                   backend: str | None = None):
    """(H, W[, C]) uint8 → (C, out_h, out_w + 2·pad_cols) float32 with longitude wrap."""
    return implementation(backend).panorama_input(frame, out_hw, pad_cols, scale, mean, std)
