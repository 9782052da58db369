"""Deployment bundles for the shipped pipelines: bundle size (tar and tar.gz) and the time to
create, verify, stage and activate one, for x86-scanner-host with barcode (+ depth when its
ONNX is shipped). Times are medians over --repeats runs on this machine.

    python benchmarks/bench_bundle.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_ynet_precisions import machine, write_section

from edgeperc.bundle.activate import activate_release
from edgeperc.bundle.create import create_bundle, shipped_weights
from edgeperc.bundle.manifest import LatencySettings
from edgeperc.bundle.signing import generate_keypair, load_public_key
from edgeperc.bundle.stage import stage_bundle
from edgeperc.bundle.verify import verify_bundle

ROOT = Path(__file__).resolve().parents[1]
TARGET = "x86-scanner-host"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median_s(fn, repeats: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-iterations", type=int, default=3, help="latency iterations of the measured baseline")
    parser.add_argument("--barcode-frame", type=int, default=1024)
    parser.add_argument("--depth-width", type=int, default=512)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()

    pipelines = ["barcode"] + (["depth"] if (shipped_weights() / "ynet-depth-w8.onnx").is_file() else [])
    settings = LatencySettings(iterations=args.baseline_iterations, warmup=1, input_count=1, seed=0,
                               frame_size={"barcode": args.barcode_frame, "depth": args.depth_width}, tolerance=0.2)
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        private, public, _ = generate_keypair(work / "keys")
        key = load_public_key(public)
        build = ROOT / "build"
        # 1. create with the baseline measured here (what `bundle create --target x86-...` does by default)
        create_measured_s, measured = timed(lambda: create_bundle(TARGET, pipelines, private, work / "m.edgeperc", version="m",
                                                                  kernels_dir=build, settings=settings, measure_baseline=True))
        baseline_file = work / "baseline.json"
        with tempfile.TemporaryDirectory() as tmp:  # reuse that baseline: create without measuring
            stage_bundle(measured.path, key, tmp)
            shutil.copy(Path(tmp) / "opt/edgeperc/current/baseline/latency.json", baseline_file)
        runs = iter(range(10**6))
        create_s = median_s(lambda: create_bundle(TARGET, pipelines, private, work / f"c{next(runs)}.edgeperc", version="1.0.0",
                                                  kernels_dir=build, settings=settings, baseline=baseline_file), args.repeats)
        plain = create_bundle(TARGET, pipelines, private, work / "b.edgeperc", version="1.0.0", kernels_dir=build,
                              settings=settings, baseline=baseline_file)
        gz = create_bundle(TARGET, pipelines, private, work / "b.edgeperc.gz", version="1.0.0", kernels_dir=build,
                           settings=settings, baseline=baseline_file, gzip=True)
        verify_s = median_s(lambda: verify_bundle(plain.path, key, TARGET), args.repeats)
        verify_gz_s = median_s(lambda: verify_bundle(gz.path, key, TARGET), args.repeats)

        def stage_fresh():
            rootfs = work / f"rootfs{next(runs)}"
            rootfs.mkdir()
            return stage_bundle(plain.path, key, rootfs)

        stage_s = median_s(stage_fresh, args.repeats)
        rootfs = work / "rootfs-activate"
        rootfs.mkdir()
        stage_bundle(plain.path, key, rootfs)
        activate_s, activation = timed(lambda: activate_release(rootfs, tolerance=1.0))
        reverify_s = median_s(lambda: activate_release(rootfs), args.repeats)
        manifest = plain.manifest
        files = {entry.role: 0 for entry in manifest.files}
        for entry in manifest.files:
            files[entry.role] += entry.size
    finally:
        shutil.rmtree(work, ignore_errors=True)

    record = {"machine": machine(), "target": TARGET, "pipelines": pipelines, "settings": settings.model_dump(),
              "files": len(manifest.files), "bytes_by_role": files, "tar_bytes": plain.archive_bytes, "tar_gz_bytes": gz.archive_bytes,
              "create_measured_s": create_measured_s, "create_s": create_s, "verify_s": verify_s, "verify_gz_s": verify_gz_s,
              "stage_s": stage_s, "activate_s": activate_s, "activation": activation.status, "reverify_boot_s": reverify_s}
    print(json.dumps(record, indent=1))
    mib = 2**20
    roles = ", ".join(f"{role} {size / mib:.2f} MiB" if size >= mib / 10 else f"{role} {size / 1024:.1f} KiB"
                      for role, size in sorted(files.items(), key=lambda item: -item[1]))
    lines = [
        "## Deployment bundles",
        "",
        f"`python benchmarks/bench_bundle.py --repeats {args.repeats}` on {machine()}; load average "
        f"{os.getloadavg()[0]:.2f} at the end (other sessions share the 2 cores). Target {TARGET}, pipelines {', '.join(pipelines)}"
        + ("" if "depth" in pipelines else " (ynet-depth-w8.onnx was not shipped yet: depth left out)")
        + f"; times are medians of {args.repeats} runs except the single create-with-baseline and activate runs.",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| files in the bundle | {len(manifest.files)} ({roles}) |",
        f"| bundle size, tar | {plain.archive_bytes / mib:.2f} MiB |",
        f"| bundle size, tar.gz | {gz.archive_bytes / mib:.2f} MiB ({gz.archive_bytes / plain.archive_bytes:.0%} of the tar) |",
        f"| create, baseline measured here ({settings.iterations} iterations + 1 warm-up, barcode {args.barcode_frame} px"
        + (f", depth {args.depth_width} px" if "depth" in pipelines else "") + f") | {create_measured_s:.2f} s |",
        f"| create, stored baseline (collect, hash, sign, write) | {create_s * 1e3:.0f} ms |",
        f"| verify, tar | {verify_s * 1e3:.0f} ms |",
        f"| verify, tar.gz | {verify_gz_s * 1e3:.0f} ms |",
        f"| stage into an empty rootfs (verify + copy with fsync + rename + switch) | {stage_s * 1e3:.0f} ms |",
        f"| activate (re-verify + latency test on the staged models, ONNX Runtime CPU) | {activate_s:.2f} s ({activation.status}"
        + (f": {activation.reason}" if activation.reason else "") + ") |",
        f"| later boots (release already good: re-verify only) | {reverify_s * 1e3:.0f} ms |",
        "",
        "Create, verify and stage are I/O and sha256 bound (a few MB); create and activate are dominated by the latency "
        "runs, whose length the bundle's settings choose. Not measured: a Jetson (aarch64, eMMC/NVMe), TensorRT engine "
        "builds at first boot (TensorRT absent here).",
    ]
    if not args.no_write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", "bundle", "\n".join(lines))
        print("wrote docs/BENCHMARKS.md (bundle section)")


if __name__ == "__main__":
    main()
