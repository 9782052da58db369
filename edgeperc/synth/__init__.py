"""Synthetic data the package generates itself: barcode scenes (UHR canvases with ground truth)."""
