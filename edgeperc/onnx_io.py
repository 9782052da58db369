"""Loading and saving ONNX files with errors that say what is wrong with the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgeperc.errors import ModelFileError


def load_onnx(path: str | Path, check: bool = True) -> onnx.ModelProto:
    """Read and (optionally) check an ONNX file; truncated or corrupt files raise ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"ONNX file not found: {path}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"ONNX file is empty: {path}")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"ONNX file is truncated or corrupt: {path} ({type(exc).__name__}: {exc})") from exc
    if not model.graph.node:
        raise ModelFileError(f"ONNX file has no graph nodes (truncated or not an ONNX model): {path}")
    if check:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ModelFileError(f"ONNX file fails the ONNX checker: {path}: {first}") from exc
    return model


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never clobbers a good file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
