"""Barcode symbols rendered by zxing-cpp's writer, with random but valid content per symbology."""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

# zxing-cpp writer names, with how often each appears (1-D retail/logistics codes dominate parcels).
SYMBOLOGIES: dict[str, float] = {
    "EAN13": 0.14, "UPCA": 0.06, "EAN8": 0.05, "Code128": 0.2, "Code39": 0.08, "Code93": 0.05,
    "ITF": 0.06, "Codabar": 0.04, "QRCode": 0.12, "DataMatrix": 0.1, "PDF417": 0.06, "Aztec": 0.04,
}
ONE_D = {"EAN13", "UPCA", "EAN8", "Code128", "Code39", "Code93", "ITF", "Codabar"}
_WORDS = ("parcel", "route", "bin", "dock", "lot", "pallet", "tote", "zone", "order", "item", "batch", "shelf")


@dataclass(frozen=True)
class Symbol:
    image: np.ndarray  # (h, w) uint8, black bars on white, quiet zones included
    symbology: str  # writer name, e.g. "Code128"
    text: str  # what a reader should return (zxing's normalised text: check digits appended)


def random_content(rng: np.random.Generator, symbology: str) -> str:
    digits = lambda n: "".join(rng.choice(list(string.digits), n))  # noqa: E731
    if symbology == "EAN13":
        return digits(12)
    if symbology == "UPCA":
        return digits(11)
    if symbology == "EAN8":
        return digits(7)
    if symbology == "ITF":
        return digits(2 * int(rng.integers(3, 8)))
    if symbology == "Codabar":
        return "A" + digits(int(rng.integers(5, 12))) + "B"
    if symbology in ("Code39", "Code93"):
        return "".join(rng.choice(list(string.ascii_uppercase + string.digits), int(rng.integers(4, 11))))
    if symbology == "Code128":
        alphabet = string.ascii_letters + string.digits + "-/."
        return "".join(rng.choice(list(alphabet), int(rng.integers(6, 15))))
    words = [str(rng.choice(_WORDS)) for _ in range(int(rng.integers(2, 6)))]
    return " ".join(words) + " " + digits(int(rng.integers(3, 9)))


def render_symbol(rng: np.random.Generator, symbology: str, module_px: int) -> Symbol:
    """One symbol at ``module_px`` pixels per module; 1-D codes get a random bar height."""
    import zxingcpp

    content = random_content(rng, symbology)
    barcode = zxingcpp.create_barcode(content, getattr(zxingcpp.BarcodeFormat, symbology))
    image = np.asarray(barcode.to_image(scale=module_px), dtype=np.uint8)
    if symbology in ONE_D:
        height = int(max(12 * module_px, image.shape[1] * rng.uniform(0.15, 0.45)))
        image = np.ascontiguousarray(np.repeat(image[image.shape[0] // 3 : image.shape[0] // 3 + 1], height, axis=0))
    return Symbol(image=image, symbology=symbology, text=barcode.text)


def pick_symbology(rng: np.random.Generator, allowed: tuple[str, ...] | None = None) -> str:
    names = list(allowed or SYMBOLOGIES)
    weights = np.array([SYMBOLOGIES[n] for n in names], np.float64)
    return str(rng.choice(names, p=weights / weights.sum()))
