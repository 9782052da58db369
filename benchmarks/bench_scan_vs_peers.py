"""edgeperc scan vs the decoders people use today, same frames, same run:
zxing-cpp on the whole frame, zxing-cpp over overlapping 1024 px tiles (the stronger baseline),
and OpenCV's barcode + QR detectors. Reports median/p99 time, decode rate and wrong texts per
frame size, the ratio to zxing-cpp, and edgeperc's per-stage breakdown.

    python benchmarks/bench_scan_vs_peers.py --sizes 4096 8192 16384 --frames 6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from edgeperc.cli_barcode import make_scanner
from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene

ROOT = Path(__file__).resolve().parents[1]


def zxing_whole(frame: np.ndarray) -> set[str]:
    import zxingcpp

    return {r.text for r in zxingcpp.read_barcodes(frame)}


def zxing_tiles(frame: np.ndarray, tile_px: int = 1024, overlap_px: int = 256) -> set[str]:
    import zxingcpp

    texts: set[str] = set()
    height, width = frame.shape
    step = tile_px - overlap_px
    for top in range(0, max(1, height - overlap_px), step):
        for left in range(0, max(1, width - overlap_px), step):
            texts |= {r.text for r in zxingcpp.read_barcodes(frame[top : top + tile_px, left : left + tile_px])}
    return texts


def opencv_detectors(frame: np.ndarray) -> set[str]:
    texts: set[str] = set()
    ok, decoded, *_ = cv2.barcode.BarcodeDetector().detectAndDecodeMulti(frame)
    if ok:
        texts |= {t for t in decoded if t}
    ok, decoded, _, _ = cv2.QRCodeDetectorAruco().detectAndDecodeMulti(frame)
    if ok:
        texts |= {t for t in decoded if t}
    return texts


def rates(found: set[str], truth: list[str]) -> tuple[int, int]:
    """(truth codes found, wrong texts reported)."""
    return len(found & set(truth)), len(found - set(truth))


def run(sizes: list[int], frames: int, seed: int) -> dict:
    scanner = make_scanner(None, None, None)
    methods = {"edgeperc": None, "zxing-cpp": zxing_whole, "zxing-cpp tiles 1024": zxing_tiles, "OpenCV barcode+QR": opencv_detectors}
    report: dict = {}
    for size in sizes:
        rng = np.random.default_rng(seed + size)
        rows = {name: {"ms": [], "found": 0, "wrong": 0} for name in methods}
        stages: dict[str, list[float]] = {}
        truth_total = 0
        for index in range(frames):
            scene = generate_scene(rng, SceneRecipe(size_hw=(size, size), mean_count=8, module_px=(2, 5)))
            truth = [t.text for t in scene.barcodes]
            truth_total += len(truth)
            for name, method in methods.items():
                start = time.perf_counter()
                if method is None:
                    result = scanner.scan(scene.image)
                    found = {b.text for b in result.barcodes if b.text}
                    for stage, ms in result.latency_ms.items():
                        stages.setdefault(stage, []).append(ms)
                else:
                    found = method(scene.image)
                rows[name]["ms"].append((time.perf_counter() - start) * 1e3)
                hit, wrong = rates(found, truth)
                rows[name]["found"] += hit
                rows[name]["wrong"] += wrong
            print(f"{size}px frame {index + 1}/{frames}: " + ", ".join(f"{n} {rows[n]['ms'][-1]:.0f} ms" for n in methods), flush=True)
        report[str(size)] = {
            "truth_codes": truth_total,
            "methods": {name: {"median_ms": float(np.median(r["ms"])), "p99_ms": float(np.percentile(r["ms"], 99)),
                               "decode_rate": r["found"] / max(truth_total, 1), "wrong_texts": r["wrong"],
                               "paired_ratio_vs_zxing": float(np.median(np.array(r["ms"]) / np.array(rows["zxing-cpp"]["ms"])))}
                        for name, r in rows.items()},
            "edgeperc_stages_median_ms": {stage: float(np.median(v)) for stage, v in stages.items()},
        }
    return report


def markdown(report: dict, command: str, machine: str) -> str:
    lines = ["## Barcode scan vs zxing-cpp and OpenCV", "", f"Command: `{command}`  ", f"Machine: {machine}  ",
             "Generated frames (ch. 3 recipe, Poisson mean 8 codes, module 2-5 px, seed per size); all methods on the "
             "same decoded frame in memory (image loading excluded), interleaved frame by frame. Decode rate = truth texts "
             "found / truth codes; wrong texts = reported texts matching no code in the frame. Ratio = median over frames "
             "of method time / zxing-cpp whole-frame time on the same frame.", "",
             "| frame | method | median (ms) | p99 (ms) | time vs zxing-cpp | decode rate | wrong texts |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for size, entry in report.items():
        for name, row in entry["methods"].items():
            lines.append(f"| {size}² ({entry['truth_codes']} codes) | {name} | {row['median_ms']:.0f} | {row['p99_ms']:.0f} | "
                         f"{row['paired_ratio_vs_zxing']:.2f}x | {row['decode_rate']:.3f} | {row['wrong_texts']} |")
    lines += ["", "edgeperc per-stage medians (ms): " + "; ".join(
        f"{size}²: " + ", ".join(f"{k} {v:.0f}" for k, v in entry["edgeperc_stages_median_ms"].items()) for size, entry in report.items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--seed", type=int, default=77)
    args = parser.parse_args()
    from bench_ynet_precisions import machine, write_section

    report = run(args.sizes, args.frames, args.seed)
    out = ROOT / "docs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scan_vs_peers.json").write_text(json.dumps(report, indent=1) + "\n")
    command = f"python benchmarks/bench_scan_vs_peers.py --sizes {' '.join(map(str, args.sizes))} --frames {args.frames} --seed {args.seed}"
    section = markdown(report, command, machine())
    write_section(ROOT / "docs" / "BENCHMARKS.md", "scan-vs-peers", section)
    print(section)


if __name__ == "__main__":
    main()
