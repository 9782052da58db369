"""Where the package's own reference weights live once installed (editable or wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgeperc.errors import ModelFileError


def weights_dir() -> Path:
    return Path(str(resources.files("edgeperc.models").joinpath("weights")))


def shipped_model(name: str) -> Path:
    """Path of a file shipped in edgeperc/models/weights (ONNX exported from the shipped weights)."""
    path = weights_dir() / name
    if not path.is_file():
        raise ModelFileError(f"shipped model {name} is missing from the installation: pass the model path explicitly")
    return path
