"""The bundle manifest (``bundle.json``): every file with its size and sha256, the target, the
runtime it needs, the models per pipeline, the libraries and their architectures, the latency
baseline. Its exact bytes are what the Ed25519 signature (``bundle.json.sig``) covers."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeperc.bundle.errors import ArchiveError, IntegrityError

SCHEMA = "edgeperc.bundle/1"
MANIFEST_NAME = "bundle.json"
SIGNATURE_NAME = "bundle.json.sig"
RESERVED = (MANIFEST_NAME, SIGNATURE_NAME)
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
_MAX_PATH = 240


def safe_member_path(name: str) -> str:
    """``name`` if it is a plain relative POSIX path inside the bundle; ArchiveError otherwise
    (absolute paths, ``..``, ``.`` parts, backslashes, control characters, over-long names)."""
    problem = None
    if not name or len(name) > _MAX_PATH:
        problem = "empty or over-long name"
    elif name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "absolute path"
    elif "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "backslash or control character"
    else:
        parts = name.split("/")
        if any(part == ".." for part in parts):
            problem = "path traversal (..)"
        elif any(part in ("", ".") for part in parts):
            problem = "empty or '.' path component"
    if problem:
        raise ArchiveError(f"bundle refused (archive): member {name!r}: {problem}")
    return str(PurePosixPath(name))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class FileEntry(_Strict):
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["model", "model-manifest", "target", "library", "baseline", "runtime"]


class ModelEntry(_Strict):
    pipeline: str
    role: str  # "rpn", "ynet", "depth"
    path: str  # models/<file>.onnx in the bundle
    manifest_path: str  # models/<file>.manifest.json (the ONNX-embedded manifest, readable without onnx)
    source: str  # where create took it from
    onnx_precision: str  # what the ONNX graph holds
    engine_precision: str  # what a TensorRT engine is built with at first boot (= onnx_precision on ORT targets)
    family: str | None = None
    graph_sha256: str | None = None


class LibraryEntry(_Strict):
    name: str  # libedgeperc_kernels_host.so, ...
    kind: Literal["kernels-host", "kernels-cuda", "trt-plugin"]
    included: bool
    path: str | None = None  # lib/<name> in the bundle when included
    source: str | None = None
    elf_machine: str | None = None  # read from the ELF header
    sass_sm: list[int] = Field(default_factory=list)
    abi: int | None = None
    abi_source: str | None = None  # "ep_abi_version() of the library" | "kernels.h it was built from"
    note: str = ""


class LatencySettings(_Strict):
    iterations: int = Field(ge=1)
    warmup: int = Field(ge=0)
    input_count: int = Field(ge=1)
    seed: int = 0
    frame_size: dict[str, int] = Field(default_factory=dict)  # pipeline -> side (barcode) / width (depth)
    tolerance: float = Field(ge=0)


class BaselineInfo(_Strict):
    status: Literal["measured", "provided", "first-boot"]
    path: str | None = None  # baseline/latency.json when measured or provided
    settings: LatencySettings
    note: str = ""


class TargetInfo(_Strict):
    name: str
    path: str  # target/<name>.yaml
    backend: str
    arch: str  # "x86-64" | "aarch64"
    gpu_sm: int | None = None
    tensorrt_version: str | None = None
    default_precision: str
    storage_budget_mib: int


class RuntimeInfo(_Strict):
    edgeperc: str
    kernels_abi: int
    path: str  # runtime.json
    python: str
    onnxruntime: str | None = None
    onnx: str | None = None


class Signer(_Strict):
    algorithm: Literal["ed25519"] = "ed25519"
    fingerprint: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class BundleManifest(_Strict):
    schema_: str = Field(SCHEMA, alias="schema")
    name: str
    version: str = Field(pattern=VERSION_PATTERN)
    created_utc: str
    created_on: dict[str, Any] = Field(default_factory=dict)
    target: TargetInfo
    runtime: RuntimeInfo
    pipelines: list[str]
    models: list[ModelEntry]
    libraries: list[LibraryEntry]
    baseline: BaselineInfo
    files: list[FileEntry]
    signer: Signer
    notes: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=())

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_bytes(self) -> bytes:
        """The bytes that are signed and stored as bundle.json (sorted keys, stable layout)."""
        return (json.dumps(self.model_dump(mode="json", by_alias=True), indent=1, sort_keys=True) + "\n").encode()


def parse_manifest(data: bytes) -> BundleManifest:
    """Validate bundle.json bytes (already signature-checked); IntegrityError naming the problem."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"bundle refused (manifest): bundle.json is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise IntegrityError(f"bundle refused (manifest): schema {got!r}, this edgeperc reads {SCHEMA!r}")
    try:
        manifest = BundleManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(f"bundle refused (manifest): {where}: {first['msg']}") from exc
    seen = set()
    for entry in manifest.files:
        path = safe_member_path(entry.path)
        if path != entry.path or path in RESERVED or path in seen:
            raise IntegrityError(f"bundle refused (manifest): file entry {entry.path!r} is reserved, duplicated or not normalised")
        seen.add(path)
    referenced = [manifest.target.path, manifest.runtime.path, manifest.baseline.path]
    referenced += [p for model in manifest.models for p in (model.path, model.manifest_path)]
    referenced += [lib.path for lib in manifest.libraries if lib.included]
    unlisted = sorted({p for p in referenced if p is not None} - seen)
    if unlisted:  # activation opens these paths: they must be files the hashes cover
        raise IntegrityError(f"bundle refused (manifest): it refers to file(s) it does not list: {', '.join(unlisted)}")
    return manifest
