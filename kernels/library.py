"""Find and load the kernel shared libraries with ctypes (no compiler or CUDA needed to import).

Search order: $EDGEPERC_KERNELS_LIB (the library file, or a folder holding it), then build/ of
this checkout (where `cmake -S . -B build` puts it), then this package's folder (a Jetson
install can copy the .so files there).
"""

from __future__ import annotations

import ctypes
import functools
import os
from ctypes import c_float, c_int32, c_int64, c_void_p
from pathlib import Path

from edgeperc.errors import BackendUnavailableError

HOST_LIB = "libedgeperc_kernels_host.so"
CUDA_LIB = "libedgeperc_kernels_cuda.so"
ABI_VERSION = 1
ROOT = Path(__file__).resolve().parents[1]
BUILD_HINT = "build it with `cmake -S . -B build && cmake --build build -j2` in the repository root, or set EDGEPERC_KERNELS_LIB to its path"

_P, _I, _L, _F = c_void_p, c_int32, c_int64, c_float
_FRAME = [_P, _L, _I, _I, _L, _I]  # src, src_bytes, height, width, row_stride, channels
_ARGS = {
    "area_downsample_u8": _FRAME + [_I, _I, _P, _L],
    "roi_warp_normalise": _FRAME + [_P, _I, _I, _I, _I, _P, _P, _P, _F, _I, _P, _L],
    "mask_components": [_P, _L, _I, _I, _L, _F, _I, _I, _I, _P, _P, _P, _P, _L],
    "panorama_input": _FRAME + [_I, _I, _I, _P, _P, _P, _P, _L],
}


def search_paths(name: str) -> list[Path]:
    paths = []
    env = os.environ.get("EDGEPERC_KERNELS_LIB")
    if env:
        given = Path(env)
        paths.append(given / name if given.is_dir() else (given if given.name == name else given.parent / name))
    paths += [ROOT / "build" / name, Path(__file__).resolve().parent / name]
    return paths


def find_library(name: str) -> Path:
    paths = search_paths(name)
    found = next((p for p in paths if p.is_file()), None)
    if found is None:
        raise BackendUnavailableError(f"{name} not found (looked in {', '.join(str(p.parent) for p in paths)}): {BUILD_HINT}")
    return found


def _declare(lib: ctypes.CDLL, prefix: str, suffix: str) -> None:
    lib.ep_abi_version.restype = c_int32
    lib.ep_status_name.restype = ctypes.c_char_p
    lib.ep_status_name.argtypes = [c_int32]
    for base, args in _ARGS.items():
        fn = getattr(lib, f"{prefix}{base}{suffix}")
        fn.argtypes, fn.restype = args, c_int32


def open_library(name: str, abi_symbol: str, abi_version: int) -> ctypes.CDLL:
    """Find and open ``name``; BackendUnavailableError (with the build command) when it is missing,
    does not load, or reports another ABI than ``abi_version`` through ``abi_symbol()``."""
    path = find_library(name)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise BackendUnavailableError(f"cannot load {path}: {exc}") from exc
    abi = getattr(lib, abi_symbol)
    abi.restype = c_int32
    if abi() != abi_version:
        raise BackendUnavailableError(f"{path} has ABI {abi()}, expected {abi_version}: rebuild it ({BUILD_HINT})")
    return lib


@functools.cache
def load(name: str) -> ctypes.CDLL:
    """Load (once) and declare the C ABI; refuses a library built from other headers."""
    lib = open_library(name, "ep_abi_version", ABI_VERSION)
    if name == CUDA_LIB:
        _declare(lib, "ep_cuda_", "_host")
        extra = {"mask_components": [_P, _L, _P]}  # workspace, workspace_bytes, then the stream
        for base, args in _ARGS.items():  # device-pointer variants: same arguments + stream
            fn = getattr(lib, f"ep_cuda_{base}")
            fn.argtypes, fn.restype = args + extra.get(base, []) + [_P], c_int32
        lib.ep_cuda_mask_workspace_bytes.argtypes, lib.ep_cuda_mask_workspace_bytes.restype = [_I, _I], c_int64
        lib.ep_cuda_area_downsample_u8_zero_copy.argtypes = _ARGS["area_downsample_u8"]
        lib.ep_cuda_area_downsample_u8_zero_copy.restype = c_int32
        lib.ep_cuda_device_count.argtypes, lib.ep_cuda_device_count.restype = [c_void_p], c_int32
        lib.ep_cuda_last_error.argtypes, lib.ep_cuda_last_error.restype = [], ctypes.c_char_p
    else:
        _declare(lib, "ep_", "")
    return lib
