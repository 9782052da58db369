"""Peak memory of `edgeperc scan` on huge frames: one process per frame, measured by the kernel
(/usr/bin/time -v "Maximum resident set size"), against the frame's own size in memory.

    python benchmarks/bench_scan_memory.py --sizes 16384 30000
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgeperc.synth.barcode_scenes import SceneRecipe, generate_scene

ROOT = Path(__file__).resolve().parents[1]


def measure(size: int, folder: Path) -> dict:
    scene = generate_scene(np.random.default_rng(size), SceneRecipe(size_hw=(size, size), mean_count=10, jpeg_quality=None))
    path = folder / f"frame{size}.pgm"  # uncompressed: writing PNG at 30k takes minutes
    cv2.imwrite(str(path), scene.image)
    truth = {t.text for t in scene.barcodes}
    del scene
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", "edgeperc", "scan", str(path), "--json"], capture_output=True, text=True, check=True)
    wall_s = time.perf_counter() - start
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    record = json.loads(run.stdout.splitlines()[-1])
    found = {b["text"] for b in record["barcodes"] if b["text"]}
    path.unlink()
    return {"size": size, "frame_mib": size * size / 2**20, "peak_rss_mib": rss_kib / 1024, "wall_s": wall_s,
            "latency_ms": record["latency_ms"], "decoded": len(found & truth), "truth": len(truth), "wrong": len(found - truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16384, 30000])
    args = parser.parse_args()
    from bench_ynet_precisions import machine, write_section

    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(size, Path(tmp)) for size in args.sizes]
    lines = ["## Barcode scan: peak memory on huge frames", "",
             f"Command: `python benchmarks/bench_scan_memory.py --sizes {' '.join(map(str, args.sizes))}`  ", f"Machine: {machine()}  ",
             "One `edgeperc scan FRAME.pgm --json` process per frame; peak RSS from `/usr/bin/time -v`, which includes the "
             "Python interpreter, ONNX Runtime and both models (about 200-300 MiB before any frame is read).", "",
             "| frame | frame in memory (MiB, uint8) | peak RSS (MiB) | RSS / frame | scan total (ms) | decoded / codes | wrong texts |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['size']}² | {row['frame_mib']:.0f} | {row['peak_rss_mib']:.0f} | {row['peak_rss_mib'] / row['frame_mib']:.2f} | "
                     f"{row['latency_ms']['total']:.0f} | {row['decoded']} / {row['truth']} | {row['wrong']} |")
    section = "\n".join(lines) + "\n"
    write_section(ROOT / "docs" / "BENCHMARKS.md", "scan-memory", section)
    print(section)


if __name__ == "__main__":
    main()
