"""Pure pieces of the scanner around the stages: windows, cutting, image reading."""

import cv2
import numpy as np
import pytest
from edgeperc.runtime.imageio import read_gray, to_gray_u8
from edgeperc.runtime.pipelines.barcode.pipeline import ScanConfig, Window, cut_window, plan_windows, small_frame_windows, square_window

from edgeperc.errors import InvalidInputError

CFG = ScanConfig()


def _covers(window: Window, box) -> bool:
    x0, y0, x1, y1 = box
    return window.x0 <= x0 and window.y0 <= y0 and x1 <= window.x0 + window.side_px and y1 <= window.y0 + window.side_px


def test_small_and_large_proposals_get_native_and_scaled_windows():
    proposals = np.array([[1000, 1000, 1100, 1060], [3000, 2000, 4200, 2600]], np.float64)
    windows = plan_windows(proposals, (8192, 8192), CFG)
    native = [w for w in windows if w.side_px == CFG.crop_px]
    scaled = [w for w in windows if w.side_px > CFG.crop_px]
    assert native and any(_covers(w, proposals[0]) for w in native)
    assert len(scaled) == 1 and _covers(scaled[0], proposals[1])
    assert scaled[0].side_px == 1200 + 2 * CFG.context_px


def test_square_window_slides_inside_frame():
    window = square_window(np.array([7900, 10, 8190, 100]), (8192, 8192), 400, 24)
    assert window.x0 + window.side_px <= 8192 and window.y0 == 0 and _covers(window, (7900, 10, 8190, 100))


def test_small_frame_is_one_whole_window_plus_tiles():
    assert small_frame_windows((300, 280), CFG) == [Window(0, 0, 400)]
    windows = small_frame_windows((900, 1200), CFG)
    assert windows[0] == Window(0, 0, 1200) and all(w.side_px == 400 for w in windows[1:]) and len(windows) > 1


def test_cut_window_pads_and_scales_against_reference():
    frame = np.arange(500 * 600, dtype=np.uint32).reshape(500, 600).astype(np.uint8)
    native = cut_window(frame, Window(300, 200, 400), 400)
    assert native.shape == (400, 400)
    np.testing.assert_array_equal(native[:300, :300], frame[200:500, 300:600])
    assert not native[300:].any() and not native[:, 300:].any()  # zero padding past the frame
    scaled = cut_window(frame, Window(0, 0, 800), 400)
    padded = np.zeros((800, 800), np.uint8)
    padded[:500, :600] = frame
    np.testing.assert_array_equal(scaled, cv2.resize(padded, (400, 400), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("dtype, peak, expected_peak", [(np.uint8, 200, 200), (np.uint16, 4095, 255), (np.uint16, 65535, 255)])
def test_to_gray_bit_depths(dtype, peak, expected_peak):
    image = np.zeros((20, 30), dtype)
    image[0, 0] = peak
    out = to_gray_u8(image)
    assert out.dtype == np.uint8 and out.max() == expected_peak


def test_to_gray_colour_and_alpha_match_opencv():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_gray_u8(bgr), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    bgra = np.dstack([bgr, np.full((20, 30), 255, np.uint8)])
    np.testing.assert_array_equal(to_gray_u8(bgra), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


@pytest.mark.parametrize("name, make, message", [
    ("empty.png", lambda p: p.write_bytes(b""), "0 bytes"),
    ("garbage.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"IEND"), "cannot decode"),
    ("tiny.png", lambda p: cv2.imwrite(str(p), np.zeros((1, 1), np.uint8)), "smaller than"),
    ("float.tiff", lambda p: cv2.imwrite(str(p), np.zeros((32, 32), np.float32)), "unsupported pixel type"),
])
def test_bad_images_are_named(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(InvalidInputError, match=message):
        read_gray(path)


def test_truncated_files_are_refused(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"t{suffix}"
        cv2.imwrite(str(path), image)
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        with pytest.raises(InvalidInputError, match="truncated|cannot decode"):
            read_gray(path)


def test_pixel_limit(tmp_path):
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((200, 300), np.uint8))
    with pytest.raises(InvalidInputError, match="exceeds the limit"):
        read_gray(tmp_path / "big.png", max_pixels=10_000)
    assert read_gray(tmp_path / "big.png").shape == (200, 300)
