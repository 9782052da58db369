"""Where a LISAt export folder comes from: one given on the command line, or the shipped (or a
local) checkpoint exported once into a cache keyed by the checkpoint's sha256 and the precision.

An export is a folder (seven graphs + lisat_manifest.json + tokenizer). Exporting needs torch and
transformers (the ``[lisat]`` extra); running an export folder needs only ONNX Runtime, which is
what a drone gets in its bundle. The cache makes the first `edgeperc segment` pay the export
(seconds) and every later one open the folder directly, after the manifest's checksums pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.hashing import sha256_file
from edgeperc.lisat_manifest import MANIFEST_FILE, verify_lisat_manifest

LisatPrecision = Literal["fp32", "compressed"]
SHIPPED_LISAT = "lisat-tiny/lisat-tiny.safetensors"
SHIPPED_STUDENT = "lisat-tiny/lisat-tiny-student.safetensors"
CACHE_ENV = "EDGEPERC_LISAT_CACHE"
COMPRESSION_VERSION = 3  # bump when the default compression settings change: cached folders rebuild
EXPORT_VERSION = 2  # bump when the exported graphs change (both precisions rebuild); 2: mask decoder runs mask 0 only


def lisat_cache_dir() -> Path:
    """``$EDGEPERC_LISAT_CACHE`` or ``~/.cache/edgeperc/lisat``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "edgeperc" / "lisat"


def shipped_lisat_checkpoint() -> Path:
    from edgeperc.models.shipped import shipped_model

    return shipped_model(SHIPPED_LISAT)


def is_export_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_FILE).is_file()


def _checkpoint_file(path: Path) -> Path:
    """The .safetensors of a checkpoint given as the file or its folder (one model per folder)."""
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        weights = [f for f in files if not f.name.endswith("-student.safetensors")]
        if len(weights) == 1:
            return weights[0]
        raise ModelFileError(f"{path}: expected one LISAt .safetensors (or a lisat_manifest.json export), found "
                             f"{[f.name for f in files] or 'none'}")
    raise ModelFileError(f"LISAt model not found: {path}")


def export_key(checkpoint: Path, precision: LisatPrecision) -> str:
    """Cache key: the checkpoint's sha256 and the export's version, and for the compressed export also
    the student's beside it (replacing the student must rebuild) and the compression settings' version."""
    key = sha256_file(checkpoint)[:16] + f"-e{EXPORT_VERSION}"
    if precision == "compressed":
        student = checkpoint.with_name(checkpoint.stem + "-student.safetensors")
        key += "-" + (sha256_file(student)[:8] if student.is_file() else "nostudent") + f"-c{COMPRESSION_VERSION}"
    return key


def resolve_lisat_export(model: Path | None, precision: LisatPrecision = "fp32", progress: bool = True,
                         cache_dir: Path | None = None) -> Path:
    """An export folder to open: ``model`` itself when it is one (precision is then whatever it
    holds), else the checkpoint ``model`` (default: the shipped tiny LISAt) exported into the cache
    at ``precision`` (once; a folder whose checksums fail is rebuilt)."""
    if model is not None and is_export_folder(model):
        verify_lisat_manifest(model)
        return model
    if precision not in ("fp32", "compressed"):
        raise ConfigError(f"precision must be fp32 or compressed, got {precision!r}")
    checkpoint = _checkpoint_file(model) if model is not None else shipped_lisat_checkpoint()
    root = cache_dir or lisat_cache_dir()
    key = export_key(checkpoint, precision)
    folder = root / f"{key}-{precision}"
    if is_export_folder(folder):
        try:
            verify_lisat_manifest(folder)
            return folder
        except ModelFileError:
            shutil.rmtree(folder, ignore_errors=True)  # tampered or half-written: rebuild it
    fp32 = folder if precision == "fp32" else resolve_lisat_export(checkpoint, "fp32", progress, root)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-{precision}-", dir=root))
    try:
        if precision == "fp32":
            export_checkpoint(checkpoint, work, progress)
        else:
            compress_export(checkpoint, fp32, work, progress)
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)  # whole or nothing: a cache entry is never half an export
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def export_checkpoint(checkpoint: Path, out: Path, progress: bool = True) -> Path:
    """A trained LISAt checkpoint (file + config.json + lisat_tokenizer.json beside it) -> export folder."""
    try:
        from edgeperc.export.lisat_export import export_lisat
    except ImportError as exc:
        raise ConfigError(f"exporting LISAt needs torch and transformers: pip install 'edgeperc[lisat]' ({exc})") from exc
    from edgeperc.models.lisat_checkpoint import load_lisat
    from edgeperc.models.lisat_tokenizer import TOKENIZER_FILE

    model, _config = load_lisat(checkpoint)
    tokenizer = checkpoint.parent / TOKENIZER_FILE
    export_lisat(model, out, tokenizer_path=tokenizer if tokenizer.is_file() else None,
                 checkpoint_sha256=sha256_file(checkpoint), progress=progress)
    return out


def compress_export(checkpoint: Path, fp32: Path, out: Path, progress: bool = True) -> Path:
    """The FP32 export -> the compressed one (INT4 LLM, INT8 vision, the distilled mask encoder
    shipped beside the checkpoint when there is one)."""
    from edgeperc.export.lisat_compress import compress_lisat_checkpoint

    return compress_lisat_checkpoint(checkpoint, fp32, out, progress=progress)
