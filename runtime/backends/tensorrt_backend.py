"""TensorRT backend: runs a cached, checksum-verified engine through Polygraphy's TrtRunner.

TensorRT and Polygraphy's TensorRT half are imported inside the functions that need them, so
this module imports (and the rest of the package runs) on machines without TensorRT. An
engine is deserialized only after ``read_verified_engine`` has checked its sha256 and key
record, and only when the installed TensorRT is the one that built it.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.engine_cache import EngineCache, EngineKey, read_verified_engine
from edgeperc.errors import BackendUnavailableError, ConfigError, EngineCacheError
from edgeperc.hashing import sha256_file
from edgeperc.manifest import Manifest, TensorSpec

from .base import Backend

TENSORRT_MISSING = (
    "TensorRT is not installed: install JetPack 6 on the Jetson, "
    "or `pip install edgeperc[tensorrt]` on an x86 host with an NVIDIA GPU"
)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError saying how to install it."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:
        raise BackendUnavailableError(f"{TENSORRT_MISSING} ({type(exc).__name__}: {exc})") from exc
    return tensorrt


def check_plugin_library(key: EngineKey, plugin_library: str | Path | None) -> Path | None:
    """The plugin library to load for an engine built with ``key``; refuse a different one."""
    if key.plugin_library_sha256 is None:
        if plugin_library is not None:
            raise ConfigError(f"plugin library {plugin_library} given, but the engine was built without one")
        return None
    if plugin_library is None:
        raise ConfigError("the engine was built with a plugin library: pass the same library (--plugin PATH)")
    path = Path(plugin_library)
    if not path.is_file():
        raise ConfigError(f"plugin library not found: {path}")
    if sha256_file(path) != key.plugin_library_sha256:
        raise EngineCacheError(
            f"plugin library {path} is not the one the engine was built with (sha256 differs): rebuild the engine"
        )
    return path


class TensorRTBackend(Backend):
    """One deserialized engine + execution context (Polygraphy ``EngineFromBytes`` + ``TrtRunner``).

    ``engine_path`` is a ``<digest>.engine`` with its ``.engine.sha256`` and ``.json`` beside it,
    as ``EngineCache`` and ``build_engine`` write them; ``key``, when given, must equal the
    recorded key (use ``from_cache``). I/O specs come from the manifest stored with the engine.
    """

    name = "tensorrt"

    def __init__(
        self,
        engine_path: str | Path,
        plugin_library: str | Path | None = None,
        key: EngineKey | None = None,
    ) -> None:
        super().__init__()
        self._runner: Any = None
        trt = import_tensorrt()
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        engine_bytes, stored_key, manifest = read_verified_engine(engine_path)
        if key is not None and stored_key != key:
            raise EngineCacheError(f"refusing {Path(engine_path).name}: its recorded key differs from the requested key")
        if stored_key.tensorrt_version != trt.__version__:
            raise EngineCacheError(
                f"refusing {Path(engine_path).name}: built with TensorRT {stored_key.tensorrt_version}, "
                f"this is TensorRT {trt.__version__}: rebuild it (edgeperc build)"
            )
        plugin = check_plugin_library(stored_key, plugin_library)
        if plugin is not None:
            ctypes.CDLL(str(plugin))  # registers its creators before deserialization needs them
        try:
            self._manifest = Manifest.model_validate(manifest)
        except ValueError as exc:
            raise EngineCacheError(f"refusing {Path(engine_path).name}: the manifest stored beside it is malformed") from exc
        self.key = stored_key
        self.engine_path = Path(engine_path)
        runner = TrtRunner(EngineFromBytes(engine_bytes), name=f"edgeperc-{self.engine_path.stem[:12]}")
        runner.activate()
        self._runner = runner

    @classmethod
    def from_cache(cls, cache: EngineCache, key: EngineKey, plugin_library: str | Path | None = None) -> "TensorRTBackend":
        return cls(cache.path_for(key), plugin_library=plugin_library, key=key)

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._manifest.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._manifest.outputs)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._runner.infer(feed_dict=feeds)
        # TrtRunner reuses its host output buffers on the next call: hand out copies.
        return {name: np.array(outputs[name], copy=True) for name in (spec.name for spec in self.outputs)}

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and runner.is_active:
            runner.deactivate()
