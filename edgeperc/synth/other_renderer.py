"""A second renderer for robustness sets: python-barcode (1-D) and segno (QR) draw bars, quiet
zones and proportions their own way, so a model that only learned zxing-cpp's writer shows it."""

from __future__ import annotations

import io

import numpy as np

from edgeperc.synth.symbols import Symbol, random_content

ALT_SYMBOLOGIES = ("EAN13", "Code128", "Code39", "ITF", "QRCode")
_PYTHON_BARCODE = {"EAN13": "ean13", "Code128": "code128", "Code39": "code39", "ITF": "itf"}


def render_symbol_alt(rng: np.random.Generator, symbology: str, module_px: int) -> Symbol:
    """One symbol drawn by python-barcode or segno, ``module_px`` pixels per module."""
    from PIL import Image

    content = random_content(rng, symbology)
    buffer = io.BytesIO()
    if symbology == "QRCode":
        import segno

        segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=module_px, border=4)
        text = content
    elif symbology in _PYTHON_BARCODE:
        import barcode
        from barcode.writer import ImageWriter

        options = {"add_checksum": False} if symbology == "Code39" else {}
        code = barcode.get(_PYTHON_BARCODE[symbology], content, writer=ImageWriter(), options=options)
        height_mm = float(rng.uniform(6, 14)) * module_px / 2
        # 254 dpi: one module of 0.1 mm per pixel; python-barcode sizes in millimetres.
        code.write(buffer, options={"module_width": 0.1 * module_px, "module_height": height_mm, "quiet_zone": 2.5 * module_px,
                                    "write_text": False, "dpi": 254})
        text = code.get_fullcode()
    else:
        raise ValueError(f"the alternative renderer draws {', '.join(ALT_SYMBOLOGIES)}, not {symbology}")
    image = np.asarray(Image.open(buffer).convert("L"), dtype=np.uint8)
    return Symbol(image=np.ascontiguousarray(image), symbology=symbology, text=text)
