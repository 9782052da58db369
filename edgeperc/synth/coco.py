"""COCO-format ground truth for generated scenes: boxes, polygons, symbology and text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeperc.synth.barcode_scenes import BarcodeTruth


class CocoWriter:
    """Accumulates images and barcode annotations; one category, 'barcode'."""

    def __init__(self, description: str) -> None:
        self.data: dict = {"info": {"description": description}, "images": [], "annotations": [],
                           "categories": [{"id": 1, "name": "barcode"}]}

    @property
    def annotation_count(self) -> int:
        return len(self.data["annotations"])

    def add_image(self, file_name: str, hw: tuple[int, int], barcodes: list[BarcodeTruth]) -> int:
        image_id = len(self.data["images"]) + 1
        self.data["images"].append({"id": image_id, "file_name": file_name, "height": int(hw[0]), "width": int(hw[1])})
        for truth in barcodes:
            x0, y0, x1, y1 = truth.box_xyxy
            polygon = np.asarray(truth.polygon, np.float64)
            area = 0.5 * abs(np.dot(polygon[:, 0], np.roll(polygon[:, 1], 1)) - np.dot(polygon[:, 1], np.roll(polygon[:, 0], 1)))
            self.data["annotations"].append({
                "id": len(self.data["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(area), "iscrowd": 0,
                "segmentation": [np.round(polygon, 2).ravel().tolist()],
                "attributes": {"symbology": truth.symbology, "text": truth.text},
            })
        return image_id

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.data))
        return path
