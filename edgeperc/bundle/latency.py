"""Latency of a bundle's pipelines on *its* model files: the profiler's runners (edgeperc.profiling)
fed with backends opened on the bundle's ONNX (or the engines built from them), timed with
``run_profile`` and checked with the latency test's budget and baseline checks. Used by
``bundle create`` (the baseline, x86 targets) and ``bundle activate`` (first boot)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edgeperc.bundle.manifest import LatencySettings
from edgeperc.errors import ConfigError

# pipeline -> {role: model stem}: the shipped models each pipeline runs
PIPELINE_MODELS: dict[str, dict[str, str]] = {
    "barcode": {"rpn": "barcode-rpn-w16", "ynet": "ynet-barcode-w8"},
    "depth": {"depth": "ynet-depth-w8"},
}
DEFAULT_FRAME_SIZE = {"barcode": 4096, "depth": 1024}

OpenBackend = Callable[[Path], object]


def open_onnxruntime(path: Path, target, notes: list[str]):
    """ONNX Runtime with the target's providers that this build has (CPU when none of them)."""
    import onnxruntime as ort

    from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    wanted = list(target.onnxruntime.execution_providers) if target is not None else ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    providers = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
    missing = [p for p in wanted if p not in available]
    note = f"ONNX Runtime providers {', '.join(providers)}" + (f" ({', '.join(missing)} not in this build)" if missing else "")
    if note not in notes:
        notes.append(note)
    return OnnxRuntimeBackend(path, providers=providers, intra_op_threads=target.onnxruntime.intra_op_threads if target else 0)


def prepare_runner(pipeline: str, models: dict[str, Path], settings: LatencySettings, open_backend: OpenBackend):
    """A profiler PipelineRunner for ``pipeline`` on ``models`` with generated inputs."""
    from edgeperc.profiling.pipelines import BarcodeRunner, DepthRunner

    rng = np.random.default_rng(settings.seed)
    size = settings.frame_size.get(pipeline, DEFAULT_FRAME_SIZE.get(pipeline))
    if pipeline == "barcode":
        from edgeperc.runtime.pipelines.barcode.pipeline import BarcodeScanner
        from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene

        scanner = BarcodeScanner(open_backend(models["rpn"]), open_backend(models["ynet"]))
        recipe = SceneRecipe(size_hw=(size, size), mean_count=4.0)
        frames = [generate_scene(rng, recipe).image for _ in range(settings.input_count)]
        return BarcodeRunner(scanner, frames, peers=False)
    if pipeline == "depth":
        from edgeperc.runtime.pipelines.depth.pipeline import DepthEstimator
        from edgeperc.synth.panoramas import panorama_recipe, render_panorama

        estimator = DepthEstimator(open_backend(models["depth"]))
        recipe = panorama_recipe("default", (size // 2, size))
        panoramas = [render_panorama(rng, recipe).rgb for _ in range(settings.input_count)]
        return DepthRunner(estimator, panoramas)
    raise ConfigError(f"pipeline {pipeline!r} cannot go into a bundle; available: {', '.join(PIPELINE_MODELS)}")


def measure(pipelines: dict[str, dict[str, Path]], settings: LatencySettings, open_backend: OpenBackend,
            progress: Callable[[str, int, int], None] | None = None) -> dict[str, tuple]:
    """{pipeline: (end-to-end LatencySummary, {stage: LatencySummary})}."""
    from edgeperc.profiling.profiler import run_profile

    measured = {}
    for name, models in pipelines.items():
        runner = prepare_runner(name, models, settings, open_backend)
        try:
            callback = (lambda done, total, name=name: progress(f"latency {name}", done, total)) if progress else None
            run = run_profile(name, runner, settings.iterations, settings.warmup, progress=callback)
        finally:
            runner.close()
        measured[name] = (run.summary(), run.stage_summaries())
    return measured


def baseline_document(target_name: str, measured: dict[str, tuple], settings: LatencySettings) -> dict:
    """The latency-test baseline file (schema edgeperc.latency-baseline/1) plus the settings it was measured with."""
    from edgeperc.profiling.budgets import baseline_record
    from edgeperc.profiling.report import machine_info

    record = baseline_record(target_name, machine_info(), measured)
    record["settings"] = settings.model_dump(mode="json")
    return record


def latency_checks(target, measured: dict[str, tuple], baseline_file: Path | None, tolerance: float) -> list:
    """Budget checks (the target's latency_budgets_ms) and, with a baseline, regression checks."""
    from edgeperc.profiling.budgets import baseline_checks, budget_checks, load_baseline

    reference = load_baseline(baseline_file) if baseline_file is not None else None
    checks = []
    for name, (total, stages) in measured.items():
        if name in target.latency_budgets_ms:
            checks += budget_checks(name, target.latency_budgets_ms[name], total, stages)
        if reference is not None and name in reference:
            checks += baseline_checks(name, reference[name], tolerance, total, stages)
    return checks
