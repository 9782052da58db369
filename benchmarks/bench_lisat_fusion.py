"""Where the compressed LISAt's speed comes from: FP32 export vs FP32 with the fused LLM graphs vs
compressed (fused + INT4 LLM, INT8 vision and mask decoder, distilled mask encoder), same run.

The compressed export rebuilds prefill/decode with ONNX Runtime's fused operators before INT4
(export/lisat_fused_llm.py). Fusion is not compression: the middle column applies it to the FP32
graphs alone, so the table separates what fusion gives from what quantization and distillation
give. Latency of the three is interleaved image by image in one process (evaluation.lisat).

    python benchmarks/bench_lisat_fusion.py --scenes 16
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def fused_fp32_folder(fp32: Path, checkpoint: Path, out: Path) -> Path:
    """A copy of the FP32 export whose prefill/decode are the fused FP32 graphs (checked against them)."""
    from edgeperc.export.lisat_compress import (
        calibration_examples,
        decode_feeds,
        fuse_llm_graph,
        graph_feeds,
    )
    from edgeperc.export.lisat_fused_llm import llm_weights
    from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

    from edgeperc.hashing import sha256_file
    from edgeperc.lisat_manifest import verify_lisat_manifest, write_lisat_manifest
    from edgeperc.models.lisat_checkpoint import load_lisat
    from edgeperc.onnx_io import save_onnx

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(fp32, out)
    manifest, runners = open_lisat_graphs(fp32, intra_op_threads=1)
    model, config = load_lisat(checkpoint)
    weights = llm_weights(model.state_dict(), config.llm.layers)
    feeds = graph_feeds(runners, manifest, calibration_examples(manifest, fp32, 4))
    feeds["decode"] = decode_feeds(runners, feeds["prefill"], manifest.kv_cache.layers)
    graphs = dict(manifest.graphs)
    for name in ("prefill", "decode"):
        entry = manifest.graphs[name]
        fused = fuse_llm_graph(onnx.load(str(fp32 / entry.file)), weights, manifest, runners[name], feeds[name])
        path = save_onnx(fused, out / entry.file)
        graphs[name] = entry.model_copy(update={"sha256": sha256_file(path)})
    write_lisat_manifest(manifest.model_copy(update={"graphs": graphs}), out)
    verify_lisat_manifest(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from bench_ynet_precisions import machine, write_section

    from edgeperc.evaluation.lisat import interleaved_latency
    from edgeperc.lisat_exports import resolve_lisat_export, shipped_lisat_checkpoint

    checkpoint = shipped_lisat_checkpoint()
    fp32 = resolve_lisat_export(None, "fp32")
    compressed = resolve_lisat_export(None, "compressed")
    fused = fused_fp32_folder(fp32, checkpoint, ROOT / "benchmarks" / ".cache" / "lisat-fp32-fused")
    folders = {"fp32": fp32, "fp32_fused": fused, "compressed": compressed}
    latency = interleaved_latency(folders, scenes=args.scenes, repeats=args.repeats)
    record = {"latency_ms": latency, "scenes": args.scenes, "repeats": args.repeats, "machine": machine()}
    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "lisat_fusion.json").write_text(json.dumps(record, indent=1) + "\n")
    rows = [("vision", "vision_ms"), ("mask encoder", "mask_encoder_ms"), ("prefill (embed + prefill)", "prefill_ms"),
            ("decode, per token (embed + decode)", "decode_per_token_ms"), ("seg projector + mask decoder", "mask_ms"),
            ("a further query on a seen image", "total_cached_ms"), ("**a new image's query (graphs)**", "first_query_graphs_ms")]
    base = latency["fp32"]["first_query_graphs_ms"]
    lines = ["## LISAt: where the compressed export's speed comes from", "",
             f"Command: `python benchmarks/bench_lisat_fusion.py --scenes {args.scenes} --repeats {args.repeats}`  ",
             f"Machine: {machine()}, 1 intra-op thread per graph  ",
             "Shipped `lisat-tiny`; three exports timed interleaved image by image in one process (medians, ms): the FP32 "
             "export, the same with prefill/decode rebuilt with ONNX Runtime's fused operators (GroupQueryAttention, "
             "SkipSimplifiedLayerNormalization; `export/lisat_fused_llm.py`, outputs equal to the export within 1e-3), and "
             "the compressed export (fused + INT4 LLM, INT8 vision and mask decoder, distilled mask encoder).", "",
             "| | FP32 | FP32 + fused LLM | compressed |", "| --- | ---: | ---: | ---: |"]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f"{latency[n][key]:.2f}" for n in folders) + " |")
    lines.append("| speed-up on a new image's query vs FP32 | 1.00x | "
                 + " | ".join(f"{base / latency[n]['first_query_graphs_ms']:.2f}x" for n in ("fp32_fused", "compressed")) + " |")
    write_section(ROOT / "docs" / "BENCHMARKS.md", "lisat-fusion", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
