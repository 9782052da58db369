"""TensorRT engine cache: jetson-inference's key + checksum idea, made complete.

An engine is only valid for the exact ONNX, TensorRT version, GPU, precision, profile shapes,
plugin library and builder options it was built with. All of these form the key; the file
name is the sha256 of the key's canonical JSON, so changing any field misses the cache.
Beside each engine lie ``<digest>.engine.sha256`` (hash of the engine bytes) and
``<digest>.json`` (the key + the model manifest). A load that finds a missing checksum, a hash
mismatch or a key that differs from the one asked for refuses (EngineCacheError): a stale or
tampered engine is never deserialized. This module is pure file logic; it never imports TensorRT.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeperc.errors import EngineCacheError
from edgeperc.hashing import sha256_bytes
from edgeperc.manifest import Precision

log = logging.getLogger(__name__)

CACHE_FORMAT = 1

Shape = tuple[int, ...]


class EngineKey(BaseModel):
    """Everything that makes one serialized engine valid; immutable and hashable by value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tensorrt_version: str = Field(min_length=1)
    gpu_name: str = Field(min_length=1)
    compute_capability: str = Field(pattern=r"^\d{1,2}\.\d$")
    precision: Precision
    profile_shapes: dict[str, tuple[Shape, Shape, Shape]] = Field(description="input -> (min, opt, max)")
    plugin_library_sha256: str | None = None
    dla_core: int | None = None
    dla_gpu_fallback: bool | None = Field(default=None, description="only set when dla_core is")
    builder_optimization_level: int = 3
    sparsity: bool = False
    cache_format: int = CACHE_FORMAT

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace: equal keys give equal text whatever the dict order."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def cache_key(key: EngineKey) -> str:
    """sha256 hex digest of the key's canonical JSON: the engine's file name stem."""
    return sha256_bytes(key.canonical_json().encode("utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder + fsync + os.replace: readers see the old or the new file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sidecar_paths(engine_path: Path) -> tuple[Path, Path]:
    """(checksum file, key+manifest JSON) belonging to ``engine_path``."""
    return engine_path.with_name(engine_path.name + ".sha256"), engine_path.with_suffix(".json")


def read_verified_engine(engine_path: str | Path) -> tuple[bytes, EngineKey, dict[str, Any]]:
    """Engine bytes, their key and manifest, after checking checksum and key record.

    Refuses (EngineCacheError, naming the reason) when the checksum file is missing or
    malformed, the bytes do not hash to it, or the JSON record is missing, unreadable or its
    key does not hash to the digest it records (an edited key).
    """
    engine_path = Path(engine_path)
    checksum_path, record_path = sidecar_paths(engine_path)
    if not engine_path.is_file():
        raise EngineCacheError(f"engine file not found: {engine_path}")
    if not checksum_path.is_file():
        raise EngineCacheError(f"refusing {engine_path.name}: checksum file {checksum_path.name} is missing")
    expected = checksum_path.read_text(encoding="utf-8").split()
    if not expected or len(expected[0]) != 64:
        raise EngineCacheError(f"refusing {engine_path.name}: checksum file {checksum_path.name} is malformed")
    engine_bytes = engine_path.read_bytes()
    actual = sha256_bytes(engine_bytes)
    if actual != expected[0].lower():
        raise EngineCacheError(
            f"refusing {engine_path.name}: sha256 of the engine is {actual[:12]}…, "
            f"its checksum file says {expected[0][:12]}… (corrupt or tampered)"
        )
    if not record_path.is_file():
        raise EngineCacheError(f"refusing {engine_path.name}: key record {record_path.name} is missing")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        stored_key = EngineKey.model_validate(record["key"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise EngineCacheError(
            f"refusing {engine_path.name}: key record {record_path.name} is unreadable ({exc.__class__.__name__})"
        ) from exc
    if record.get("digest") != cache_key(stored_key):
        raise EngineCacheError(
            f"refusing {engine_path.name}: key record {record_path.name} was edited "
            "(its key no longer hashes to its recorded digest)"
        )
    return engine_bytes, stored_key, dict(record.get("manifest") or {})


def _differing_fields(stored: EngineKey, wanted: EngineKey) -> list[str]:
    a, b = stored.model_dump(mode="json"), wanted.model_dump(mode="json")
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


class EngineCache:
    """A folder of ``<digest>.engine`` + ``.engine.sha256`` + ``.json`` triples."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: EngineKey) -> Path:
        return self.root / f"{cache_key(key)}.engine"

    def store(self, key: EngineKey, engine_bytes: bytes, manifest_json: str | Mapping[str, Any]) -> Path:
        """Write the triple atomically, engine last, so an engine on disk always has its checksum."""
        if not engine_bytes:
            raise EngineCacheError("refusing to cache an empty engine")
        manifest = json.loads(manifest_json) if isinstance(manifest_json, str) else dict(manifest_json)
        self.root.mkdir(parents=True, exist_ok=True)
        engine_path = self.path_for(key)
        checksum_path, record_path = sidecar_paths(engine_path)
        record = {"digest": cache_key(key), "key": key.model_dump(mode="json"), "manifest": manifest}
        _write_atomic(record_path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        _write_atomic(checksum_path, f"{sha256_bytes(engine_bytes)}  {engine_path.name}\n".encode("utf-8"))
        _write_atomic(engine_path, bytes(engine_bytes))
        return engine_path

    def load_with_manifest(self, key: EngineKey) -> tuple[bytes, dict[str, Any]]:
        """Verified engine bytes for ``key`` and the manifest stored beside them."""
        engine_path = self.path_for(key)
        engine_bytes, stored_key, manifest = read_verified_engine(engine_path)
        if stored_key != key:
            fields = ", ".join(_differing_fields(stored_key, key))
            raise EngineCacheError(f"refusing {engine_path.name}: its recorded key differs from the requested key in {fields}")
        return engine_bytes, manifest

    def load(self, key: EngineKey) -> bytes:
        """Verified engine bytes for ``key``; EngineCacheError (with the reason) otherwise."""
        return self.load_with_manifest(key)[0]

    def lookup(self, key: EngineKey) -> bytes | None:
        """None when no engine is cached for ``key``; raises EngineCacheError when one is but is refused."""
        if not self.path_for(key).exists():
            return None
        return self.load(key)

    def evict(self, key: EngineKey) -> None:
        """Delete the engine of ``key`` and its sidecars (missing files are fine)."""
        engine_path = self.path_for(key)
        for path in (engine_path, *sidecar_paths(engine_path)):
            path.unlink(missing_ok=True)

    def get_or_build(
        self,
        key: EngineKey,
        build_fn: Callable[[], bytes],
        manifest_json: str | Mapping[str, Any] | None = None,
    ) -> bytes:
        """Cached bytes for ``key``, or ``build_fn()`` stored and returned.

        A refused entry is logged with its reason, deleted and rebuilt: a mismatched engine is
        never returned.
        """
        try:
            cached = self.lookup(key)
        except EngineCacheError as exc:
            log.warning("rebuilding engine: %s", exc)
            self.evict(key)
            cached = None
        if cached is not None:
            return cached
        engine_bytes = bytes(build_fn())
        self.store(key, engine_bytes, manifest_json if manifest_json is not None else {})
        return engine_bytes
