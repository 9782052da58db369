"""Kernel host library vs OpenCV on the CPU, same inputs, same process (interleaved runs).

The host library is the CUDA kernels' code compiled for the CPU, single-threaded: it is there to
check the kernels, so the ratio only has to show it is not absurdly slow. OpenCV runs with its
own threads and SIMD. Writes the `kernels-cpu` section of docs/BENCHMARKS.md.

    python benchmarks/bench_kernels_cpu.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from edgeperc.kernels import reference
from edgeperc.kernels.host import host_library

ROOT = Path(__file__).resolve().parents[1]
NORM = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def time_pair(host_fn, opencv_fn, runs: int) -> tuple[float, float, object, object]:
    """Median ms of each, runs interleaved (A B A B ...) after one warm-up of each."""
    host_out, opencv_out = host_fn(), opencv_fn()
    samples = {"host": [], "opencv": []}
    for _ in range(runs):
        for name, fn in (("host", host_fn), ("opencv", opencv_fn)):
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples["host"])), float(np.median(samples["opencv"])), host_out, opencv_out


def cases(rng: np.random.Generator) -> list[dict]:
    host = host_library()
    frame = rng.integers(0, 256, (8192, 8192, 3), dtype=np.uint8)
    frame[:] = cv2.GaussianBlur(frame[::16, ::16], (0, 0), 2).repeat(16, 0).repeat(16, 1)  # smooth-ish content
    centres = rng.uniform(500, 7700, (16, 2))
    matrices = np.array([[[1.4, 0.2, x - 280], [-0.2, 1.4, y - 280], [1e-5, 0, 1]] for x, y in centres], np.float32)
    prob = np.zeros((400, 400), np.float32)
    for x0, y0, w, h in rng.integers([0, 0, 30, 10], [330, 360, 120, 60], (8, 4)):
        prob[y0:y0 + h, x0:x0 + w] = rng.uniform(0.6, 1.0)
    prob = np.clip(cv2.GaussianBlur(prob, (0, 0), 1.5) + rng.normal(0, 0.05, prob.shape).astype(np.float32), 0, 1)
    pano = rng.integers(0, 256, (960, 1920, 3), dtype=np.uint8)
    pano = cv2.GaussianBlur(pano, (0, 0), 3)
    return [
        {"kernel": "area downsample", "input": "8192x8192 RGB -> 256x256", "runs": 5,
         "host": lambda: host.area_downsample(frame, (256, 256)),
         "opencv": lambda: reference.area_downsample_opencv(frame, (256, 256)),
         "agree": lambda a, b: "bit-exact" if np.array_equal(a, b) else f"max {np.abs(a.astype(int) - b).max()} LSB"},
        {"kernel": "RoI warp + normalise", "input": "16 RoIs of an 8192x8192 RGB frame -> 16x3x400x400 fp32", "runs": 5,
         "host": lambda: host.roi_warp_normalise(frame, matrices, (400, 400), **NORM),
         "opencv": lambda: reference.roi_warp_normalise_opencv(frame, matrices, (400, 400), **NORM),
         "agree": lambda a, b: f"max {np.abs(a - b).max() * 0.229 * 255:.2f} LSB (OpenCV: 1/32 px, uint8)"},
        {"kernel": "mask post-processing", "input": "400x400 prob map, erode disk r=2, 8-connected boxes", "runs": 30,
         "host": lambda: host.mask_components(prob, 0.5, 2),
         "opencv": lambda: reference.mask_components_opencv(prob, 0.5, 2),
         "agree": lambda a, b: "bit-exact" if np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
         else "DIFFER"},
        {"kernel": "panorama input", "input": "960x1920 RGB -> 3x512x(1024+2x16) fp32", "runs": 15,
         "host": lambda: host.panorama_input(pano, (512, 1024), 16, **NORM),
         "opencv": lambda: reference.panorama_input_opencv(pano, (512, 1024), 16, **NORM),
         "agree": lambda a, b: f"max {np.abs(a - b).max() * 0.229 * 255:.2f} LSB (OpenCV rounds to uint8)"},
    ]


def markdown(rows: list[dict], command: str) -> str:
    from bench_ynet_precisions import (
        machine,  # run as a script: benchmarks/ is on sys.path
    )

    lines = [
        "## Kernels on the CPU: host library vs OpenCV",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)  ",
        ("Same inputs, runs interleaved in one process, one warm-up each. The host library is the CUDA kernels' "
         "code built with the C++ compiler, single-threaded, for checking them; OpenCV uses its threads and SIMD. "
         "No GPU figure: none was measured (see `benchmarks/gpu_kernels.py`)."),
        "",
        "| kernel | input | host library median (ms) | OpenCV median (ms) | host / OpenCV | outputs |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    lines += [f"| {r['kernel']} | {r['input']} | {r['host_ms']:.1f} | {r['opencv_ms']:.1f} | {r['ratio']:.2f}x | {r['agree']} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    rows = []
    for case in cases(np.random.default_rng(0)):
        host_ms, opencv_ms, a, b = time_pair(case["host"], case["opencv"], case["runs"])
        row = {"kernel": case["kernel"], "input": case["input"], "host_ms": host_ms, "opencv_ms": opencv_ms,
               "ratio": host_ms / opencv_ms, "agree": case["agree"](a, b)}
        print(f"{row['kernel']:22s} host {host_ms:8.1f} ms  opencv {opencv_ms:8.1f} ms  x{row['ratio']:.2f}  {row['agree']}")
        rows.append(row)
    if not args.no_write:
        from bench_ynet_precisions import write_section

        write_section(ROOT / "docs" / "BENCHMARKS.md", "kernels-cpu", markdown(rows, "python benchmarks/bench_kernels_cpu.py"))


if __name__ == "__main__":
    main()
