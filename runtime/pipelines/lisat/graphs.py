"""Open a LISAt export: verify the manifest's checksums, then one backend per graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

from edgeperc.lisat_manifest import LisatManifest, verify_lisat_manifest


# ONNX Runtime 1.31's CPU SkipLayerNormalization took 160 us on the mask decoder's (256, 64) image
# tokens where the unfused Add + LayerNormalization take a fraction: with SkipLayerNormFusion off,
# mask_decoder ran 1.35 ms instead of 1.61 (FP32 and INT8 alike) and no graph ran slower.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def open_lisat_graphs(folder: str | Path, providers: Sequence[str] | None = ("CPUExecutionProvider",),
                      intra_op_threads: int = 0) -> tuple[LisatManifest, dict[str, OnnxRuntimeBackend]]:
    """(manifest, {graph name: ONNX Runtime backend}); a changed or missing file raises ModelFileError
    before anything is loaded."""
    manifest = verify_lisat_manifest(folder)
    cpu_only = list(providers or []) == ["CPUExecutionProvider"]
    disabled = CPU_DISABLED_OPTIMIZERS if cpu_only else ()
    runners = {name: OnnxRuntimeBackend(manifest.graph_path(folder, name), providers=providers,
                                        intra_op_threads=intra_op_threads, disabled_optimizers=disabled)
               for name in manifest.graphs}
    return manifest, runners
