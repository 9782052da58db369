"""Panorama depth on ONNX Runtime CPU at 512x1024: FP32 vs INT8 (ORT static QDQ), same run.

Exports the shipped depth checkpoint at 512x1024 (the network is fully convolutional), quantizes
it with generated calibration panoramas, times both interleaved (A B A B ...), and scores both
on the same held-out panoramas through the depth pipeline (delta1, AbsRel, sigma coverage).

    python benchmarks/bench_depth_precisions.py --runs 20 --held-out 6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from edgeperc.export.calibration import load_samples
from edgeperc.export.onnx_export import export_family
from edgeperc.export.quantize import quantize_model
from edgeperc.profiling.latency import summarise_ms, time_interleaved
from edgeperc.runtime.backends import OnnxRuntimeBackend
from edgeperc.runtime.pipelines.depth.pipeline import DepthEstimator

from edgeperc.evaluation.depth import evaluate_estimators
from edgeperc.manifest import manifest_of
from edgeperc.onnx_io import load_onnx, save_onnx

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "edgeperc" / "models" / "weights"
CHECKPOINT = WEIGHTS / "ynet-depth-w32n.safetensors"  # the shipped INT8-friendly model (nearest upsampling)
CACHE = ROOT / "benchmarks" / ".cache"


def width_sweep(specs: list[str], runs: int, calib, held, feeds) -> dict[str, dict]:
    """FP32 vs INT8 time of random-weight exports at other base widths / upsamplers ("16:nearest"; speed only)."""
    results = {}
    for spec in specs:
        width, _, upsample = spec.partition(":")
        upsample = upsample or "transposed"
        fp32_path = CACHE / f"ynet-depth-w{width}-{upsample}-512x1024.onnx"
        export_family("ynet-depth", fp32_path, config_overrides={"input_hw": [512, 1024], "base_width": int(width),
                                                                 "dilated_width": None, "upsample": upsample},
                      allow_random_init=True)
        int8 = quantize_model(load_onnx(fp32_path), "int8", calib, held, latency_runs=1).model
        backends = {"fp32": OnnxRuntimeBackend(fp32_path), "int8": OnnxRuntimeBackend(int8)}
        samples = time_interleaved({n: (lambda b=b: b.infer(feeds)) for n, b in backends.items()}, runs, warmup=1)
        results[spec] = {"width": int(width), "upsample": upsample, "fp32_median_ms": float(np.median(samples["fp32"])),
                         "int8_median_ms": float(np.median(samples["int8"])),
                         "speedup": float(np.median(samples["fp32"] / samples["int8"]))}
        print(f"{spec}: {results[spec]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=6)
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="depth checkpoint (default: the shipped w32n)")
    parser.add_argument("--sweep", nargs="*", default=["8:transposed", "8:nearest", "16:nearest", "32:transposed"],
                        help="also time these WIDTH:UPSAMPLER (random weights: speed only) to show where INT8 pays")
    parser.add_argument("--sweep-runs", type=int, default=8)
    args = parser.parse_args()
    from bench_ynet_precisions import machine, write_section

    CACHE.mkdir(parents=True, exist_ok=True)
    fp32_path = CACHE / "ynet-depth-512x1024.onnx"
    export_family("ynet-depth", fp32_path, checkpoint=args.checkpoint, config_overrides={"input_hw": [512, 1024]})
    fp32 = load_onnx(fp32_path)
    manifest = manifest_of(fp32)
    calib = load_samples(None, manifest, args.calibration, 0)
    held = load_samples(None, manifest, 4, 1000)
    result = quantize_model(fp32, "int8", calib, held, latency_runs=3)
    int8_path = CACHE / "ynet-depth-512x1024.int8.onnx"
    save_onnx(result.model, int8_path)
    backends = {"fp32": OnnxRuntimeBackend(fp32_path), "int8": OnnxRuntimeBackend(int8_path)}
    feeds = held.feeds[0]
    samples = time_interleaved({name: (lambda b=b: b.infer(feeds)) for name, b in backends.items()}, args.runs, warmup=2)
    stats = {name: summarise_ms(values).as_dict() for name, values in samples.items()}
    speedup = float(np.median(samples["fp32"] / samples["int8"]))
    report = evaluate_estimators({name: DepthEstimator(b) for name, b in backends.items()}, "default", args.held_out, 4242)
    record = {"latency_ms": stats, "paired_speedup_int8": speedup, "accuracy": report["models"],
              "size_bytes": {"fp32": fp32_path.stat().st_size, "int8": int8_path.stat().st_size}}
    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "depth_precisions.json").write_text(json.dumps(record, indent=1) + "\n")
    acc = report["models"]
    lines = ["## Panorama depth at 512x1024: FP32 vs INT8 on ONNX Runtime CPU", "",
             f"Command: `python benchmarks/bench_depth_precisions.py --runs {args.runs} --held-out {args.held_out} "
             f"--calibration {args.calibration}`  ", f"Machine: {machine()}  ",
             f"`{args.checkpoint.stem}` exported at 512x1024, INT8 = ORT static QDQ (per-channel weights, heads kept FP32) "
             f"calibrated on {args.calibration} generated panoramas; network time only (one panorama, interleaved runs); "
             f"accuracy through the whole depth pipeline on {args.held_out} held-out panoramas (seed 4242).", "",
             "| | median (ms) | p99 (ms) | speed-up vs FP32 (paired) | size (KB) | delta1 | AbsRel | 1-sigma coverage | 2-sigma coverage |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in ("fp32", "int8"):
        s, a = stats[name], acc[name]
        lines.append(f"| {name} | {s['median_ms']:.0f} | {s['p99_ms']:.0f} | {1.0 if name == 'fp32' else speedup:.2f}x | "
                     f"{record['size_bytes'][name] / 1024:.0f} | {a['delta1']:.3f} | {a['abs_rel']:.3f} | "
                     f"{a['coverage_1sigma']:.3f} | {a['coverage_2sigma']:.3f} |")
    sweep = width_sweep(args.sweep, args.sweep_runs, calib, held, feeds)
    record["width_sweep"] = sweep
    (ROOT / "docs" / "benchmarks" / "depth_precisions.json").write_text(json.dumps(record, indent=1) + "\n")
    drop = (acc["fp32"]["delta1"] - acc["int8"]["delta1"]) * 100
    lines += ["", f"INT8 is {speedup:.2f}x FP32's speed (the issue's goal: >= 1.8x) at {drop:+.1f} points of delta1 "
              "(goal: <= 2 points).", ""]
    if sweep:
        lines += ["Where INT8 pays on this CPU: the same architecture at other widths and upsamplers, random weights "
                  f"(speed only, {args.sweep_runs} interleaved runs each, same export and quantizer):", "",
                  "| base width | upsampler | FP32 median (ms) | INT8 median (ms) | speed-up (paired) |",
                  "| ---: | --- | ---: | ---: | ---: |"]
        lines += [f"| {r['width']} | {r['upsample']} | {r['fp32_median_ms']:.0f} | {r['int8_median_ms']:.0f} | {r['speedup']:.2f}x |"
                  for r in sweep.values()]
        lines += ["", "Reading it: ONNX Runtime's CPU EP turns the QDQ graph into QLinearConv (u8 activations, s8 "
                  "per-channel weights; with s8 activations most convolutions stayed fake-quant and INT8 ran 0.66x FP32). "
                  "At width 8 each convolution has 4-16 channels, too few for the int8 GEMM to beat MLAS's blocked FP32 "
                  "convolution; the gain grows with width. ORT has no int8 ConvTranspose, so the paper's transposed-"
                  "convolution upsamplers stay FP32 between a DequantizeLinear and a QuantizeLinear; `upsample: nearest` "
                  "(a 1x1 convolution, then nearest 2x: the same map as a convolution after upsampling, at a quarter of "
                  "its cost) keeps the whole decoder in int8. The accuracy columns above are at 512x1024, twice the scale "
                  "the model was trained at; at its native 256x512 see the eval section (`bench_depth_eval.py`).", ""]
    section = "\n".join(lines)
    write_section(ROOT / "docs" / "BENCHMARKS.md", "depth-precisions", section)
    print(section)


if __name__ == "__main__":
    main()
