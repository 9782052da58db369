"""Profile plots (matplotlib, Agg canvas; no global backend switch): latency histogram + CDF with
p50/p99 marked, per-stage stacked bars, latency over time with CPU frequency / temperature /
power beside it (drift and thermal throttling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeperc.profiling.profiler import ProfileRun

STAGE_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _figure(width: float, height: float, columns: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns)
    return figure, axes


def plot_histogram_cdf(run: ProfileRun, path: Path) -> Path:
    summary = run.summary()
    figure, (hist, cdf) = _figure(10, 3.8, 2)
    values = run.total_ms
    bins = max(5, min(60, int(np.sqrt(values.size) * 2)))
    hist.hist(values, bins=bins, color="#4C72B0", alpha=0.85, label=f"edgeperc {run.pipeline}")  # peers: in the CDF
    ordered = np.sort(values)
    cdf.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", color="#4C72B0", label=f"edgeperc {run.pipeline}")
    for name, peer in run.peers_ms.items():
        peer_sorted = np.sort(peer)
        cdf.step(peer_sorted, np.arange(1, peer_sorted.size + 1) / peer_sorted.size, where="post", color="#8C8C8C", label=name)
    for axis in (hist, cdf):
        axis.axvline(summary.p50_ms, color="#55A868", linestyle="--", label=f"p50 {summary.p50_ms:.1f} ms (edgeperc)")
        axis.axvline(summary.p99_ms, color="#C44E52", linestyle="--", label=f"p99 {summary.p99_ms:.1f} ms (edgeperc)")
        axis.set_xlabel("end-to-end latency (ms)")
        axis.grid(alpha=0.3)
    hist.set_ylabel("iterations")
    hist.set_title(f"{run.pipeline}: latency histogram ({values.size} iterations)")
    cdf.set_ylabel("fraction of iterations <= x")
    cdf.set_ylim(0, 1.02)
    cdf.set_title("CDF")
    hist.legend(fontsize=7)
    cdf.legend(fontsize=7, loc="lower right")
    figure.savefig(path)
    return path


def plot_stages(run: ProfileRun, path: Path) -> Path:
    """Stacked bars: the stage means, then the iterations at the end-to-end p50 and p99 (actual
    iterations, so their stages add up to their total: what the tail is made of)."""
    order = np.argsort(run.total_ms, kind="stable")
    at = lambda q: int(order[min(order.size - 1, int(round(q / 100 * (order.size - 1))))])  # noqa: E731
    columns = {"mean": None, f"p50 iteration (#{at(50)})": at(50), f"p99 iteration (#{at(99)})": at(99)}
    names = list(run.stages) + ["other"]
    values = {**run.stage_ms, "other": run.other_ms}
    figure, axis = _figure(7.5, 4.2)
    bottoms = np.zeros(len(columns))
    for colour, name in zip(STAGE_COLOURS * 4, names):
        heights = np.array([values[name].mean() if index is None else values[name][index] for index in columns.values()])
        axis.bar(list(columns), heights, bottom=bottoms, color=colour, label=name, width=0.55)
        bottoms += heights
    for x, total in enumerate(bottoms):
        axis.text(x, total, f"{total:.1f} ms", ha="center", va="bottom", fontsize=8)
    axis.set_ylabel("ms")
    axis.set_ylim(0, bottoms.max() * 1.15 if bottoms.max() > 0 else 1)
    axis.set_title(f"{run.pipeline}: time per stage")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.grid(axis="y", alpha=0.3)
    figure.savefig(path)
    return path


def plot_over_time(run: ProfileRun, path: Path) -> Path:
    figure, axis = _figure(10, 3.8)
    times = run.begin_s
    axis.plot(times, run.total_ms, marker=".", linewidth=0.8, color="#4C72B0", label="end to end")
    window = max(1, min(15, run.total_ms.size // 5))
    if run.total_ms.size >= 3 and window > 1:
        rolling = np.array([np.median(run.total_ms[max(0, i - window + 1): i + 1]) for i in range(run.total_ms.size)])
        axis.plot(times, rolling, color="#C44E52", linewidth=1.5, label=f"rolling median ({window})")
    axis.set_xlabel("time since the first timed iteration (s)")
    axis.set_ylabel("latency (ms)")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    t0 = run.window_ns[0]
    overlays = [("cpu", "cpu_mhz", "CPU MHz"), ("thermal", "max_temp_c", "max temp (C)")]
    overlays += [(name, "power_w", f"{name} power (W)") for name in run.probe_records]
    twin = None
    for probe, metric, label in overlays:
        record = run.probe_records.get(probe)
        if record is None:
            continue
        stamps, values = record.series(metric)
        inside = (stamps >= run.window_ns[0]) & (stamps <= run.window_ns[1])  # the timed loop only
        stamps, values = stamps[inside], values[inside]
        if values.size < 2:
            continue
        if twin is None:
            twin = axis.twinx()
        twin.plot((stamps - t0) / 1e9, values, linestyle=":", linewidth=1.2, label=label)
    handles, labels = axis.get_legend_handles_labels()
    if twin is not None:
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
        twin.set_ylabel("probe readings")
    axis.legend(handles, labels, fontsize=7, loc="upper right")
    axis.set_title(f"{run.pipeline}: latency over time (drift, thermal throttling)")
    figure.savefig(path)
    return path


def write_plots(run: ProfileRun, folder: Path) -> dict[str, str]:
    """{plot: file name} of the three PNGs written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "histogram_cdf": plot_histogram_cdf(run, folder / "latency_hist_cdf.png"),
        "stages": plot_stages(run, folder / "stages.png"),
        "over_time": plot_over_time(run, folder / "latency_over_time.png"),
    }
    return {name: path.name for name, path in written.items()}
