"""Shared by tests/kernels, tests/gpu and tests/policy: build a CMake library once, and input strategies."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import pytest
from hypothesis import strategies as st

from edgeperc.errors import BackendUnavailableError

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def ensure_cmake_target(target: str, load: Callable[[], T], clear: Callable[[], None]) -> T:
    """``load()``, after building ``target`` with CMake (no nvcc needed) when it fails as missing;
    ``clear`` drops the loader's cache before the second try."""
    try:
        return load()
    except BackendUnavailableError as first:
        missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
        if missing:
            pytest.skip(f"{target} not built and {', '.join(missing)} not found ({first})")
    build = ROOT / "build"
    steps = [["cmake", "--build", str(build), "--target", target, "-j2"]]
    if not (build / "CMakeCache.txt").exists():
        steps.insert(0, ["cmake", "-S", str(ROOT), "-B", str(build)])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(step)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    clear()
    return load()


def ensure_host_library():
    """The host KernelLibrary; builds it with CMake (host target only) when missing."""
    from edgeperc.kernels.host import host_library
    from edgeperc.kernels.library import load

    def clear() -> None:
        load.cache_clear()
        host_library.cache_clear()

    return ensure_cmake_target("edgeperc_kernels_host", host_library, clear)


@st.composite
def frames(draw, max_side: int = 48, channels=(1, 3, 4), smooth: bool = False):
    """uint8 frames (H, W) or (H, W, C), sometimes a strided crop of a bigger frame, sometimes flat."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    c = draw(st.sampled_from(channels))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    margin = draw(st.sampled_from([0, 0, 3]))
    big = rng.integers(0, 256, (h + margin, w + 2 * margin, c), dtype=np.uint8)
    if smooth:
        big = cv2.GaussianBlur(big, (0, 0), 6).reshape(big.shape)
    elif draw(st.booleans()):
        big = (big // 128 * 255).astype(np.uint8)  # hard edges: worst case for rounding
    frame = big[margin:, margin : margin + w]  # a view with a wider row stride when margin > 0
    if c == 1 and draw(st.booleans()):
        frame = frame[:, :, 0]
    return frame


def lsb_scale(std: float, scale: float = 1 / 255) -> float:
    """One 0..255 step after normalisation (v * scale - mean) / std."""
    return scale / std
