"""Held-out evaluation of a LISAt export (FP32 or compressed) through the runtime pipeline: gIoU /
cIoU for All / Small (< 500 px²) / Large as Table 6.2, per-graph latency, weight bytes, peak memory.

Each export is evaluated in a child process of its own (``python -m edgeperc.evaluation.lisat``)
so that its peak resident memory is its own, not the larger of the two; the parent puts the two
side by side with the dissertation's figures quoted beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Table 6.2 (GRES test, LISAt-7B) and Table D.4 (A100, 512x512), 000_...txt lines 1256-1272, 2350-2356.
PAPER = {
    "source": "dissertation Table 6.2 (GRES test) and Table D.4 (one NVIDIA A100, 512x512)",
    "lisat_7b": {"all": {"giou": 0.275, "ciou": 0.245}, "small": {"giou": 0.240, "ciou": 0.232},
                 "large": {"giou": 0.348, "ciou": 0.250}},
    "lisa_7b": {"all": {"giou": 0.113, "ciou": 0.122}, "small": {"giou": 0.062, "ciou": 0.104},
                "large": {"giou": 0.222, "ciou": 0.157}},
    "a100_seconds_per_query_512": 0.244,
    "weights_gb_fp16": 14.0,
}
STATEMENT = ("Ours: the tiny LISAt configuration (1.6 M parameters) trained here on generated aerial scenes, "
             "measured on generated held-out scenes on this machine's CPU; the paper's: LISAt-7B on GRES on an "
             "A100. The figures are quoted for scale, not compared like for like.")
HELD_OUT_SEED = 9000  # training scenes come from seed 0 (edgeperc train lisat)


def held_out_queries(scenes: int, queries_per_image: int, size: int, seed: int) -> list[tuple[np.ndarray, list[Any]]]:
    """[(scene image, [AerialQuery, ...])]: generated scenes disjoint from the training ones."""
    from edgeperc.models.lisat_training import scene_seed
    from edgeperc.synth.aerial import aerial_recipe, render_aerial
    from edgeperc.synth.aerial_queries import generate_queries, scene_geometry

    recipe = aerial_recipe("default", (size, size))
    out = []
    for index in range(scenes):
        s = scene_seed(seed, index)
        scene = render_aerial(np.random.default_rng(s), recipe)
        queries = generate_queries(scene, np.random.default_rng([s, 1]), queries_per_image, geometry=scene_geometry(scene))
        out.append((scene.image, list(queries)))
    return out


def export_bytes(folder: Path) -> dict[str, int]:
    """Graph -> file bytes, and "total" (graphs only: the tokenizer and manifest are a few kB)."""
    from edgeperc.lisat_manifest import read_lisat_manifest

    manifest = read_lisat_manifest(folder)
    sizes = {name: manifest.graph_path(folder, name).stat().st_size for name in manifest.graphs}
    return {**sizes, "total": sum(sizes.values())}


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def peak_rss_mib() -> float:
    """This process's resident high-water mark: VmHWM (reset at exec, unlike ru_maxrss, which a
    child started by a large parent inherits), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class LatencyLog:
    """Per-graph times of answers: encoders from each image's first (uncached) query, the language
    model and the mask from every query; medians as the eval reports them."""

    def __init__(self) -> None:
        self.per_image: dict[str, list[float]] = {"preprocess": [], "vision": [], "mask_encoder": []}
        self.per_query: dict[str, list[float]] = {"prefill": [], "decode_per_token": [], "mask": [], "total_cached": []}
        self.tokens_per_s: list[float] = []

    def add(self, answer: Any, first_on_image: bool) -> None:
        t = answer.timings_ms
        if first_on_image:
            for stage in self.per_image:
                self.per_image[stage].append(t[stage])
        else:
            self.per_query["total_cached"].append(t["total"])
        self.per_query["prefill"].append(t["prefill"])
        if answer.decode_tokens:
            self.per_query["decode_per_token"].append(t["decode"] / answer.decode_tokens)
            self.tokens_per_s.append(answer.decode_tokens_per_s or 0.0)
        if answer.mask is not None:
            self.per_query["mask"].append(t["seg_projector"] + t["mask_decoder"])

    def summary(self) -> dict[str, float | None]:
        latency = {**{f"{k}_ms": _median(v) for k, v in self.per_image.items()},
                   **{f"{k}_ms": _median(v) for k, v in self.per_query.items()},
                   "decode_tokens_per_s": _median(self.tokens_per_s)}
        # a new image's query: both encoders (+ their preprocessing) and a cached query's language + mask work
        encoders = [v + e for v, e in zip(self.per_image["vision"], self.per_image["mask_encoder"])]
        cached = self.per_query["total_cached"] or [0.0] * len(encoders)
        latency["first_query_ms"] = _median([p + e + q for p, e, q in zip(self.per_image["preprocess"], encoders, cached)])
        latency["first_query_graphs_ms"] = _median([e + q for e, q in zip(encoders, cached)])
        return latency


def evaluate_export(folder: Path, scenes: int = 24, queries_per_image: int = 3, size: int = 256,
                    seed: int = HELD_OUT_SEED, threads: int = 1, max_new_tokens: int = 24,
                    progress: bool = True) -> dict[str, Any]:
    """One export on the held-out queries: metrics, per-graph latency medians, bytes, peak RSS."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from edgeperc.models.lisat_training import iou_metrics
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline

    pipeline = LisatPipeline(folder, threads=threads, max_new_tokens=max_new_tokens)
    data = held_out_queries(scenes, queries_per_image, size, seed)
    inter, union, area, stops = [], [], [], []
    log = LatencyLog()
    total = sum(len(q) for _, q in data)
    with Progress(TextColumn(f"eval lisat {folder.name}"), BarColumn(), MofNCompleteColumn(), disable=not progress,
                  transient=True) as bar:
        task = bar.add_task("queries", total=total)
        for image, queries in data:
            for k, query in enumerate(queries):
                answer = pipeline.answer(image, query.text)
                pred = answer.mask if answer.mask is not None else np.zeros(query.mask.shape, bool)
                inter.append(int((pred & query.mask).sum()))
                union.append(int((pred | query.mask).sum()))
                area.append(query.area_px)
                stops.append(answer.stop)
                log.add(answer, k == 0)
                bar.advance(task)
    return {
        "export": str(folder), "precision": pipeline.precision, "queries": len(inter),
        "metrics": iou_metrics(np.array(inter), np.array(union), np.array(area)),
        "seg_answer_fraction": float(np.mean([s == "seg" for s in stops])) if stops else None,
        "latency_ms_own_process": log.summary(), "bytes": export_bytes(folder), "peak_rss_mib": peak_rss_mib(),
        "threads": threads, "held_out": {"scenes": scenes, "queries_per_image": queries_per_image, "size": size,
                                         "seed": seed},
    }


def interleaved_latency(folders: dict[str, Path], scenes: int = 16, queries_per_image: int = 3, size: int = 256,
                        seed: int = HELD_OUT_SEED, threads: int = 1, max_new_tokens: int = 24,
                        repeats: int = 2) -> dict[str, dict[str, float | None]]:
    """Per-graph latency of several exports measured side by side: image by image, each export
    answers the image's queries (its first one uncached), the order alternating, so that load on
    the machine falls on all of them alike. {name: LatencyLog.summary()}."""
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline

    pipelines = {name: LisatPipeline(folder, threads=threads, max_new_tokens=max_new_tokens, cache_images=1,
                                     native_size_warning=False) for name, folder in folders.items()}
    logs = {name: LatencyLog() for name in folders}
    data = held_out_queries(scenes, queries_per_image, size, seed)
    names = list(folders)
    for image, queries in data[:1]:  # warm-up: first calls allocate
        for name in names:
            pipelines[name].answer(image, queries[0].text)
    for r in range(repeats):
        for i, (image, queries) in enumerate(data):
            order = names if (i + r) % 2 == 0 else names[::-1]
            for name in order:
                pipelines[name]._features.clear()  # this image's first query runs both encoders
                for k, query in enumerate(queries):
                    logs[name].add(pipelines[name].answer(image, query.text), k == 0)
    return {name: log.summary() for name, log in logs.items()}


def evaluate_in_child(folder: Path, **options: Any) -> dict[str, Any]:
    """evaluate_export in a fresh interpreter (its own peak memory); raises with the child's stderr tail."""
    args = [sys.executable, "-m", "edgeperc.evaluation.lisat", "--folder", str(folder)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    begin = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        from edgeperc.errors import EdgepercError

        raise EdgepercError(f"evaluating {folder} failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["wall_s"] = time.perf_counter() - begin
    return record


def compare(fp32: dict[str, Any], compressed: dict[str, Any] | None) -> dict[str, Any]:
    """The goal's ratios: size (FP32 / compressed bytes), speed (FP32 / compressed graph time of a
    new image's query: preprocessing is the same numpy code for both and is left out),
    gIoU loss in points (All)."""
    if compressed is None:
        return {}
    f, c = fp32, compressed
    size = f["bytes"]["total"] / c["bytes"]["total"]
    speed = (f["latency_ms"]["first_query_graphs_ms"] / c["latency_ms"]["first_query_graphs_ms"]
             if c["latency_ms"]["first_query_graphs_ms"] else None)  # interleaved, same process
    loss = 100.0 * (f["metrics"]["all"]["giou"] - c["metrics"]["all"]["giou"])
    return {"size_ratio": size, "speedup_first_query": speed, "giou_loss_points": loss,
            "goal": {"size_ratio_min": 4.0, "speedup_min": 2.0, "giou_loss_points_max": 2.0},
            "goal_met": bool(size >= 4.0 and (speed or 0) >= 2.0 and loss <= 2.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate one LISAt export (JSON on stdout's last line).")
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--queries-per-image", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args(argv)
    record = evaluate_export(args.folder, args.scenes, args.queries_per_image, args.size, args.seed, args.threads,
                             args.max_new_tokens, progress=False)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
