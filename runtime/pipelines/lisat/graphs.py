"""Open a LISAt export: verify the manifest's checksums, then one backend per graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

from edgeperc.lisat_manifest import LisatManifest, verify_lisat_manifest


def open_lisat_graphs(folder: str | Path, providers: Sequence[str] | None = ("CPUExecutionProvider",),
                      intra_op_threads: int = 0) -> tuple[LisatManifest, dict[str, OnnxRuntimeBackend]]:
    """(manifest, {graph name: ONNX Runtime backend}); a changed or missing file raises ModelFileError
    before anything is loaded."""
    manifest = verify_lisat_manifest(folder)
    runners = {name: OnnxRuntimeBackend(manifest.graph_path(folder, name), providers=providers,
                                        intra_op_threads=intra_op_threads) for name in manifest.graphs}
    return manifest, runners
