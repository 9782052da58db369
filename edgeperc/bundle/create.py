"""Build a signed bundle for one device target: the pipelines' ONNX models at the target's
precision (with their manifests), the target YAML, the kernel/plugin libraries for the target's
machine, the runtime version, a latency baseline, and ``bundle.json`` listing every file with
its size and sha256, signed with Ed25519 (``bundle.json.sig``)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeperc.bundle.archive import Progress, write_archive
from edgeperc.bundle.errors import StorageBudgetError
from edgeperc.bundle.latency import PIPELINE_MODELS, baseline_document, measure, open_onnxruntime
from edgeperc.bundle.libraries import collect_libraries, target_arch
from edgeperc.bundle.manifest import (MANIFEST_NAME, SCHEMA, SIGNATURE_NAME, VERSION_PATTERN, BaselineInfo, BundleManifest,
                                      FileEntry, LatencySettings, ModelEntry, RuntimeInfo, Signer, TargetInfo)
from edgeperc.bundle.signing import fingerprint, load_private_key, sign
from edgeperc.bundle.verify import installed_runtime
from edgeperc.errors import ConfigError
from edgeperc.hashing import sha256_file
from edgeperc.models.shipped import weights_dir
from edgeperc.targets import TargetConfig, _read_source, parse_target

BASELINE_PATH = "baseline/latency.json"
RUNTIME_PATH = "runtime.json"


@dataclass(frozen=True)
class CreateResult:
    path: Path
    manifest: BundleManifest
    archive_bytes: int
    seconds: dict[str, float]


def shipped_weights() -> Path:
    return weights_dir()


def choose_model(stem: str, models_dir: Path, target: TargetConfig, precision: str, notes: list[str]) -> tuple[Path, str, str]:
    """(ONNX file, its precision, engine precision) for ``stem`` at ``precision`` on ``target``.

    ORT targets run the ONNX as it is: fp16/int8/int4 need ``<stem>.<precision>.onnx``. TensorRT
    targets build fp16 engines from the FP32 ONNX; int8/int4 engines need a QDQ ONNX."""
    from edgeperc.export.engine_build import check_model_precision
    from edgeperc.onnx_io import load_onnx

    fp32 = models_dir / f"{stem}.onnx"
    if not fp32.is_file():
        raise ConfigError(f"model {fp32} not found: the {stem} model is needed (export it, or pass --models-dir)")
    if precision == "fp32" or (precision == "fp16" and target.backend == "tensorrt"):
        return fp32, "fp32", precision
    quantized = models_dir / f"{stem}.{precision}.onnx"
    if quantized.is_file():
        if target.backend == "tensorrt":
            try:
                check_model_precision(load_onnx(quantized, check=False), precision, str(quantized))
            except ConfigError as exc:
                notes.append(f"{quantized.name} cannot build a TensorRT {precision} engine ({exc}); "
                             f"the FP32 {fp32.name} is included and built as fp16")
                return fp32, "fp32", "fp16"
        return quantized, precision, precision
    fallback = "fp16" if target.backend == "tensorrt" else "fp32"
    notes.append(f"no {precision.upper()} model {quantized.name} in {models_dir}: the FP32 {fp32.name} is included "
                 f"({'built as an fp16 engine' if target.backend == 'tensorrt' else 'run in FP32'}); make one with "
                 f"`edgeperc quantize {fp32.name} --precision {precision} --target {target.name}` and pass --models-dir")
    return fp32, "fp32", fallback


def _file_entry(path: str, source: Path | bytes, role: str) -> FileEntry:
    import hashlib

    if isinstance(source, bytes):
        return FileEntry(path=path, size=len(source), sha256=hashlib.sha256(source).hexdigest(), role=role)
    return FileEntry(path=path, size=source.stat().st_size, sha256=sha256_file(source), role=role)


def bundle_name(out: Path) -> str:
    """scanner-1.2.0.edgeperc(.gz) -> scanner-1.2.0"""
    name = out.name
    for suffix in (".gz", ".tgz", ".tar", ".edgeperc"):
        name = name.removesuffix(suffix)
    return name or out.name


def default_version() -> str:
    from edgeperc import __version__

    return f"{__version__}-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def create_bundle(target: str | Path, pipelines: list[str], key: str | Path, out: str | Path, version: str | None = None,
                  kernels_dir: str | Path = "build", models_dir: str | Path | None = None, precision: str | None = None,
                  baseline: str | Path | None = None, measure_baseline: bool | None = None,
                  settings: LatencySettings | None = None, gzip: bool = False, cross_compile: bool = True,
                  progress: Progress | None = None) -> CreateResult:
    """Write the signed bundle ``out``. ``baseline``: a latency-test baseline JSON to ship as it is;
    else x86 targets measure one here (``measure_baseline`` default) and Jetson targets record that
    it is measured at first boot."""
    import time

    from edgeperc.manifest import read_manifest
    from edgeperc.onnx_io import load_onnx
    from edgeperc.profiling.budgets import load_baseline

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    label, text = _read_source(target)  # a shipped name or a path, exactly as --target reads it everywhere
    config = parse_target(text, label)
    target_text = text.encode("utf-8")
    version = version or default_version()
    if not re.match(VERSION_PATTERN, version):
        raise ConfigError(f"--version {version!r}: letters, digits and . _ + - only (it names a folder on the device), "
                          "starting with a letter or digit, at most 64 characters")
    pipelines = list(dict.fromkeys(p.strip() for p in pipelines if p.strip()))
    if not pipelines:
        raise ConfigError("--pipelines: give at least one pipeline (barcode, depth)")
    unknown = [p for p in pipelines if p not in PIPELINE_MODELS]
    if unknown:
        raise ConfigError(f"--pipelines: {', '.join(unknown)} cannot go into a bundle; available: {', '.join(PIPELINE_MODELS)}")
    precision = precision or config.default_precision
    if precision not in config.precisions:
        raise ConfigError(f"precision {precision!r} is not allowed on target {config.name}; allowed: {', '.join(config.precisions)}")
    private_key = load_private_key(key)
    models_dir = Path(models_dir) if models_dir is not None else shipped_weights()
    kernels_dir = Path(kernels_dir)
    out = Path(out)
    notes: list[str] = []
    arch = target_arch(config)
    settings = settings or LatencySettings(iterations=10, warmup=2, input_count=2, seed=0, frame_size={}, tolerance=0.2)

    files: list[tuple[str, Path | bytes, int, str]] = []  # (bundle path, source, mode, role)
    models: list[ModelEntry] = []
    per_pipeline: dict[str, dict[str, Path]] = {}
    for pipeline in pipelines:
        per_pipeline[pipeline] = {}
        for role, stem in PIPELINE_MODELS[pipeline].items():
            source, onnx_precision, engine_precision = choose_model(stem, models_dir, config, precision, notes)
            manifest = read_manifest(load_onnx(source, check=False))
            if manifest is None:
                raise ConfigError(f"{source} has no edgeperc manifest: export it with `edgeperc export` first")
            bundle_path = f"models/{source.name}"
            manifest_path = f"models/{source.stem}.manifest.json"
            if bundle_path not in [f[0] for f in files]:
                files.append((bundle_path, source, 0o644, "model"))
                files.append((manifest_path, (manifest.model_dump_json(indent=1) + "\n").encode(), 0o644, "model-manifest"))
            models.append(ModelEntry(pipeline=pipeline, role=role, path=bundle_path, manifest_path=manifest_path,
                                     source=str(source), onnx_precision=onnx_precision, engine_precision=engine_precision,
                                     family=manifest.family, graph_sha256=manifest.graph_sha256))
            per_pipeline[pipeline][role] = source
    if progress:
        progress("models", 1, 1)
    target_file = f"target/{config.name}.yaml"
    files.append((target_file, target_text, 0o644, "target"))

    libraries, library_notes = collect_libraries(config, kernels_dir, cross_compile)
    notes += library_notes
    for library in libraries:
        if library.entry.included:
            files.append((library.entry.path, library.source, 0o755, "library"))

    edgeperc_version, abi = installed_runtime()
    versions = {"edgeperc": edgeperc_version, "kernels_abi": abi, "python": platform.python_version()}
    for module in ("onnxruntime", "onnx"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    files.append((RUNTIME_PATH, (json.dumps(versions, indent=1, sort_keys=True) + "\n").encode(), 0o644, "runtime"))
    seconds["collect"] = time.perf_counter() - started

    # Latency baseline: given, measured here (x86 targets: this machine is the kind of host the
    # target describes), or left to the first boot (Jetson targets: only the device can measure it).
    started = time.perf_counter()
    if measure_baseline is None:
        measure_baseline = arch == "x86-64" and baseline is None
    if baseline is not None:
        load_baseline(baseline)  # malformed files fail here, not on the device
        data = json.loads(Path(baseline).read_text())
        files.append((BASELINE_PATH, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), 0o644, "baseline"))
        baseline_info = BaselineInfo(status="provided", path=BASELINE_PATH, settings=settings,
                                     note=f"from {baseline} (measured on {data.get('machine', {}).get('cpu', 'an unrecorded machine')})")
    elif measure_baseline:
        runtime_notes: list[str] = []
        measured = measure(per_pipeline, settings, lambda path: open_onnxruntime(path, config, runtime_notes), progress)
        document = baseline_document(config.name, measured, settings)
        files.append((BASELINE_PATH, (json.dumps(document, indent=1, sort_keys=True) + "\n").encode(), 0o644, "baseline"))
        baseline_info = BaselineInfo(status="measured", path=BASELINE_PATH, settings=settings,
                                     note=f"measured at create on {document['machine'].get('cpu')} "
                                          f"({document['machine'].get('cores')} cores); {'; '.join(runtime_notes)}")
    else:
        baseline_info = BaselineInfo(status="first-boot", settings=settings,
                                     note=f"to be measured at first boot on the {config.device} (`edgeperc bundle activate`); "
                                          "the target's latency budgets apply meanwhile")
    seconds["baseline"] = time.perf_counter() - started

    started = time.perf_counter()
    entries = [_file_entry(path, source, role) for path, source, _, role in files]
    manifest = BundleManifest(
        schema=SCHEMA, name=bundle_name(out), version=version,
        created_utc=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        created_on={"machine": platform.machine(), "system": f"{platform.system()} {platform.release()}",
                    "python": platform.python_version()},
        target=TargetInfo(name=config.name, path=target_file, backend=config.backend, arch=arch,
                          gpu_sm=config.gpu.sm if config.gpu else None, tensorrt_version=config.tensorrt_version,
                          default_precision=precision, storage_budget_mib=config.storage_budget_mib),
        runtime=RuntimeInfo(edgeperc=edgeperc_version, kernels_abi=abi, path=RUNTIME_PATH, python=versions["python"],
                            onnxruntime=versions["onnxruntime"], onnx=versions["onnx"]),
        pipelines=pipelines, models=models, libraries=[lib.entry for lib in libraries], baseline=baseline_info,
        files=entries, signer=Signer(fingerprint=fingerprint(private_key.public_key())), notes=notes)
    if manifest.total_bytes > config.storage_budget_mib << 20:
        raise StorageBudgetError(f"bundle not created (storage): its files take {manifest.total_bytes / 2**20:.1f} MiB, target {config.name} allows "
                          f"storage_budget_mib {config.storage_budget_mib}")
    manifest_bytes = manifest.to_bytes()
    signature = sign(private_key, manifest_bytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the destination and rename: a half-written bundle never carries the final name.
    handle = tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp", delete=False)
    handle.close()
    tmp = Path(handle.name)
    try:
        mtime = int(_dt.datetime.now(_dt.timezone.utc).timestamp())
        members = [(MANIFEST_NAME, manifest_bytes, 0o644), (SIGNATURE_NAME, signature, 0o644)]
        members += [(path, source, mode) for path, source, mode, _ in files]
        write_archive(tmp, members, mtime, gzip_level=6 if gzip else None, progress=progress)
        os.chmod(tmp, 0o644)  # a bundle is public (signed, not secret); mkstemp made it 0600
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    seconds["write"] = time.perf_counter() - started
    return CreateResult(out, manifest, out.stat().st_size, seconds)
