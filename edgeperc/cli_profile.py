"""CLI verbs of the profiler: `edgeperc profile PIPELINE` and `edgeperc latency-test --target T`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from edgeperc.errors import ConfigError


def _progress(label: str, console: Console) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _inputs_for(inputs: Optional[Path], pipeline: str) -> Optional[Path]:
    """--inputs DIR: DIR/<pipeline> when that folder exists (one folder for several pipelines), else DIR."""
    if inputs is None:
        return None
    if not inputs.exists():
        raise ConfigError(f"--inputs {inputs}: no such folder")
    own = inputs / pipeline
    return own if own.is_dir() else inputs


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def profile(
    pipeline: str = typer.Argument(..., help="barcode, model (with MODEL), depth (once registered), policy (planned)."),
    model: Optional[Path] = typer.Argument(None, help="For `profile model`: an ONNX file or a TensorRT engine."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML): its backend, and its budget shown beside the result."),
    iterations: int = typer.Option(20, min=1, help="Timed iterations."),
    warmup: int = typer.Option(2, min=0, help="Untimed iterations first (lazy init, caches, allocator)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default out/profile/PIPELINE)."),
    inputs: Optional[Path] = typer.Option(None, help="Folder of inputs (images for barcode, .npz for model) instead of generated ones."),
    trtexec_times: Optional[list[Path]] = typer.Option(None, "--trtexec-times", help="trtexec --exportTimes and/or --exportProfile JSON (repeat for both)."),
    frame_size: Optional[int] = typer.Option(None, help="Side of generated barcode frames (default 4096) or width of generated panoramas (default 1024)."),
    input_count: int = typer.Option(3, min=1, help="Generated inputs, cycled through the iterations."),
    seed: int = typer.Option(0, help="Seed of the generated inputs."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Time the peers (zxing-cpp; the other backend) on the same inputs, interleaved."),
    probes: bool = typer.Option(True, "--probes/--no-probes", help="Sample memory/CPU/GPU/power probes in the background."),
    probe_interval_ms: float = typer.Option(100.0, min=1.0, help="Probe sampling interval."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG plots (needs matplotlib)."),
) -> None:
    """Profile a pipeline stage by stage: percentiles, jitter, memory, energy, peers; writes profile.json, report.md, plots."""
    from edgeperc.profiling.budgets import budget_checks, check_budget_stages
    from edgeperc.profiling.pipelines import PrepareOptions, get_pipeline
    from edgeperc.profiling.probes import default_probes
    from edgeperc.profiling.profiler import run_profile
    from edgeperc.profiling.report import write_profile
    from edgeperc.profiling.trtexec import read_trtexec_json
    from edgeperc.targets import load_target

    adapter = get_pipeline(pipeline)  # unknown / not-yet names fail before anything slow
    if pipeline == "model" and model is None:
        raise ConfigError("`edgeperc profile model` needs the model path: edgeperc profile model MODEL.onnx|.engine")
    if pipeline != "model" and model is not None:
        raise ConfigError(f"a model path is only taken by `profile model`; the {pipeline} pipeline uses its shipped models")
    trtexec = [read_trtexec_json(path) for path in trtexec_times or []]
    target_config = load_target(target) if target else None
    out = out or Path("out") / "profile" / pipeline
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    options = PrepareOptions(model=model, frame_size=frame_size, input_count=input_count, seed=seed, peers=peers)
    with err.status(f"preparing {pipeline} (models, inputs)"):
        runner = adapter.prepare(target_config, _inputs_for(inputs, pipeline), options)
    try:
        if target_config is not None and pipeline in target_config.latency_budgets_ms:
            check_budget_stages(pipeline, target_config.latency_budgets_ms[pipeline], runner.stages)
        with _progress(f"profile {pipeline}", err) as progress:
            task = progress.add_task(pipeline, total=warmup + iterations)
            run = run_profile(pipeline, runner, iterations, warmup, default_probes() if probes else (),
                              probe_interval_ms / 1e3, progress=lambda done, total: progress.update(task, completed=done))
    finally:
        runner.close()
    data = write_profile(run, out, target_config.name if target_config else None, trtexec, plots=plots)
    checks = []
    if target_config is not None and pipeline in target_config.latency_budgets_ms:
        checks = budget_checks(pipeline, target_config.latency_budgets_ms[pipeline], run.summary(), run.stage_summaries())
        data["budget_checks"] = [{"check": c.name, "passed": c.passed, "message": c.message()} for c in checks]
        (out / "profile.json").write_text(json.dumps(data, indent=1) + "\n")

    table = Table("stage", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "jitter ms", title=f"{pipeline}: {iterations} iterations")
    for name, stats in data["stage_ms"].items():
        table.add_row(name, *(_ms(stats[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "jitter_ms")))
    total = data["end_to_end_ms"]
    table.add_row("[bold]end to end[/bold]", *(_ms(total[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "jitter_ms")))
    for name, stats in data["peers"].items():
        table.add_row(f"[dim]peer: {name}[/dim]", *(_ms(stats[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "jitter_ms")))
    console.print(table)
    for note in run.notes:
        console.print(f"  {note}", highlight=False, markup=False)
    energy = data["energy"]
    if energy["per_inference_mj"]:
        for source, value in energy["per_inference_mj"].items():
            console.print(f"  energy per inference: {value:.1f} mJ ({source})", highlight=False, markup=False)
    else:
        console.print(f"  energy per inference: {energy['reason']}", highlight=False, markup=False)
    for check in checks:
        console.print(f"  [{'green' if check.passed else 'red'}]{'ok' if check.passed else 'over budget'}[/] {escape(check.message())}", highlight=False)
    console.print(f"[green]wrote[/green] {out / 'profile.json'}, {out / 'report.md'}"
                  + (f", {len(data['plots'])} plots" if data["plots"] else ""), highlight=False)


def latency_test(
    target: str = typer.Option(..., "--target", help="Device target: firmware_configs/X.yaml or a shipped name."),
    baseline: Optional[Path] = typer.Option(None, help="Stored baseline JSON (from --write-baseline): regressions beyond --tolerance fail."),
    tolerance: float = typer.Option(0.2, min=0.0, help="Allowed regression over the baseline (0.2 = 20 %)."),
    junit: Optional[Path] = typer.Option(None, help="Write JUnit XML here (one testcase per pipeline x stage x statistic)."),
    iterations: int = typer.Option(20, min=1, help="Timed iterations per pipeline."),
    warmup: int = typer.Option(2, min=0, help="Untimed iterations first."),
    write_baseline: Optional[Path] = typer.Option(None, help="Write this run's p50/p99 as a baseline JSON."),
    inputs: Optional[Path] = typer.Option(None, help="Inputs folder (DIR/<pipeline>/ when it exists, else DIR) instead of generated ones."),
    frame_size: Optional[int] = typer.Option(None, help="Side of generated barcode frames (default 4096) or width of generated panoramas (default 1024)."),
    input_count: int = typer.Option(3, min=1, help="Generated inputs per pipeline."),
    seed: int = typer.Option(0, help="Seed of the generated inputs."),
    out: Optional[Path] = typer.Option(None, help="Also write each pipeline's profile (json, report, plots) under OUT/<pipeline>/."),
) -> None:
    """Run each pipeline the target budgets, compare p50/p99 per stage and end to end with the budgets
    (and a baseline); exit 0 only when every budget holds, 1 naming the breached stage otherwise."""
    from edgeperc.profiling.budgets import (Skipped, baseline_checks, baseline_record, budget_checks, check_budget_stages,
                                            junit_xml, load_baseline)
    from edgeperc.profiling.pipelines import PrepareOptions, get_pipeline, not_available_reason
    from edgeperc.profiling.profiler import run_profile
    from edgeperc.profiling.report import machine_info, write_profile
    from edgeperc.targets import load_target

    config = load_target(target)
    budgets = config.latency_budgets_ms
    if not budgets:
        raise ConfigError(f"target {config.name} has no latency budgets (latency_budgets_ms is empty): nothing to test; "
                          "add e.g. `latency_budgets_ms: {barcode: {p50: 500, p99: 900}}`")
    reference = load_baseline(baseline) if baseline is not None else None
    runnable = [name for name in budgets if not_available_reason(name) is None]
    skipped = [Skipped(name, not_available_reason(name)) for name in budgets if name not in runnable]
    if not runnable:
        raise ConfigError(f"target {config.name}: none of its budgeted pipelines can run here ("
                          + "; ".join(f"{s.pipeline}: {s.reason}" for s in skipped) + ")")
    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    machine = machine_info()
    checks, seconds, measured, notes = [], {}, {}, []
    options = PrepareOptions(frame_size=frame_size, input_count=input_count, seed=seed, peers=False)
    for name in runnable:
        with err.status(f"preparing {name}"):
            runner = get_pipeline(name).prepare(config, _inputs_for(inputs, name), options)
        try:
            check_budget_stages(name, budgets[name], runner.stages)  # a typo'd stage fails before the run
            started = time.perf_counter()
            with _progress(f"latency-test {name}", err) as progress:
                task = progress.add_task(name, total=warmup + iterations)
                run = run_profile(name, runner, iterations, warmup,
                                  progress=lambda done, total: progress.update(task, completed=done))
            seconds[name] = time.perf_counter() - started
        finally:
            runner.close()
        total, stages = run.summary(), run.stage_summaries()
        measured[name] = (total, stages)
        checks += budget_checks(name, budgets[name], total, stages)
        if reference is not None:
            if name in reference:
                checks += baseline_checks(name, reference[name], tolerance, total, stages)
            else:
                notes.append(f"baseline {baseline} has no figures for {name}: budgets only")
        if out is not None:
            write_profile(run, out / name, config.name)

    table = Table("pipeline", "stage", "stat", "measured ms", "limit ms", "against", "result",
                  title=f"latency-test {config.name}: {iterations} iterations per pipeline")
    for check in checks:
        result = "[green]pass[/green]" if check.passed else "[bold red]FAIL[/bold red]"
        against = "budget" if check.kind == "budget" else f"baseline {check.reference_ms:.1f} +{tolerance:.0%}"
        table.add_row(check.pipeline, check.stage, check.statistic, _ms(check.measured_ms), _ms(check.limit_ms), against, result)
    console.print(table)
    for skip in skipped:
        console.print(f"  [yellow]skipped[/yellow] {skip.pipeline}: {escape(skip.reason)}", highlight=False)
    for note in notes:
        console.print(f"  {note}", highlight=False, markup=False)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        props = {"target": config.name, "iterations": iterations, "warmup": warmup, "tolerance": tolerance,
                 "machine": f"{machine['cpu']}, {machine['cores']} cores, load {machine.get('load_average', '-')}"}
        junit.write_text(junit_xml(f"edgeperc.latency.{config.name}", checks, skipped, props, seconds))
        console.print(f"[green]wrote[/green] {junit}", highlight=False)
    if write_baseline is not None:
        write_baseline.parent.mkdir(parents=True, exist_ok=True)
        write_baseline.write_text(json.dumps(baseline_record(config.name, machine, measured), indent=1) + "\n")
        console.print(f"[green]wrote[/green] baseline {write_baseline}", highlight=False)
    failed = [check for check in checks if not check.passed]
    if failed:
        for check in failed:
            print(f"latency-test FAILED: {check.message()}", file=sys.stderr)
        raise typer.Exit(1)
    console.print(f"[green]latency-test passed[/green]: {len(checks)} checks on {', '.join(runnable)}"
                  + (f"; skipped {', '.join(s.pipeline for s in skipped)}" if skipped else ""), highlight=False)
