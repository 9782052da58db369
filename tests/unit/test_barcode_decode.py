"""decode_region on barcodes rendered by zxing-cpp, pasted rotated into noisy canvases."""

import cv2
import numpy as np
import pytest
import zxingcpp
from edgeperc.runtime.pipelines.barcode.decode import DecodeResult, decode_region, is_doubtful_format

from edgeperc.errors import ConfigError, InvalidInputError

F = zxingcpp.BarcodeFormat


def _render(text, fmt, scale=3):
    return np.asarray(zxingcpp.create_barcode(text, fmt).to_image(scale=scale))


def _paste(symbol, canvas_hw=(700, 900), center_xy=(450.0, 350.0), angle_deg=30.0, noise=8.0, seed=0,
           canvas=None):
    """Paste ``symbol`` rotated by angle_deg (counter-clockwise on screen) into a noisy grey canvas.

    Returns the canvas and the (4, 2) polygon of the symbol's outer pixel centres in it.
    """
    rng = np.random.default_rng(seed)
    h, w = symbol.shape
    if canvas is None:
        canvas = np.clip(rng.normal(170, noise, canvas_hw), 0, 255).astype(np.uint8)
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    matrix[:, 2] += np.asarray(center_xy) - np.array([(w - 1) / 2, (h - 1) / 2])
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpAffine(symbol, matrix, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.full_like(symbol, 255), matrix, size, flags=cv2.INTER_NEAREST) > 0
    noisy = np.clip(warped + rng.normal(0, noise, warped.shape), 0, 255).astype(np.uint8)
    out = np.where(inside, noisy, canvas)
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    polygon = corners @ matrix[:, :2].T + matrix[:, 2]
    return out, polygon


@pytest.mark.parametrize("fmt, text, expected", [
    (F.Code128, "EDGE-PERC-42", "EDGE-PERC-42"),
    (F.EAN13, "400638133393", "4006381333931"),  # zxing-cpp appends the check digit
    (F.QRCode, "https://example.com/edgeperc?id=42", "https://example.com/edgeperc?id=42"),
    (F.DataMatrix, "EDGEPERC 2024", "EDGEPERC 2024"),
    (F.PDF417, "PDF417 EDGE", "PDF417 EDGE"),
])
def test_rotated_barcode_in_noisy_canvas_decodes_from_its_polygon(fmt, text, expected):
    canvas, polygon = _paste(_render(text, fmt), angle_deg=30.0)
    result = decode_region(canvas, polygon)
    assert result == DecodeResult(fmt.name, expected, True, result.attempts)
    # Corner order does not matter.
    assert decode_region(canvas, polygon[::-1]).text == expected
    assert decode_region(canvas, np.roll(polygon, 1, axis=0)).text == expected
    # Doubtful formats spent a confirming read; matrix codes did not.
    assert result.attempts >= (2 if is_doubtful_format(result.format) else 1)


def test_tight_polygon_gets_its_quiet_zone_from_the_margin():
    symbol = _render("QUIET-ZONE-7", F.Code128)
    ys, xs = np.nonzero(symbol < 128)  # bars only: the rendered quiet zone is left out
    canvas, _ = _paste(symbol, angle_deg=-20.0, seed=3)
    matrix = cv2.getRotationMatrix2D(((symbol.shape[1] - 1) / 2, (symbol.shape[0] - 1) / 2), -20.0, 1.0)
    matrix[:, 2] += np.array([450.0, 350.0]) - np.array([(symbol.shape[1] - 1) / 2, (symbol.shape[0] - 1) / 2])
    tight = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]], float)
    result = decode_region(canvas, tight @ matrix[:, :2].T + matrix[:, 2])
    assert result is not None and result.text == "QUIET-ZONE-7" and result.confirmed


def test_neighbour_let_in_by_the_margin_is_not_reported():
    left = _render("LEFT-111", F.Code128)
    right = _render("RIGHT-222", F.Code128)
    canvas, poly_left = _paste(left, canvas_hw=(400, 1400), center_xy=(350.0, 200.0), angle_deg=0.0)
    canvas, poly_right = _paste(right, center_xy=(350.0 + left.shape[1] / 2 + right.shape[1] / 2 + 10, 200.0),
                                angle_deg=0.0, canvas=canvas, seed=1)
    assert decode_region(canvas, poly_left).text == "LEFT-111"
    assert decode_region(canvas, poly_right).text == "RIGHT-222"


def test_bars_along_the_long_side_are_read_at_90_degrees():
    # A short code with very tall bars: the polygon's long side runs along the bars, so the
    # upright view has horizontal bars and only the 90° read finds it.
    symbol = _render("AB", F.Code128, scale=2)
    symbol = cv2.resize(symbol, (symbol.shape[1], symbol.shape[1] * 3), interpolation=cv2.INTER_NEAREST)
    canvas, polygon = _paste(symbol, canvas_hw=(900, 700), center_xy=(350.0, 450.0), angle_deg=10.0)
    result = decode_region(canvas, polygon)
    assert result is not None and result.text == "AB" and result.confirmed
    assert result.attempts == 3  # 0° (nothing), 90° (read), one confirming read


def _aliased(text, fmt, factor):
    """A low-resolution capture: rendered at 2 px/module, shrunk by ``factor``, blown back up."""
    symbol = cv2.copyMakeBorder(_render(text, fmt, scale=2), 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
    small = cv2.resize(symbol, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return symbol, cv2.resize(small, (symbol.shape[1], symbol.shape[0]), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("fmt, text, factor", [
    (F.EAN13, "667821836426", 0.63),
    (F.EAN8, "7342188", 0.63),
])
def test_misread_blurred_1d_code_is_not_reported(fmt, text, factor):
    # Found by search: on these images zxing-cpp returns a checksum-valid but wrong number.
    sharp, image = _aliased(text, fmt, factor)
    truth = zxingcpp.read_barcodes(sharp)[0].text
    plain = [r.text for r in zxingcpp.read_barcodes(image)]
    assert plain and plain[0] != truth, f"precondition: zxing-cpp should misread this image, got {plain}"
    h, w = image.shape
    polygon = np.array([[20, 20], [w - 21, 20], [w - 21, h - 21], [20, h - 21]], float)
    result = decode_region(image, polygon)
    assert result is not None, "the symbol was found: it must still be reported as a detection"
    assert result.format == fmt.name
    assert result.text != plain[0]
    assert result.text is None and result.confirmed is False


def test_confirmation_runs_and_agrees_on_a_clean_1d_code():
    canvas, polygon = _paste(_render("CONFIRM-ME-9", F.Code39), angle_deg=12.0, seed=5)
    result = decode_region(canvas, polygon)
    assert result == DecodeResult("Code39", "CONFIRM-ME-9", True, 2)


def test_blank_and_noise_regions_give_none():
    polygon = np.array([[100, 100], [400, 100], [400, 200], [100, 200]], float)
    assert decode_region(np.full((300, 500), 128, np.uint8), polygon) is None
    noise = np.random.default_rng(0).integers(0, 256, (300, 500), dtype=np.uint8)
    assert decode_region(noise, polygon) is None
    degenerate = np.array([[10, 10], [200, 10], [200, 10], [10, 10]], float)
    assert decode_region(np.full((300, 500), 128, np.uint8), degenerate) is None


def test_formats_restrict_the_search():
    canvas, polygon = _paste(_render("ONLY-128", F.Code128), angle_deg=0.0)
    assert decode_region(canvas, polygon, formats=["QRCode"]) is None
    assert decode_region(canvas, polygon, formats=["Code128"]).text == "ONLY-128"
    assert decode_region(canvas, polygon, formats=F.Code128).text == "ONLY-128"


def test_uint16_image_and_region_past_the_frame_edge():
    symbol = _render("EDGE-16", F.Code128)
    canvas, polygon = _paste(symbol, canvas_hw=(300, 700), center_xy=(330.0, 150.0), angle_deg=0.0)
    result = decode_region(canvas.astype(np.uint16) * 257, polygon)
    assert result is not None and result.text == "EDGE-16"
    # The barcode flush with the left edge: the margin reaches outside the frame.
    h, w = symbol.shape
    flush = np.full((h + 40, w + 100), 200, np.uint8)
    flush[20:20 + h, 0:w] = symbol
    poly = np.array([[0, 20], [w - 1, 20], [w - 1, 19 + h], [0, 19 + h]], float)
    assert decode_region(flush, poly).text == "EDGE-16"


@pytest.mark.parametrize("image, polygon, error", [
    (np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)), InvalidInputError),
    (np.zeros((0, 50), np.uint8), np.zeros((4, 2)), InvalidInputError),
    (np.zeros((50, 50), np.float32), np.zeros((4, 2)), InvalidInputError),
    (np.zeros((50, 50), np.uint8), np.zeros((3, 2)), InvalidInputError),
    (np.zeros((50, 50), np.uint8), np.full((4, 2), np.nan), InvalidInputError),
])
def test_bad_input_is_refused(image, polygon, error):
    with pytest.raises(error):
        decode_region(image, polygon)


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError):
        decode_region(np.zeros((50, 50), np.uint8), np.array([[0, 0], [40, 0], [40, 20], [0, 20]], float),
                      formats=["NotAFormat"])


@pytest.mark.parametrize("symbology", ["QRCode", "DataMatrix"])
def test_small_2d_code_is_read_after_upsampling(symbology):
    """2 px modules, rotated and blurred: the first reads fail, the 3x cubic re-warp reads it."""
    import cv2
    from edgeperc.runtime.pipelines.barcode.decode import decode_region

    from edgeperc.synth.symbols import render_symbol

    symbol = render_symbol(np.random.default_rng(4), symbology, 2)
    canvas = np.full((300, 300), 210, np.uint8)
    h, w = symbol.image.shape
    canvas[100 : 100 + h, 100 : 100 + w] = np.where(symbol.image < 128, 40, 220)
    rotation = cv2.getRotationMatrix2D((100 + w / 2, 100 + h / 2), 27, 1.0)
    canvas = cv2.GaussianBlur(cv2.warpAffine(canvas, rotation, (300, 300), borderValue=210), (0, 0), 0.7)
    corners = np.array([[100, 100], [100 + w, 100], [100 + w, 100 + h], [100, 100 + h]], np.float64)
    polygon = cv2.transform(corners[None], rotation)[0]
    result = decode_region(canvas, polygon)
    assert result is not None and result.text == symbol.text
