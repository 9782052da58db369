"""A profile on disk: ``profile.json`` (everything, samples included), ``report.md`` (tables,
peers, probes, energy, trtexec figures, plots) and the PNGs."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.profiling.profiler import END_TO_END, ProfileRun

SCHEMA = "edgeperc.profile/1"
TABLE_STATS = ("p50", "p90", "p99", "p99_9", "max", "mean", "std", "jitter")


def machine_info() -> dict[str, Any]:
    """CPU, cores usable by this process, OS, runtime versions and the load average (another
    process sharing the cores shows up here, and in the tails)."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    info: dict[str, Any] = {"cpu": cpu, "cores": cores, "os": f"{platform.system()} {platform.release()} {platform.machine()}",
                            "python": platform.python_version()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def profile_dict(run: ProfileRun, target: str | None, trtexec: list[dict] | None = None,
                 plots: dict[str, str] | None = None, machine: dict | None = None) -> dict[str, Any]:
    summary = run.summary()
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "pipeline": run.pipeline,
        "target": target,
        "machine": machine or machine_info(),
        "iterations": run.iterations,
        "warmup": run.warmup,
        "info": run.info,
        "stages": list(run.stages),
        "end_to_end_ms": summary.as_dict(),
        "stage_ms": {name: s.as_dict() for name, s in run.stage_summaries().items()},
        "other_ms_mean": float(run.other_ms.mean()),
        "throughput_per_s": summary.throughput_per_s,
        "wall_s": run.wall_s,
        "peers": {name: s.as_dict() for name, s in run.peer_summaries().items()},
        "outputs": run.outputs,
        "notes": run.notes,
        "probes": run.probes(),
        "energy": run.energy(),
        "trtexec": trtexec or [],
        "plots": plots or {},
        "samples_ms": {END_TO_END: run.total_ms.round(4).tolist(),
                       **{name: values.round(4).tolist() for name, values in run.stage_ms.items()},
                       **{f"peer:{name}": values.round(4).tolist() for name, values in run.peers_ms.items()}},
        "iteration_start_s": run.begin_s.round(6).tolist(),
    }


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _stats_row(label: str, stats: dict[str, float]) -> str:
    return "| " + " | ".join([label] + [_fmt(stats[f"{name}_ms"]) for name in TABLE_STATS]) + " |"


def markdown_report(data: dict[str, Any]) -> str:
    lines = [f"# Profile: {data['pipeline']}", ""]
    machine = data["machine"]
    lines += [f"- machine: {machine.get('cpu')}, {machine.get('cores')} cores usable, {machine.get('os')}, "
              f"onnxruntime {machine.get('onnxruntime', '-')}, load average at start {machine.get('load_average', '-')}",
              f"- target: {data['target'] or 'none (ONNX Runtime on the CPU)'}",
              f"- iterations: {data['iterations']} timed after {data['warmup']} warm-up",
              *[f"- {key}: {value}" for key, value in data["info"].items()],
              f"- throughput: {data['throughput_per_s']:.2f} /s (one stream, back to back)", ""]
    lines += ["## Latency (ms)", "",
              "| stage | " + " | ".join(TABLE_STATS) + " |", "|" + " --- |" * (len(TABLE_STATS) + 1)]
    for name, stats in data["stage_ms"].items():
        lines.append(_stats_row(name, stats))
    lines.append(_stats_row("**end to end**", data["end_to_end_ms"]))
    lines += ["", f"Time outside the named stages: {_fmt(data['other_ms_mean'])} ms per iteration on average. "
              "Jitter = std of successive differences; percentiles by linear interpolation.", ""]
    if data["peers"] or data["notes"]:
        lines += ["## Beside peers (same inputs, interleaved)", ""]
        if data["peers"]:
            ours = data["end_to_end_ms"]
            lines += ["| | p50 | p99 | mean | ratio of p50 to ours |", "| --- | --- | --- | --- | --- |",
                      f"| edgeperc {data['pipeline']} | {_fmt(ours['p50_ms'])} | {_fmt(ours['p99_ms'])} | {_fmt(ours['mean_ms'])} | 1.00 |"]
            for name, stats in data["peers"].items():
                lines.append(f"| {name} | {_fmt(stats['p50_ms'])} | {_fmt(stats['p99_ms'])} | {_fmt(stats['mean_ms'])} | "
                             f"{stats['p50_ms'] / ours['p50_ms']:.2f} |")
            lines.append("")
        for key, value in data["outputs"].items():
            lines.append(f"- {key}: {value}")
        for note in data["notes"]:
            lines.append(f"- {note}")
        lines.append("")
    if data["trtexec"]:
        lines += ["## trtexec (network only) beside this profile", ""]
        for item in data["trtexec"]:
            if item["kind"] == "times":
                lines += [f"`{item['path']}`: --exportTimes, {item['count']} inferences"
                          + (f", {item['throughput_per_s']:.1f} inferences/s" if item.get("throughput_per_s") else ""), "",
                          "| trtexec interval | p50 | p99 | mean | max |", "| --- | --- | --- | --- | --- |"]
                for name, stats in item["summaries"].items():
                    lines.append(f"| {name} | {_fmt(stats['p50_ms'])} | {_fmt(stats['p99_ms'])} | {_fmt(stats['mean_ms'])} | {_fmt(stats['max_ms'])} |")
                ours = data["end_to_end_ms"]
                lines.append(f"| **edgeperc {data['pipeline']} end to end** | {_fmt(ours['p50_ms'])} | {_fmt(ours['p99_ms'])} | "
                             f"{_fmt(ours['mean_ms'])} | {_fmt(ours['max_ms'])} |")
                if "network" in data["stage_ms"]:
                    net = data["stage_ms"]["network"]
                    lines.append(f"| edgeperc network stage | {_fmt(net['p50_ms'])} | {_fmt(net['p99_ms'])} | {_fmt(net['mean_ms'])} | {_fmt(net['max_ms'])} |")
            else:
                lines += [f"`{item['path']}`: --exportProfile, {item['count']} profiled iterations, "
                          f"sum of layer averages {_fmt(item['total_average_ms'])} ms; slowest layers:", "",
                          "| layer | average ms | median ms | % |", "| --- | --- | --- | --- |"]
                for layer in item["layers"][:10]:
                    lines.append(f"| {layer['name']} | {_fmt(layer['averageMs'])} | {_fmt(layer['medianMs'])} | {_fmt(layer['percentage'])} |")
            lines.append("")
    lines += ["## Probes", "", "| probe | status | source / reason | readings (mean / max over the timed loop) |",
              "| --- | --- | --- | --- |"]
    for name, probe in data["probes"].items():
        readings = ", ".join(f"{metric} {_fmt(v['mean'])} / {_fmt(v['max'])}" for metric, v in probe["metrics"].items())
        status = "ok" if probe["available"] else "unavailable"
        lines.append(f"| {name} | {status} | {probe['source'] if probe['available'] else probe['reason']} | {readings or '-'} |")
    energy = data["energy"]
    lines += ["", "## Energy per inference", ""]
    if energy["per_inference_mj"]:
        for source, value in energy["per_inference_mj"].items():
            lines.append(f"- {source}: {value:.1f} mJ (mean power {energy['mean_power_w'][source]:.2f} W from "
                         f"{energy['method'][source]} x mean end-to-end latency; whole package/board, not this process alone)")
    else:
        lines.append(f"- {energy['reason']}")
    if data["plots"]:
        lines += ["", "## Plots", ""]
        for name, file in data["plots"].items():
            lines.append(f"![{name}]({file})")
    return "\n".join(lines) + "\n"


def write_profile(run: ProfileRun, out: Path, target: str | None = None, trtexec: list[dict] | None = None,
                  plots: bool = True) -> dict[str, Any]:
    """Write profile.json, report.md and (with matplotlib) the plots into ``out``; returns the data."""
    out.mkdir(parents=True, exist_ok=True)
    plot_files: dict[str, str] = {}
    notes_before = len(run.notes)
    if plots:
        try:
            from edgeperc.profiling.plots import write_plots

            plot_files = write_plots(run, out)
        except ImportError as exc:
            run.notes.append(f"plots skipped: matplotlib is not installed (pip install 'edgeperc[plots]'): {exc}")
    data = profile_dict(run, target, trtexec, plot_files)
    del run.notes[notes_before:]
    (out / "profile.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "report.md").write_text(markdown_report(data))
    return data
