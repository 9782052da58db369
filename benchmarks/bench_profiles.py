"""p50/p99 per stage for each pipeline on this machine, with the profile plots: runs
`edgeperc profile` for barcode (beside zxing-cpp), the shipped Y-Net ONNX model (beside TensorRT
where present) and depth once it is registered, then `edgeperc latency-test` on the shipped
x86-scanner-host target. Writes docs/BENCHMARKS.md (latency-profiles), docs/img/profiles/profiles.json
and copies the plots to docs/img/profiles/.

    python benchmarks/bench_profiles.py --barcode-iterations 12 --model-iterations 40
    python benchmarks/bench_profiles.py --pipelines barcode depth      # once depth is registered
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench_ynet_precisions import machine, write_section

from edgeperc.profiling.pipelines import pipeline_names

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "edgeperc" / "models" / "weights"
CACHE = ROOT / "benchmarks" / ".cache" / "profiles"
IMAGES = ROOT / "docs" / "img" / "profiles"


def cli(args: list[str]) -> int:
    """`edgeperc ARGS` in its own process: peak RSS and warm caches belong to that run alone."""
    return subprocess.run([sys.executable, "-m", "edgeperc.cli", *args], cwd=ROOT).returncode


def profile(pipeline: str, iterations: int, warmup: int, extra: list[str]) -> dict:
    out = CACHE / pipeline
    shutil.rmtree(out, ignore_errors=True)
    args = ["profile", *(["model", str(WEIGHTS / "ynet-barcode-w8.onnx")] if pipeline == "model" else [pipeline]),
            "--iterations", str(iterations), "--warmup", str(warmup), "--out", str(out), *extra]
    code = cli(args)
    if code != 0:
        raise SystemExit(f"edgeperc {' '.join(args)} exited {code}")
    data = json.loads((out / "profile.json").read_text())
    IMAGES.mkdir(parents=True, exist_ok=True)
    data["copied_plots"] = {}
    for name, file in data["plots"].items():
        target = IMAGES / f"{pipeline}_{file}"
        shutil.copyfile(out / file, target)
        data["copied_plots"][name] = target.relative_to(ROOT / "docs").as_posix()
    return data


def section(results: dict[str, dict], latency_test: dict | None) -> str:
    lines = ["## Latency profiles per stage (`edgeperc profile`)", "",
             f"`python benchmarks/bench_profiles.py` on {machine()}. p99 of a few dozen iterations is close to "
             "the maximum; on a shared machine the tails widen. Times in ms; ONNX Runtime on the CPU, OpenCV pre-processing (no GPU). A peer runs "
             "between two of our iterations in the same process: compare the barcode figures beside zxing-cpp with the "
             "latency-test's below (no peer) before reading them as the pipeline's own.", ""]
    for pipeline, data in results.items():
        info = data["info"]
        lines += [f"### {pipeline}", "",
                  f"{data['iterations']} timed iterations after {data['warmup']} warm-up; {info.get('inputs', '')}; "
                  f"backend {info.get('backend', '-')}.", "",
                  "| stage | p50 | p90 | p99 | max | mean | jitter |", "| --- | --- | --- | --- | --- | --- | --- |"]
        rows = list(data["stage_ms"].items()) + [("**end to end**", data["end_to_end_ms"])]
        rows += [(f"peer: {name}", stats) for name, stats in data["peers"].items()]
        for name, s in rows:
            lines.append(f"| {name} | " + " | ".join(f"{s[k]:.1f}" if s[k] >= 10 else f"{s[k]:.2f}"
                                                     for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "jitter_ms")) + " |")
        lines.append("")
        for key, value in data["outputs"].items():
            lines.append(f"- {key}: {value}")
        for note in data["notes"]:
            lines.append(f"- {note}")
        memory = data["probes"].get("memory", {}).get("metrics", {})
        if "peak_rss_mib" in memory:
            lines.append(f"- peak RSS {memory['peak_rss_mib']['max']:.0f} MiB; energy per inference: "
                         + (", ".join(f"{v:.1f} mJ ({k})" for k, v in data["energy"]["per_inference_mj"].items())
                            or data["energy"]["reason"]))
        lines.append("")
        lines += [f"![{pipeline} {name}]({path})" for name, path in data["copied_plots"].items()]
        lines.append("")
    if latency_test is not None:
        lines += ["### latency-test on the shipped x86-scanner-host target", "",
                  f"`edgeperc latency-test --target x86-scanner-host --iterations {latency_test['iterations']}`: "
                  f"exit {latency_test['exit']} ({'PASS' if latency_test['exit'] == 0 else 'FAIL'}); measured vs the budgets:", "",
                  "| pipeline: stage | p50 | p99 | budget p50 | budget p99 |", "| --- | --- | --- | --- | --- |"]
        for stage, row in latency_test["rows"].items():
            lines.append(f"| {stage} | {row['p50']:.1f} | {row['p99']:.1f} | {row.get('budget_p50', '-')} | {row.get('budget_p99', '-')} |")
        lines.append("")
    return "\n".join(lines)


def run_latency_test(iterations: int) -> dict:
    from edgeperc.targets import load_target

    base = CACHE / "x86-scanner-host.baseline.json"
    code = cli(["latency-test", "--target", "x86-scanner-host", "--iterations", str(iterations), "--write-baseline", str(base)])
    target = load_target("x86-scanner-host")
    rows = {}
    for pipeline, measured in json.loads(base.read_text())["pipelines"].items():
        budget = target.latency_budgets_ms[pipeline]
        rows[f"{pipeline}: end to end"] = {**measured["end_to_end"], **{f"budget_{k}": f"{v:g}" for k, v in budget.limits().items()}}
        for stage, stats in measured["stages"].items():
            limits = budget.stages[stage].limits() if stage in budget.stages else {}
            rows[f"{pipeline}: {stage}"] = {**stats, **{f"budget_{k}": f"{v:g}" for k, v in limits.items()}}
    return {"exit": code, "iterations": iterations, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", nargs="+", default=None,
                        help="default: barcode, model, and depth when it is registered")
    parser.add_argument("--barcode-iterations", type=int, default=12)
    parser.add_argument("--model-iterations", type=int, default=40)
    parser.add_argument("--depth-iterations", type=int, default=20)
    parser.add_argument("--latency-test-iterations", type=int, default=20, help="0 skips the latency-test run")
    parser.add_argument("--out", type=Path, default=IMAGES / "profiles.json")
    args = parser.parse_args()
    wanted = args.pipelines or ["barcode", "model"] + (["depth"] if "depth" in pipeline_names() else [])
    iterations = {"barcode": args.barcode_iterations, "model": args.model_iterations, "depth": args.depth_iterations}
    results = {name: profile(name, iterations.get(name, 20), 1 if name == "barcode" else 3, []) for name in wanted}
    latency_test = run_latency_test(args.latency_test_iterations) if args.latency_test_iterations else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "latency_test": latency_test, "profiles": {
        name: {k: data[k] for k in ("iterations", "warmup", "info", "end_to_end_ms", "stage_ms", "peers", "outputs",
                                    "notes", "probes", "energy", "copied_plots")} for name, data in results.items()}}, indent=1) + "\n")
    text = section(results, latency_test)
    write_section(ROOT / "docs" / "BENCHMARKS.md", "latency-profiles", text)
    print(text)


if __name__ == "__main__":
    main()
