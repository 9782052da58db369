"""Barcode pipeline stages: masks to boxes, NMS and duplicate merging, crop planning, decoding."""
