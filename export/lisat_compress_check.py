"""A compressed LISAt folder against its FP32 one: answers, masks, bytes and per-graph latency.

Both folders run the same numpy pipeline (greedy_decode_graphs, seg_projector, mask_decoder) on
ONNX Runtime CPU; the FP32 folder is the reference, so the numbers say what compression changed,
not how good the model is (with ``target_mask`` in the examples, the gIoU of each says that too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgeperc.export.lisat_export import mask_iou
from edgeperc.profiling.latency import summarise_ms, time_calls
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from edgeperc.runtime.pipelines.lisat.decode import (
    greedy_decode_graphs,
    splice_image_tokens,
)
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs
from edgeperc.runtime.pipelines.lisat.masks import crop_and_resize_mask

from edgeperc.errors import ConfigError
from edgeperc.lisat_manifest import LisatManifest, verify_lisat_manifest

__all__ = ["aerial_examples", "check_compressed_lisat", "folder_bytes", "lisat_graph_latency"]

MAX_NEW_TOKENS = 16


def _np(value: Any) -> np.ndarray:
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def aerial_examples(data: Any, tokenizer: Any, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """An AerialQuerySet (lisat_training.build_query_set) -> one example per query: images_clip
    (1, 3, Hc, Wc), images_sam (1, 3, S, S), input_ids (1, L) (LISA's prompt, BOS first, as
    evaluate_lisat builds it), target_mask (H, W) bool and area_px."""
    from edgeperc.models.lisat_tokenizer import seg_prompt

    out = []
    for q in range(len(data.texts) if limit is None else min(limit, len(data.texts))):
        s = int(data.scene[q])
        out.append({"images_clip": data.images_clip[s: s + 1], "images_sam": data.images_sam[s: s + 1],
                    "input_ids": np.array([tokenizer.encode(seg_prompt(data.texts[q]), add_bos=True)], np.int64),
                    "target_mask": data.masks[q], "area_px": int(data.area_px[q])})
    return out


def folder_bytes(folder: str | Path) -> dict[str, Any]:
    """{"graphs": {name: file bytes}, "total": sum of the graph files} (tokenizer and manifest excluded;
    prefill and decode each hold a copy of the LLM weights, so both count)."""
    manifest = verify_lisat_manifest(folder)
    sizes = {name: (Path(folder) / g.file).stat().st_size for name, g in manifest.graphs.items()}
    return {"graphs": sizes, "total": sum(sizes.values())}


def _answer(runners: Mapping[str, Any], manifest: LisatManifest, example: Mapping[str, Any],
            max_new_tokens: int) -> tuple[list[int], np.ndarray, bool]:
    """Greedy tokens and the mask logits (H, W) of the first <SEG> (the first emitted state without one)."""
    image_tokens = runners["vision"].infer({"images_clip": _np(example["images_clip"])})["image_tokens"]
    answer = greedy_decode_graphs(runners, manifest, _np(example["input_ids"]), image_tokens, max_new_tokens,
                                  stop_at_seg=False)
    has_seg = answer.seg_hidden is not None
    hidden = answer.seg_hidden if has_seg else answer.emitted[:1]
    seg = runners["seg_projector"].infer({"hidden": hidden})["seg_embedding"]
    embeddings = runners["mask_encoder"].infer({"images_sam": _np(example["images_sam"])})["image_embeddings"]
    mask = runners["mask_decoder"].infer({"image_embeddings": embeddings, "seg_embedding": seg})["mask_logits"]
    return answer.tokens.tolist(), mask[0, 0], has_seg


def _giou(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    from edgeperc.models.lisat_training import iou_metrics

    inter = np.array([r[key][0] for r in rows], np.float64)
    union = np.array([r[key][1] for r in rows], np.float64)
    return iou_metrics(inter, union, np.array([r["area_px"] for r in rows]))


def check_compressed_lisat(fp32_dir: str | Path, compressed_dir: str | Path, examples: Sequence[Mapping[str, Any]],
                           max_new_tokens: int = MAX_NEW_TOKENS, threads: int = 1) -> dict[str, Any]:
    """Both folders on ``examples`` (images_clip, images_sam, input_ids; optional target_mask (H, W) bool
    and area_px). Returns tokens_equal_rate, mask IoU vs FP32 per example and its mean / min, the
    bytes of each folder (per graph, total, ratio) and, with targets, end-to-end gIoU of each (a query
    whose greedy answer has no <SEG> scores an empty mask, as evaluate_lisat does)."""
    if not examples:
        raise ConfigError("check_compressed_lisat needs at least one example")
    ref_manifest, ref = open_lisat_graphs(fp32_dir, intra_op_threads=threads)
    manifest, ours = open_lisat_graphs(compressed_dir, intra_op_threads=threads)
    rows = []
    for example in examples:
        ref_tokens, ref_mask, ref_seg = _answer(ref, ref_manifest, example, max_new_tokens)
        tokens, mask, seg = _answer(ours, manifest, example, max_new_tokens)
        row: dict[str, Any] = {"tokens_equal": tokens == ref_tokens, "tokens": tokens, "reference_tokens": ref_tokens,
                               "mask_iou": mask_iou(mask, ref_mask), "seg": seg, "reference_seg": ref_seg}
        if "target_mask" in example:
            target = _np(example["target_mask"]).astype(bool)
            for key, logits, has in (("fp32", ref_mask, ref_seg), ("compressed", mask, seg)):
                if logits.shape != target.shape:  # an export at SAM's size: crop the padding, resize
                    logits = crop_and_resize_mask(logits, target.shape)
                pred = (logits > 0) & has
                row[key] = (int((pred & target).sum()), int((pred | target).sum()))
            row["area_px"] = int(example.get("area_px", target.sum()))
        rows.append(row)
    ious = [r["mask_iou"] for r in rows]
    before, after = folder_bytes(fp32_dir), folder_bytes(compressed_dir)
    report: dict[str, Any] = {
        "examples": len(rows), "tokens_equal_rate": float(np.mean([r["tokens_equal"] for r in rows])),
        "mask_iou_mean": float(np.mean(ious)), "mask_iou_min": float(np.min(ious)), "per_example": rows,
        "bytes": {"fp32": before, "compressed": after, "ratio": after["total"] / before["total"]},
        "precision": {name: g.precision for name, g in manifest.graphs.items()},
    }
    if all("target_mask" in e for e in examples):
        report["giou"] = {"fp32": _giou(rows, "fp32"), "compressed": _giou(rows, "compressed")}
    return report


def lisat_graph_latency(folder: str | Path, example: Mapping[str, Any], runs: int = 20, threads: int = 1,
                        extra: Mapping[str, str | Path] | None = None) -> dict[str, dict[str, float]]:
    """Median / p90 ms of each graph on ONNX Runtime CPU with ``threads`` intra-op threads, fed as the
    pipeline feeds it for ``example``: prefill at the example's real prompt length (image tokens
    spliced in), decode one step on that prompt's KV cache. ``extra``: {label: ONNX path} of other
    graphs with a graph's I/O (e.g. a student mask encoder), timed on the same feeds."""
    manifest, runners = open_lisat_graphs(folder, intra_op_threads=threads)
    t = manifest.tokens
    clip, sam, ids = _np(example["images_clip"]), _np(example["images_sam"]), _np(example["input_ids"])
    image_tokens = runners["vision"].infer({"images_clip": clip})["image_tokens"]
    text = runners["embed"].infer({"input_ids": ids})["embeddings"]
    embeds = splice_image_tokens(text, ids, t.image_token_id, image_tokens)
    out = runners["prefill"].infer({"inputs_embeds": embeds})
    step = runners["embed"].infer({"input_ids": np.array([[int(out["logits"][0].argmax())]], np.int64)})["embeddings"]
    past = {f"past_{k}_{i}": out[f"present_{k}_{i}"] for i in range(manifest.kv_cache.layers) for k in ("key", "value")}
    embeddings = runners["mask_encoder"].infer({"images_sam": sam})["image_embeddings"]
    seg = runners["seg_projector"].infer({"hidden": out["hidden"]})["seg_embedding"]
    feeds = {"vision": {"images_clip": clip}, "mask_encoder": {"images_sam": sam}, "embed": {"input_ids": ids},
             "prefill": {"inputs_embeds": embeds}, "decode": {"inputs_embeds": step, **past},
             "seg_projector": {"hidden": out["hidden"]},
             "mask_decoder": {"image_embeddings": embeddings, "seg_embedding": seg}}
    calls = {name: runners[name] for name in feeds}
    for label, path in (extra or {}).items():
        calls[label] = OnnxRuntimeBackend(path, intra_op_threads=threads)
    result = {}
    for label, runner in calls.items():
        graph = label if label in feeds else next(g for g in feeds if set(feeds[g]) == {s.name for s in runner.inputs})
        stats = summarise_ms(time_calls(lambda r=runner, f=feeds[graph]: r.infer(f), runs))
        result[label] = {"median_ms": stats.median_ms, "p90_ms": stats.p90_ms,
                         **({"prompt_length": int(embeds.shape[1])} if graph == "prefill" else {}),
                         **({"past_length": int(embeds.shape[1])} if graph == "decode" else {})}
    return result
