"""Reading what scanners and phones write (PNG, JPEG, WebP, TIFF 8/16-bit, BMP; grey, colour,
alpha) into one (H, W) uint8 grey frame (or an RGB one for colour models), with a clear error per bad file and no float copy of
the frame (16-bit data is shifted, not scaled in floating point)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeperc.errors import InvalidInputError

MIN_SIDE_PX = 16
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".jp2"}
DEFAULT_MAX_PIXELS = 1_000_000_000  # 30k x 30k frames are 0.9 G pixels


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding pixels (Pillow, when installed)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, with our own message
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # Pillow cannot parse every TIFF OpenCV reads: fall back to decoding
        return None


def to_gray_u8(array: np.ndarray, source: str = "image") -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) uint8/uint16 -> (H, W) uint8."""
    if array.dtype == np.uint16:
        peak = int(array.max())
        shift = max(0, peak.bit_length() - 8)  # 12-bit sensors use the top of their range too
        array = (array >> shift).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InvalidInputError(f"{source}: unsupported pixel type {array.dtype} (8- or 16-bit integer images only)")
    if array.ndim == 3:
        channels = array.shape[2]
        if channels == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2GRAY)
        elif channels == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2GRAY)
        elif channels == 1:
            array = array[..., 0]
        else:
            raise InvalidInputError(f"{source}: {channels} channels (grey, colour or colour+alpha expected)")
    if array.ndim != 2:
        raise InvalidInputError(f"{source}: image has shape {array.shape}, not a 2-D frame")
    if min(array.shape) < MIN_SIDE_PX:
        raise InvalidInputError(f"{source}: image is {array.shape[1]}x{array.shape[0]} px, smaller than {MIN_SIDE_PX} px a side")
    return np.ascontiguousarray(array)


def check_complete(head: bytes, tail: bytes, source: str) -> None:
    """JPEG and PNG decoders hand back a partly grey frame for a truncated file: refuse it."""
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
        raise InvalidInputError(f"{source}: JPEG is truncated (no end-of-image marker)")
    if head.startswith(b"\x89PNG") and b"IEND" not in tail:
        raise InvalidInputError(f"{source}: PNG is truncated (no IEND chunk)")


def decode_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` as stored (grey/colour/alpha, 8/16-bit); every failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path}: file is empty (0 bytes)")
    size = header_size(path)
    if size is not None and size[0] * size[1] > max_pixels:
        raise InvalidInputError(f"{path}: {size[0]}x{size[1]} px exceeds the limit of {max_pixels:,} pixels (--max-pixels)")
    with open(path, "rb") as handle:  # only the ends: the file is never held in memory beside the frame
        head = handle.read(8)
        handle.seek(max(0, path.stat().st_size - 64))
        tail = handle.read()
    check_complete(head, tail, str(path))
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise InvalidInputError(f"{path}: cannot decode (corrupt, truncated or unsupported format)")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise InvalidInputError(f"{path}: {image.shape[1]}x{image.shape[0]} px exceeds the limit of {max_pixels:,} pixels (--max-pixels)")
    return image


def read_gray(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to (H, W) uint8 grey; every failure names the file and the problem."""
    return to_gray_u8(decode_image(path, max_pixels), str(path))


def read_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to (H, W, 3) uint8 RGB; a grey image is refused (colour models need colour)."""
    image = decode_image(path, max_pixels)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise InvalidInputError(f"{path}: image is greyscale; this model needs an RGB (colour) image")
    if image.dtype == np.uint16:
        image = (image >> max(0, int(image.max()).bit_length() - 8)).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InvalidInputError(f"{path}: unsupported pixel type {image.dtype} (8- or 16-bit integer images only)")
    if image.shape[2] not in (3, 4):
        raise InvalidInputError(f"{path}: {image.shape[2]} channels (colour or colour+alpha expected)")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if min(rgb.shape[:2]) < MIN_SIDE_PX:
        raise InvalidInputError(f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]} px, smaller than {MIN_SIDE_PX} px a side")
    return rgb
