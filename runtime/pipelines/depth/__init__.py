"""Panorama depth + aleatoric uncertainty (Y-Net with two heads, App. B)."""
