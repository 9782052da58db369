"""Bad input through the C ABI itself (null, zero-sized, short buffers, strides, RoI counts) comes
back as a status code and becomes a named exception; a missing library says how to build it."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from edgeperc.kernels import (
    BadArgumentError,
    BadShapeError,
    BadStrideError,
    NullBufferError,
    TooManyRoisError,
)
from edgeperc.kernels.library import HOST_LIB, find_library, load
from edgeperc.kernels.status import NAMES, raise_for_status

from edgeperc.errors import BackendUnavailableError, InvalidInputError

FRAME = np.zeros((10, 12, 3), np.uint8)
OUT = np.zeros((4, 4, 3), np.uint8)
ROI_OUT = np.zeros((2, 3, 4, 4), np.float32)
M = np.stack([np.eye(3, dtype=np.float32)] * 2)
ONES = np.ones(3, np.float32)
ZEROS = np.zeros(3, np.float32)
PROB = np.zeros((6, 7), np.float32)
BOXES = np.zeros((4, 5), np.int32)
LABELS = np.zeros(42, np.int32)
COUNT = ctypes.c_int32(0)  # module-level: every pointer below must outlive the calls


def _p(a):
    return a.ctypes.data


def area(**kw):
    args = {"src": _p(FRAME), "src_bytes": FRAME.nbytes, "h": 10, "w": 12, "stride": 36, "c": 3,
            "oh": 4, "ow": 4, "out": _p(OUT), "out_bytes": OUT.nbytes}
    return "area_downsample_u8", list((args | kw).values())


def roi(**kw):
    args = {"src": _p(FRAME), "src_bytes": FRAME.nbytes, "h": 10, "w": 12, "stride": 36, "c": 3,
            "m": _p(M), "n": 2, "max_rois": 2, "oh": 4, "ow": 4, "scale": _p(ONES), "mean": _p(ZEROS),
            "std": _p(ONES), "pad": 0.0, "dtype": 0, "out": _p(ROI_OUT), "out_bytes": ROI_OUT.nbytes}
    return "roi_warp_normalise", list((args | kw).values())


def mask(**kw):
    args = {"prob": _p(PROB), "elems": PROB.size, "h": 6, "w": 7, "stride": 7, "thr": 0.5, "r": 1,
            "shape": 0, "max_boxes": 4, "boxes": _p(BOXES), "n": ctypes.addressof(COUNT),
            "eroded": None, "labels": None, "aux": 0}
    return "mask_components", list((args | kw).values())


CASES = [
    (area(), None), (area(src=None), NullBufferError), (area(out=None), NullBufferError),
    (area(h=0), BadShapeError), (area(w=-3), BadShapeError), (area(c=2), BadShapeError),
    (area(stride=35), BadStrideError), (area(src_bytes=FRAME.nbytes - 1), BadShapeError),
    (area(out_bytes=OUT.nbytes - 1), BadShapeError), (area(oh=11), BadArgumentError),
    (roi(), None), (roi(n=3), TooManyRoisError), (roi(max_rois=0), BadArgumentError),
    (roi(m=None), NullBufferError), (roi(std=_p(ZEROS)), BadArgumentError), (roi(dtype=9), BadArgumentError),
    (roi(out_bytes=ROI_OUT.nbytes - 4), BadShapeError), (roi(pad=float("inf")), BadArgumentError),
    (roi(stride=12), BadStrideError),
    (mask(), None), (mask(prob=None), NullBufferError), (mask(n=None), NullBufferError),
    (mask(boxes=None), NullBufferError), (mask(elems=41), BadShapeError), (mask(stride=6), BadStrideError),
    (mask(thr=float("nan")), BadArgumentError), (mask(shape=5), BadArgumentError),
    (mask(labels=_p(LABELS), aux=41), BadShapeError), (mask(h=0), BadShapeError),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_c_abi_rejects_bad_input(host, call, expected):
    name, args = call
    status = getattr(load(HOST_LIB), f"ep_{name}")(*args)
    if expected is None:
        assert status == 0
        return
    with pytest.raises(expected) as info:
        raise_for_status(status, name)
    assert isinstance(info.value, InvalidInputError)


def test_status_names_match_the_library(host):
    lib = load(HOST_LIB)
    assert {code: lib.ep_status_name(code).decode() for code in NAMES} == NAMES


@pytest.mark.parametrize("frame", [np.zeros((4, 4), np.float32), np.zeros((0, 4), np.uint8),
                                   np.zeros((4, 4, 2), np.uint8), [[1, 2]]])
def test_python_side_rejects_bad_frames(host, frame):
    with pytest.raises(InvalidInputError):
        host.area_downsample(frame, (2, 2))


def test_missing_library_names_the_build_command(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEPERC_KERNELS_LIB", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match=r"cmake -S \. -B build"):
        find_library("libedgeperc_kernels_absent.so")


def test_env_var_points_at_the_library(host, monkeypatch):
    built = find_library(HOST_LIB)
    monkeypatch.setenv("EDGEPERC_KERNELS_LIB", str(built))
    assert find_library(HOST_LIB) == built
    monkeypatch.setenv("EDGEPERC_KERNELS_LIB", str(built.parent))
    assert find_library(HOST_LIB) == built
