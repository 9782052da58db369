"""Decode one detected region: cut it out of the full-resolution image, deskew it, read it with
zxing-cpp, and confirm doubtful reads with a second, differently preprocessed decode.

A wrong text is worse than none: on blurred 1-D codes and PDF417 zxing-cpp can return a
valid-looking wrong result, so for those formats a read is reported only when a second read of
the same region resampled at another scale agrees; otherwise the symbology is reported with no
text. Matrix codes with Reed–Solomon error correction (QR, Data Matrix, Aztec…) are reported on
the first read.

Polygons use OpenCV's pixel-centre convention (see ``boxes.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp
from edgeperc.runtime.pipelines.barcode.checks import check_finite, check_gray_image

from edgeperc.errors import ConfigError, InvalidInputError

# Formats whose reads are confirmed by a second decode: every linear symbology, and PDF417's.
_DOUBTFUL_FORMATS = frozenset(
    list(zxingcpp.barcode_formats_list(zxingcpp.BarcodeFormat.AllLinear))
    + [zxingcpp.BarcodeFormat.PDF417, zxingcpp.BarcodeFormat.CompactPDF417, zxingcpp.BarcodeFormat.MicroPDF417]
)


@dataclass(frozen=True)
class DecodeResult:
    """What one region decoded to.

    format: zxing-cpp's ``BarcodeFormat`` member name ("Code128", "EAN13", "QRCode",
        "DataMatrix", "PDF417"…); ``zxingcpp.barcode_format_from_str(format)`` gives it back.
    text: decoded text (zxing-cpp's HRI text mode: EAN-13 with its check digit, UPC-A as 13
        digits…), or None when a doubtful read could not be confirmed.
    confirmed: True when the text is reported (matrix code, or a doubtful format whose second,
        differently preprocessed read agreed); False when text is None.
    attempts: number of zxing-cpp reads spent on the region.
    """

    format: str
    text: str | None
    confirmed: bool
    attempts: int


SMALL_REGION_UPSAMPLE = 3.0


def is_doubtful_format(format_name: str) -> bool:
    """True for the formats that need a confirming second read (1-D codes, PDF417 family)."""
    return zxingcpp.barcode_format_from_str(format_name) in _DOUBTFUL_FORMATS


def _check_polygon(polygon: np.ndarray) -> np.ndarray:
    array = np.asarray(polygon)
    if array.shape != (4, 2):
        raise InvalidInputError(f"polygon must be (4, 2) corners (x, y), got shape {array.shape}")
    return check_finite(array, "polygon", kinds="fiu")


def _formats_arg(formats) -> zxingcpp.BarcodeFormats | None:
    if formats is None:
        return None
    if isinstance(formats, (str, zxingcpp.BarcodeFormat)):
        formats = [formats]
    members = []
    for item in formats:
        if isinstance(item, zxingcpp.BarcodeFormat):
            members.append(item)
            continue
        try:
            members.append(zxingcpp.barcode_format_from_str(str(item)))
        except ValueError as exc:
            raise ConfigError(f"unknown barcode format {item!r} (zxing-cpp names, e.g. 'Code128', 'QRCode')") from exc
    if not members:
        raise ConfigError("formats is empty; pass None to read every format")
    return zxingcpp.BarcodeFormats(members)


def upright_quad(polygon: np.ndarray) -> np.ndarray:
    """(4, 2) corners in any order → (4, 2) float64 p0..p3: clockwise on screen, p0→p1 along the
    longer pair of opposite sides and pointing right (x increasing), so that mapping p0..p3 onto
    (0, 0), (w, 0), (w, h), (0, h) gives the region upright with its long side horizontal."""
    points = np.asarray(polygon, dtype=np.float64)
    center = points.mean(axis=0)
    # atan2 with y down increases clockwise on screen.
    points = points[np.argsort(np.arctan2(points[:, 1] - center[1], points[:, 0] - center[0]), kind="stable")]
    edges = np.roll(points, -1, axis=0) - points
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    if lengths[1] + lengths[3] > lengths[0] + lengths[2]:
        points = np.roll(points, -1, axis=0)
    direction = points[1] - points[0]
    if direction[0] < 0 or (direction[0] == 0 and direction[1] < 0):
        points = np.roll(points, -2, axis=0)
    return points


def _deskew(image: np.ndarray, quad: np.ndarray, margin_frac: float, min_margin_px: float,
            max_side_px: int, upsample: float = 1.0) -> tuple[np.ndarray, tuple[float, float, float, float]] | None:
    """Warp the quad (plus a margin) upright → ((h, w) uint8 image, core rect x0, y0, x1, y1)."""
    edges = np.roll(quad, -1, axis=0) - quad
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    long_px, short_px = (lengths[0] + lengths[2]) / 2.0, (lengths[1] + lengths[3]) / 2.0
    if short_px < 1.0:
        return None
    # A whole-pixel margin: an axis-aligned region at scale 1 is then copied pixel for pixel
    # (a fractional shift resamples 1-2 px bars into grey and costs reads).
    margin = float(math.ceil(max(float(min_margin_px), margin_frac * long_px)))
    scale = min(upsample, max_side_px / (long_px + 2 * margin))
    out_w = int(math.ceil((long_px + 2 * margin) * scale)) + 1
    out_h = int(math.ceil((short_px + 2 * margin) * scale)) + 1
    core = (margin * scale, margin * scale, (margin + long_px) * scale, (margin + short_px) * scale)
    dst = np.array([[core[0], core[1]], [core[2], core[1]], [core[2], core[3]], [core[0], core[3]]])
    transform = cv2.getPerspectiveTransform(quad.astype(np.float32), dst.astype(np.float32))

    # Only read the part of the frame the output samples: a view, never a copy of the frame.
    out_corners = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    src = cv2.perspectiveTransform(out_corners.reshape(-1, 1, 2), np.linalg.inv(transform)).reshape(-1, 2)
    height, width = image.shape
    x0 = int(np.clip(math.floor(src[:, 0].min()) - 2, 0, width))
    y0 = int(np.clip(math.floor(src[:, 1].min()) - 2, 0, height))
    x1 = int(np.clip(math.ceil(src[:, 0].max()) + 3, 0, width))
    y1 = int(np.clip(math.ceil(src[:, 1].max()) + 3, 0, height))
    if x1 <= x0 or y1 <= y0:
        return None
    roi = image[y0:y1, x0:x1]
    shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    # Outside the frame: a light constant (a quiet zone), not replicated edge rows (fake bars).
    sample = roi[::4, ::4] if roi.shape[0] * roi.shape[1] > 1 << 16 else roi
    fill = float(np.percentile(sample, 90))
    warped = cv2.warpPerspective(roi, transform @ shift, (out_w, out_h), flags=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    if warped.dtype == np.uint16:
        warped = cv2.normalize(warped, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return warped, core


def _pick(results, core: tuple[float, float, float, float], tolerance_px: float,
          to_upright=None):
    """The read whose centre lies in the core rect (± tolerance), nearest its centre, or None."""
    best, best_distance = None, math.inf
    cx, cy = (core[0] + core[2]) / 2.0, (core[1] + core[3]) / 2.0
    for result in results:
        p = result.position
        x = (p.top_left.x + p.top_right.x + p.bottom_right.x + p.bottom_left.x) / 4.0
        y = (p.top_left.y + p.top_right.y + p.bottom_right.y + p.bottom_left.y) / 4.0
        if to_upright is not None:
            x, y = to_upright(x, y)
        if not (core[0] - tolerance_px <= x <= core[2] + tolerance_px
                and core[1] - tolerance_px <= y <= core[3] + tolerance_px):
            continue  # a neighbouring barcode that the margin let in
        distance = math.hypot(x - cx, y - cy)
        if distance < best_distance:
            best, best_distance = result, distance
    return best


def decode_region(image_gray: np.ndarray, polygon: np.ndarray, formats=None, margin_frac: float = 0.15,
                  min_margin_px: float = 8.0, max_side_px: int = 2048) -> DecodeResult | None:
    """(H, W) uint8 (or uint16) full-resolution image, (4, 2) polygon → DecodeResult or None.

    The polygon (any corner order, pixel-centre convention, may reach outside the image) is
    warped upright with its long side horizontal, with a margin of max(min_margin_px,
    margin_frac · long side) on every side (the quiet zone), downscaled so that no side exceeds
    max_side_px. zxing-cpp reads it at 0°, then at 90° if nothing was found, then once more with
    its GlobalHistogram binarizer (helps noisy 2-D/stacked codes); reads whose centre falls
    outside the region (neighbours let in by the margin) are ignored. A 1-D or PDF417 read is
    then confirmed by reading the same upright region resampled ×2, then (if that finds
    nothing) ×1.5, with INTER_CUBIC (×0.5 / ×0.75 with INTER_AREA past 2048 px): the first
    resampled read that finds the code decides — same text: reported, confirmed; other text:
    text None. If neither finds it, text None as well. Returns None when nothing
    was read; ``DecodeResult(format, None, False, attempts)`` for an unconfirmed read.
    ``formats``: None (all), or zxing-cpp format names/members, e.g. ["Code128", "QRCode"].
    """
    image = check_gray_image(image_gray)
    quad = upright_quad(_check_polygon(polygon))
    if not math.isfinite(float(margin_frac)) or margin_frac < 0:
        raise ConfigError(f"margin_frac must be >= 0, got {margin_frac!r}")
    if not math.isfinite(float(min_margin_px)) or min_margin_px < 0:
        raise ConfigError(f"min_margin_px must be >= 0, got {min_margin_px!r}")
    if isinstance(max_side_px, bool) or not isinstance(max_side_px, (int, np.integer)) or max_side_px < 32:
        raise ConfigError(f"max_side_px must be an integer >= 32, got {max_side_px!r}")
    zx_formats = _formats_arg(formats)
    read_kwargs = {} if zx_formats is None else {"formats": zx_formats}

    deskewed = _deskew(image, quad, float(margin_frac), float(min_margin_px), int(max_side_px))
    if deskewed is None:
        return None
    upright, core = deskewed
    tolerance = core[0] / 2.0  # half the margin
    height = upright.shape[0]

    attempts = 0
    first = view = view_to_upright = None
    # 0° and 90° with zxing-cpp's default LocalAverage binarizer; last, GlobalHistogram (any
    # rotation), which reads noisy 2-D/stacked symbols (seen: PDF417 at 3 px/module, σ=8 noise)
    # that LocalAverage misses. 1-D rows are thresholded the same way whatever the binarizer.
    attempts_plan = (
        (upright, None, {"try_rotate": False}),
        (cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE), lambda x, y: (y, height - 1 - x), {"try_rotate": False}),
        (upright, None, {"try_rotate": True, "binarizer": zxingcpp.Binarizer.GlobalHistogram}),
    )
    for candidate, to_upright, options in attempts_plan:
        attempts += 1
        results = zxingcpp.read_barcodes(candidate, **options, **read_kwargs)
        first = _pick(results, core, tolerance, to_upright)
        if first is not None:
            view, view_to_upright = candidate, to_upright
            break
    if first is None and max(upright.shape) * SMALL_REGION_UPSAMPLE <= max_side_px:
        # Small symbols (2-D codes at 2-3 px per module) read better resampled up from the frame
        # itself (cubic), not from the already-warped copy.
        fine = _deskew(image, quad, float(margin_frac), float(min_margin_px), int(max_side_px), SMALL_REGION_UPSAMPLE)
        if fine is not None:
            attempts += 1
            factor = SMALL_REGION_UPSAMPLE
            results = zxingcpp.read_barcodes(fine[0], try_rotate=True, **read_kwargs)
            first = _pick(results, core, tolerance, lambda x, y: ((x + 0.5) / factor - 0.5, (y + 0.5) / factor - 0.5))
            if first is not None:
                view, view_to_upright = fine[0], (lambda x, y: ((x + 0.5) / factor - 0.5, (y + 0.5) / factor - 0.5))
    if first is None:
        return None

    format_name = first.format.name
    if first.format not in _DOUBTFUL_FORMATS:
        return DecodeResult(format_name, first.text, True, attempts)

    # Confirmation: the same upright region resampled at another scale. On the misreads we
    # could provoke (10 aliased EAN-8/EAN-13/UPC-A/ITF reads), every rescaled read failed or
    # disagreed, while unsharp-masked copies repeated 2-3 of the 10 wrong strings and an
    # Otsu-binarised copy one: the error lives in the pixels, a new sampling is a second opinion.
    confirm_kwargs = {"formats": zxingcpp.BarcodeFormats([first.format]), "try_rotate": True}
    upscale = max(view.shape) * 2 <= 4096
    for factor in ((2.0, 1.5) if upscale else (0.5, 0.75)):
        attempts += 1
        resampled = cv2.resize(view, None, fx=factor, fy=factor,
                               interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
        results = zxingcpp.read_barcodes(resampled, binarizer=zxingcpp.Binarizer.GlobalHistogram,
                                         **confirm_kwargs)

        def back(x, y, f=factor, t=view_to_upright):  # resampled view → view → upright frame
            x, y = (x + 0.5) / f - 0.5, (y + 0.5) / f - 0.5
            return t(x, y) if t is not None else (x, y)

        second = _pick(results, core, tolerance, back)
        if second is None:
            continue  # no opinion: ask the next scale
        confirmed = second.text == first.text
        return DecodeResult(format_name, first.text if confirmed else None, confirmed, attempts)
    return DecodeResult(format_name, None, False, attempts)
