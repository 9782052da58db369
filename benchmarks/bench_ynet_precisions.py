"""Y-Net (small and paper widths) on ONNX Runtime CPU: FP32 vs FP16 vs INT8, same run.

Exports each width through `edgeperc export`'s code path, quantizes to FP16 and INT8 (accuracy-drop
report on a held-out synthetic set), then times the three models interleaved (A B C A B C ...)
so machine drift hits all alike. Writes a Markdown section, a JSON record and a latency plot.

    python benchmarks/bench_ynet_precisions.py --runs-small 60 --runs-paper 25
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from pathlib import Path

import numpy as np
from edgeperc.export.calibration import load_samples
from edgeperc.export.onnx_export import export_family
from edgeperc.export.quantize import quantize_model
from edgeperc.profiling.latency import summarise_ms, time_interleaved
from edgeperc.runtime.backends import OnnxRuntimeBackend

from edgeperc.manifest import manifest_of
from edgeperc.onnx_io import load_onnx, save_onnx

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "edgeperc" / "models" / "weights"
CACHE = ROOT / "benchmarks" / ".cache"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    import onnxruntime

    return f"{cpu}, {len(__import__('os').sched_getaffinity(0))} cores, {platform.system()} {platform.machine()}, onnxruntime {onnxruntime.__version__}"


def paper_checkpoint(steps: int) -> Path:
    """Width 64 is too large to ship (65 MB): train it here once on the synthetic set (cached)."""
    path = CACHE / f"ynet-barcode-w64-zx-s{steps}.safetensors"  # zx: trained on zxing-cpp scenes
    if not path.exists():
        subprocess.run(["edgeperc", "train", "ynet-barcode", "--width", "64", "--steps", str(steps), "--batch", "4",
                        "--pool", "64", "--crop", "192x192", "--seed", "0", "--lr", "1e-3", "-o", str(path)], check=True)
    return path


def bench_width(label: str, checkpoint: Path, runs: int, calib_n: int, held_n: int) -> dict:
    CACHE.mkdir(parents=True, exist_ok=True)
    slug = label.split(" (")[0].replace(" ", "-")
    fp32_path = CACHE / f"{slug}.onnx"
    export_family("ynet-barcode", fp32_path, checkpoint=checkpoint)
    fp32 = load_onnx(fp32_path)
    manifest = manifest_of(fp32)
    calib = load_samples(None, manifest, calib_n, 0)
    held = load_samples(None, manifest, held_n, 1000)
    models = {"fp32": fp32}
    reports = {}
    for precision in ("fp16", "int8"):
        result = quantize_model(fp32, precision, calib if precision == "int8" else None, held, latency_runs=5)
        save_onnx(result.model, CACHE / f"{slug}.{precision}.onnx")
        models[precision], reports[precision] = result.model, result.report
    backends = {name: OnnxRuntimeBackend(model) for name, model in models.items()}
    feeds = held.feeds[0]
    samples = time_interleaved({name: (lambda b=b: b.infer(feeds)) for name, b in backends.items()}, runs, warmup=3)
    stats = {name: summarise_ms(values).as_dict() for name, values in samples.items()}
    for name in stats:  # pair by pair: each run of a precision against the FP32 run beside it
        stats[name]["paired_ratio_median"] = float(np.median(samples[name] / samples["fp32"]))
    return {
        "label": label,
        "checkpoint": str(checkpoint.relative_to(ROOT)) if checkpoint.is_relative_to(ROOT) else str(checkpoint),
        "params": None,
        "size_bytes": {name: len(m.SerializeToString()) for name, m in models.items()},
        "latency": stats,
        "samples_ms": {name: values.tolist() for name, values in samples.items()},
        "accuracy": {p: r.model_dump() for p, r in reports.items()},
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4))
    for axis, result in zip(np.atleast_1d(axes), results):
        names = list(result["samples_ms"])
        axis.boxplot([result["samples_ms"][n] for n in names], tick_labels=names, showfliers=True)
        axis.set_title(f"{result['label']} — ONNX Runtime CPU, batch 1")
        axis.set_ylabel("latency (ms)")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(results: list[dict], command: str) -> str:
    lines = [
        "## Y-Net on ONNX Runtime CPU: FP32 vs FP16 vs INT8",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        "Batch 1, 400x400 grey input, the three precisions timed interleaved in one process (warm-up 3). "
        "Ratios are against FP32 of the same run. Accuracy: mask IoU on a held-out synthetic set (seed 1000), "
        "INT8 calibrated on the family generator (seed 0), ORT QDQ per-channel, asymmetric activations (CPU target).",
        "",
        "| model | precision | size (MB) | median (ms) | p99 (ms) | time vs FP32 (median of paired ratios) | mask IoU | IoU drop vs FP32 | mask agreement |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for precision in ("fp32", "fp16", "int8"):
            lat = result["latency"][precision]
            acc = result["accuracy"].get(precision)
            iou = f"{acc['quantized']:.4f}" if acc else f"{result['accuracy']['int8']['reference']:.4f}"
            drop = f"{acc['drop']:+.4f}" if acc else "—"
            agree = f"{acc['drift']['mask_agreement']:.5f}" if acc else "—"
            lines.append(
                f"| {result['label']} | {precision} | {result['size_bytes'][precision] / 1e6:.2f} | {lat['median_ms']:.1f} | "
                f"{lat['p99_ms']:.1f} | {lat['paired_ratio_median']:.2f}x | {iou} | {drop} | {agree} |"
            )
    lines += ["", "Runs per precision: " + ", ".join(f"{r['label']} {r['latency']['fp32']['runs']}" for r in results)
              + " (p99 of so few runs is close to the max).", "",
              "![latency distributions](img/ynet_precisions_latency.png)", ""]
    return "\n".join(lines)


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or append) the block between this benchmark's markers in docs/BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-small", type=int, default=60)
    parser.add_argument("--runs-paper", type=int, default=25)
    parser.add_argument("--paper-steps", type=int, default=150)
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "ynet_precisions.json")
    args = parser.parse_args()
    results = [bench_width("ynet-barcode w8 (small)", WEIGHTS / "ynet-barcode-w8.safetensors", args.runs_small, 32, 16)]
    if not args.skip_paper:
        results.append(bench_width("ynet-barcode w64 (paper)", paper_checkpoint(args.paper_steps), args.runs_paper, 16, 8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    image = ROOT / "docs" / "img" / "ynet_precisions_latency.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    plot(results, image)
    command = "python benchmarks/bench_ynet_precisions.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("runs_small", "runs_paper", "paper_steps"))
    section = markdown(results, command)
    write_section(ROOT / "docs" / "BENCHMARKS.md", "ynet-precisions", section)
    print(section)


if __name__ == "__main__":
    main()
