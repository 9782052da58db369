"""The manifest of a LISAt export: several ONNX graphs, a tokenizer and what runs between them.

LISAt does not fit one graph (an image encoder, an autoregressive LLM with a KV cache, SAM), so
``lisat_manifest.json`` sits beside the graphs: their files and sha256, I/O specs, the special
token ids, the KV-cache layout and each image's preprocessing. It is torch-free and lives here,
below export and runtime, because both read it; the runtime verifies it before loading a graph.

A compressed folder (export.lisat_compress) has the same graph names and layout, so the runtime
opens it the same way; each graph's ``precision`` and the ``compression`` block (method, INT4
block size, calibration, per-graph reason) say what changed. Both fields are optional, so
manifests written before compression existed still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeperc.errors import ModelFileError
from edgeperc.hashing import sha256_file
from edgeperc.json_files import read_json_file
from edgeperc.manifest import Normalisation, Precision, TensorSpec

MANIFEST_FILE = "lisat_manifest.json"
FORMAT = "edgeperc-lisat-graphs/1"
GRAPH_NAMES = ("vision", "mask_encoder", "embed", "prefill", "decode", "seg_projector", "mask_decoder")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphEntry(_Strict):
    """One ONNX file: ``file`` is relative to the manifest's folder; ``precision`` of its weights
    (absent in manifests written before compression existed: fp32)."""

    file: str
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: Precision = "fp32"


class GraphCompression(_Strict):
    """How one graph was compressed, or why it was not: ``reason`` is the measured case for the choice."""

    precision: Precision
    method: str
    reason: str
    source_sha256: str = Field(description="sha256 of the FP32 graph file it came from")
    bytes_fp32: int
    bytes: int


class CompressionInfo(_Strict):
    """A compressed folder's provenance: the FP32 export it came from, the INT4 settings (ORT's
    MatMulNBits, round-to-nearest), the calibration set, and per graph what was done and why."""

    source_manifest_sha256: str
    method: str
    int4_block_size: int
    int4_symmetric: bool
    int4_accuracy_level: int | None = None
    calibration: str
    calibration_size: int
    graphs: dict[str, GraphCompression]
    student: dict[str, Any] | None = None


class TokenIds(_Strict):
    """Ids the decode loop needs; ``image_token_id`` is replaced by ``n_image_tokens`` image tokens."""

    bos_id: int
    eos_id: int
    pad_id: int
    image_token_id: int
    seg_token_id: int
    n_image_tokens: int = Field(ge=1)


class KvCacheLayout(_Strict):
    """Per layer i: ``past_key_i`` / ``past_value_i`` in, ``present_key_i`` / ``present_value_i`` out,
    each (1, kv_heads, length, head_dim) float32, keys after the rotary embedding (HF's cache)."""

    layers: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    layout: str = "(1, kv_heads, length, head_dim)"


class ImagePreprocess(_Strict):
    """What the runtime must do to an (H, W, 3) uint8 RGB image before the graph that takes it."""

    size: tuple[int, int]
    normalisation: Normalisation
    resize: str
    pad: str


class FileEntry(_Strict):
    file: str
    sha256: str


class LisatManifest(_Strict):
    format: str = FORMAT
    family: str = "lisat"
    graphs: dict[str, GraphEntry]
    config: dict[str, Any]
    tokenizer: FileEntry | None = None
    tokens: TokenIds
    kv_cache: KvCacheLayout
    clip: ImagePreprocess
    sam: ImagePreprocess
    mask_size: tuple[int, int] = Field(description="(H, W) of mask_decoder's logits; the runtime thresholds at 0")
    opset: int
    checkpoint_sha256: str | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    compression: CompressionInfo | None = None

    def graph_path(self, folder: str | Path, name: str) -> Path:
        if name not in self.graphs:
            raise ModelFileError(f"the LISAt manifest has no graph '{name}' (it has {sorted(self.graphs)})")
        return Path(folder) / self.graphs[name].file


def write_lisat_manifest(manifest: LisatManifest, folder: str | Path) -> Path:
    path = Path(folder) / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2))
    return path


def read_lisat_manifest(folder: str | Path) -> LisatManifest:
    """Parse ``folder/lisat_manifest.json``; missing or malformed -> ModelFileError naming it."""
    path = Path(folder) / MANIFEST_FILE
    data = read_json_file(path, "LISAt manifest", missing=f"no LISAt manifest: {path}")
    try:
        manifest = LisatManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ModelFileError(f"LISAt manifest {path} is malformed: {'.'.join(map(str, first['loc']))}: "
                             f"{first['msg']}") from exc
    if manifest.format != FORMAT:
        raise ModelFileError(f"LISAt manifest {path} has format '{manifest.format}', expected '{FORMAT}'")
    return manifest


def verify_lisat_manifest(folder: str | Path) -> LisatManifest:
    """Read the manifest and check every file it lists exists with its sha256: a graph or tokenizer
    changed after export (a flipped byte, a swapped file) raises ModelFileError naming the file."""
    folder = Path(folder)
    manifest = read_lisat_manifest(folder)
    entries = [(name, g.file, g.sha256) for name, g in manifest.graphs.items()]
    if manifest.tokenizer is not None:
        entries.append(("tokenizer", manifest.tokenizer.file, manifest.tokenizer.sha256))
    for name, file, expected in entries:
        path = folder / file
        if not path.is_file():
            raise ModelFileError(f"LISAt {name} file missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelFileError(f"LISAt {name} file {path} does not match its manifest checksum "
                                 f"(sha256 {actual[:12]}..., manifest {expected[:12]}...): changed after export")
    return manifest
