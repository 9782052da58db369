"""The measurements behind two LISAt runtime choices, each against its peer in the same run:

- ONNX Runtime's SkipLayerNormFusion on vs off (runtime/pipelines/lisat/graphs.py turns it off on
  the CPU), every graph of the FP32 and the compressed export, sessions timed interleaved;
- uint8 image normalisation by table lookup (edgeperc.preprocess, the path uint8 images take) vs
  the float formula (the path float images take), on a 256x256x3 image, interleaved.

    python benchmarks/bench_lisat_runtime_choices.py --runs 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

GRAPHS = ("vision", "mask_encoder", "prefill", "decode", "seg_projector", "mask_decoder")


def graph_feeds(fp32: Path) -> dict[str, dict[str, np.ndarray]]:
    """One real calibration example's feeds per graph (decode: a step after the prefill)."""
    from edgeperc.export.lisat_compress import calibration_examples, decode_feeds, graph_feeds as feeds_of
    from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

    manifest, runners = open_lisat_graphs(fp32, intra_op_threads=1)
    feeds = feeds_of(runners, manifest, calibration_examples(manifest, fp32, 2))
    feeds["decode"] = decode_feeds(runners, feeds["prefill"], manifest.kv_cache.layers)
    return {name: feeds[name][0] for name in GRAPHS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    from bench_ynet_precisions import machine, write_section

    from edgeperc.lisat_exports import resolve_lisat_export
    from edgeperc.manifest import Normalisation
    from edgeperc.models.lisat_config import sam_normalisation
    from edgeperc.preprocess import normalise_images
    from edgeperc.profiling.latency import summarise_ms, time_interleaved
    from edgeperc.runtime.backends import OnnxRuntimeBackend
    from edgeperc.runtime.pipelines.lisat.graphs import CPU_DISABLED_OPTIMIZERS

    folders = {"fp32": resolve_lisat_export(None, "fp32"), "compressed": resolve_lisat_export(None, "compressed")}
    feeds = graph_feeds(folders["fp32"])
    fusion: dict[str, dict[str, dict[str, float]]] = {}
    for precision, folder in folders.items():
        fusion[precision] = {}
        for graph in GRAPHS:
            path = folder / f"{graph}.onnx"
            on = OnnxRuntimeBackend(path, intra_op_threads=1)
            off = OnnxRuntimeBackend(path, intra_op_threads=1, disabled_optimizers=CPU_DISABLED_OPTIMIZERS)
            feed = {s.name: feeds[graph][s.name] for s in on.inputs}
            times = time_interleaved({"on": lambda b=on: b.infer(feed, check=False),
                                      "off": lambda b=off: b.infer(feed, check=False)}, args.runs, warmup=20)
            fusion[precision][graph] = {k: summarise_ms(v).median_ms for k, v in times.items()}

    image = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    norm: Normalisation = sam_normalisation()
    as_float = image.astype(np.float32)
    same = bool(np.array_equal(normalise_images(image, norm), normalise_images(as_float, norm)))
    times = time_interleaved({"table (uint8)": lambda: normalise_images(image, norm),
                              "formula (float32 input)": lambda: normalise_images(as_float, norm)}, args.runs, warmup=20)
    normalise = {k: summarise_ms(v).median_ms for k, v in times.items()}

    record = {"skip_layernorm_fusion_ms": fusion, "normalise_256_ms": normalise, "normalise_bit_identical": same,
              "runs": args.runs, "machine": machine()}
    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "lisat_runtime_choices.json").write_text(json.dumps(record, indent=1) + "\n")

    lines = ["## LISAt runtime choices, each against its peer", "",
             f"Command: `python benchmarks/bench_lisat_runtime_choices.py --runs {args.runs}`  ",
             f"Machine: {machine()}, 1 intra-op thread  ",
             ("Shipped `lisat-tiny`, both exports from the cache; each graph's two sessions (ONNX Runtime's "
              "SkipLayerNormFusion on, its default; off, what `open_lisat_graphs` does on the CPU) timed "
              "interleaved on one real calibration example, medians in ms. Normalisation: a 256x256x3 image, "
              "the uint8 path (per-channel table, OpenCV LUT) against the float formula path, interleaved."), "",
             "| graph | FP32, fusion on | FP32, off | compressed, on | compressed, off |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for graph in GRAPHS:
        f, c = fusion["fp32"][graph], fusion["compressed"][graph]
        lines.append(f"| {graph} | {f['on']:.3f} | {f['off']:.3f} | {c['on']:.3f} | {c['off']:.3f} |")
    total = {p: {k: sum(fusion[p][g][k] for g in GRAPHS) for k in ("on", "off")} for p in fusion}
    lines += [f"| **all six** | {total['fp32']['on']:.3f} | {total['fp32']['off']:.3f} | "
              f"{total['compressed']['on']:.3f} | {total['compressed']['off']:.3f} |", "",
              "| normalisation, 256x256x3 | median (ms) |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in normalise.items()]
    ratio = normalise["formula (float32 input)"] / normalise["table (uint8)"]
    lines += ["", f"Table lookup {ratio:.1f}x faster than the formula; outputs bit-identical: {same}."]
    section = "\n".join(lines)
    write_section(ROOT / "docs" / "BENCHMARKS.md", "lisat-runtime-choices", section)
    print(section)


if __name__ == "__main__":
    main()
