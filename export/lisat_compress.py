"""A LISAt export folder -> a compressed one with the same graph names and manifest layout.

The runtime opens either folder the same way (open_lisat_graphs); what differs is recorded in the
manifest: each graph's ``precision`` and a ``compression`` block with the method, the INT4 block
size, the calibration set, and per graph the measured reason for its precision.

Per graph, for the ONNX Runtime CPU target (MatMulNBits is an ORT contrib op; a TensorRT target
takes ModelOpt's INT4 QDQ instead, see toolchain-facts):
  prefill, decode  rebuilt with ORT's fused operators (GroupQueryAttention, SkipSimplifiedLayerNorm;
                   lisat_fused_llm) when the LLM's weights are given, checked against the FP32 graphs,
                   then INT4 weight-only, ORT's MatMulNBitsQuantizer (round-to-nearest, block-wise):
                   the LLM's weights are the bulk of the folder and are read once per token.
  embed            INT4 blocks of the table (GatherBlockQuantized): a table the size of lm_head.
  vision           INT8, ORT static QDQ per-channel (calibrated) or dynamic.
  mask_encoder     the distilled student's graph when given, else INT8 as vision.
  mask_decoder     INT8 only if its masks stay within ``mask_iou_floor`` of FP32 on the calibration
                   set, else kept (the measured IoU is the recorded reason).
  seg_projector    kept: two small MatMuls whose output is the mask prompt itself.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from edgeperc.export.calibration import SampleSet
from edgeperc.export.lisat_export import export_graph, mask_iou
from edgeperc.export.lisat_graphs import GraphSpec
from edgeperc.export.onnx_export import MIN_OPSET, tool_versions
from edgeperc.export.quantize import (
    DEFAULT_KEEP_FP32,
    quiet_root_logger,
    resolve_nodes,
    to_fp16,
    to_int8_ort,
)
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.hashing import sha256_file
from edgeperc.lisat_manifest import (
    MANIFEST_FILE,
    CompressionInfo,
    FileEntry,
    GraphCompression,
    GraphEntry,
    LisatManifest,
    verify_lisat_manifest,
    write_lisat_manifest,
)
from edgeperc.manifest import (
    CalibrationInfo,
    graph_sha256,
    read_manifest,
    value_info_spec,
    write_manifest,
)
from edgeperc.onnx_io import load_onnx, save_onnx

__all__ = ["CompressOptions", "calibration_examples", "compress_lisat", "compress_lisat_checkpoint",
           "export_student_mask_encoder", "quantize_int4", "student_beside"]

ANSWER_TOKENS = 16  # greedy budget when deriving the mask decoder's calibration <SEG> embeddings


@dataclass(frozen=True)
class CompressOptions:
    """INT4: ``block_size`` (a power of two >= 16; ORT pads K up to a multiple), ``symmetric``,
    ``accuracy_level`` (MatMulNBits: None/0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations).
    ``vision_int8``: "static" (calibrated QDQ -> QLinear* kernels) or "dynamic" (per-call activation
    ranges, no calibration). ``keep_precision``: what graphs left out of INT8/INT4 get."""

    # block 128 (AWQ's and ModelOpt's usual): tokens identical to block 32 on the tiny model, 78 KB smaller
    block_size: int = 128
    symmetric: bool = True
    accuracy_level: int | None = None
    quantize_embed: bool = True
    vision_int8: Literal["static", "dynamic"] = "static"
    # the mask decoder: "dynamic" INT8 weights (measured: mask IoU vs FP32 0.996, as fast as FP32, no Q/DQ
    # pairs around every activation) or "static" QDQ (IoU 0.980, 10-15 % slower here, larger file)
    mask_decoder_int8: Literal["static", "dynamic"] = "dynamic"
    mask_iou_floor: float = 0.95
    # the seg projector's two Linear layers in INT4 (101 KB -> 19 KB); gated by the seg embedding's cosine
    quantize_seg_projector: bool = True
    seg_cosine_floor: float = 0.995
    # prefill/decode rebuilt with ORT's fused operators (lisat_fused_llm) before INT4, when the LLM's
    # weights are given: ~11 nodes per layer instead of ~70; the decode step is bound by per-node cost
    fuse_llm: bool = True
    keep_precision: Literal["fp32", "fp16"] = "fp32"

    def check(self) -> None:
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ConfigError(f"--block-size {self.block_size} must be a power of two >= 16 (MatMulNBits)")
        if self.accuracy_level not in (None, 0, 1, 2, 3, 4):
            raise ConfigError(f"--accuracy-level {self.accuracy_level} must be 0-4 (MatMulNBits)")
        if self.vision_int8 not in ("static", "dynamic"):
            raise ConfigError(f"vision_int8 {self.vision_int8!r} must be 'static' or 'dynamic'")
        if not 0 <= self.mask_iou_floor <= 1:
            raise ConfigError(f"mask_iou_floor {self.mask_iou_floor} must lie in [0, 1]")
        if self.mask_decoder_int8 not in ("static", "dynamic"):
            raise ConfigError(f"mask_decoder_int8 {self.mask_decoder_int8!r} must be 'static' or 'dynamic'")
        if self.keep_precision not in ("fp32", "fp16"):
            raise ConfigError(f"keep_precision {self.keep_precision!r} must be 'fp32' or 'fp16'")


# -- graph transforms ----------------------------------------------------------------------------
def quantize_int4(model: onnx.ModelProto, block_size: int, symmetric: bool, accuracy_level: int | None,
                  op_types: tuple[str, ...] = ("MatMul",)) -> onnx.ModelProto:
    """Weight-only INT4 (round-to-nearest, blocks of ``block_size`` along K) of every MatMul with a
    constant weight -> MatMulNBits, and/or Gather of a constant table -> GatherBlockQuantized.
    Activation x activation MatMuls (attention) stay as they are. ``model`` is not modified."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, accuracy_level=accuracy_level,
                                          op_types_to_quantize=op_types)
    with quiet_root_logger(), np.errstate(invalid="ignore", divide="ignore"):  # all-zero blocks (a pad row)
        quantizer = MatMulNBitsQuantizer(copy.deepcopy(model), algo_config=config)
        quantizer.process()
    return quantizer.model.model


def quantize_int8_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """ORT dynamic INT8 of MatMul / Gemm / Conv weights (per channel), activations ranged per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, quiet_root_logger():
        src, dst = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
        onnx.save(model, src)
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
        return onnx.load(str(dst))


def _check_graph(model: onnx.ModelProto, name: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelFileError(f"compressed {name} graph fails the ONNX checker: {str(exc).strip().splitlines()[0]}") from exc


def _io(model: onnx.ModelProto) -> tuple[list, list]:
    initializers = {i.name for i in model.graph.initializer}
    return ([value_info_spec(i) for i in model.graph.input if i.name not in initializers],
            [value_info_spec(o) for o in model.graph.output])


# -- the student's graph -------------------------------------------------------------------------
def export_student_mask_encoder(student: Any, out_path: str | Path, opset: int = MIN_OPSET,
                                checkpoint_sha256: str | None = None) -> Path:
    """A distilled student (models.lisat_student) -> ONNX with the teacher graph's I/O:
    images_sam (1, 3, S, S) -> image_embeddings (1, P, S/16, S/16), embedded manifest included."""
    import torch

    c = student.config
    spec = GraphSpec("mask_encoder", student.eval(), ["images_sam"], ["image_embeddings"],
                     {"images_sam": torch.zeros(1, 3, c.image_size, c.image_size)}, {})
    fields = {"family": "lisat", "family_version": "1", "checkpoint_sha256": checkpoint_sha256,
              "tool_versions": tool_versions(),
              "family_config": {"student": c.model_dump(mode="json")}}
    with torch.no_grad():
        proto = export_graph(spec, opset, fields)
    return save_onnx(proto, out_path)


def _student_graph(path: str | Path, teacher: GraphEntry) -> onnx.ModelProto:
    """The student ONNX, refused unless its I/O names, shapes and dtypes are the teacher graph's."""
    proto = load_onnx(path)
    inputs, outputs = _io(proto)
    if [s.model_dump() for s in inputs] != [s.model_dump() for s in teacher.inputs] or \
            [s.model_dump() for s in outputs] != [s.model_dump() for s in teacher.outputs]:
        show = lambda specs: ", ".join(f"{s.name} {s.shape} {s.dtype}" for s in specs)
        raise ModelFileError(f"student mask encoder {path} has I/O ({show(inputs)} -> {show(outputs)}); the export's "
                             f"mask_encoder has ({show(teacher.inputs)} -> {show(teacher.outputs)})")
    return proto


# -- calibration ---------------------------------------------------------------------------------
def _np(value: Any) -> np.ndarray:
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def graph_feeds(runners: Mapping[str, Any], manifest: LisatManifest,
                examples: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, np.ndarray]]]:
    """Feeds of vision, mask_encoder, prefill, seg_projector and mask_decoder for each example (images_clip (1, 3, Hc, Wc),
    images_sam (1, 3, S, S), input_ids (1, L)), the intermediate ones made by the FP32 graphs: the
    mask decoder gets the image's embeddings and the <SEG> embedding of the greedy answer (the first
    emitted state when the answer has no <SEG>)."""
    from edgeperc.runtime.pipelines.lisat.decode import splice_image_tokens

    feeds: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in ("vision", "mask_encoder", "prefill", "seg_projector",
                                                                     "mask_decoder")}
    t = manifest.tokens
    for example in examples:
        clip = _np(example["images_clip"]).astype(np.float32)
        sam = _np(example["images_sam"]).astype(np.float32)
        ids = _np(example["input_ids"]).astype(np.int64)
        image_tokens = runners["vision"].infer({"images_clip": clip})["image_tokens"]
        text = runners["embed"].infer({"input_ids": ids})["embeddings"]
        answer = greedy_decode_graphs(runners, manifest, ids, image_tokens, ANSWER_TOKENS)
        hidden = answer.seg_hidden if answer.seg_hidden is not None else answer.emitted[:1]
        seg = runners["seg_projector"].infer({"hidden": hidden})["seg_embedding"]
        embeddings = runners["mask_encoder"].infer({"images_sam": sam})["image_embeddings"]
        feeds["vision"].append({"images_clip": clip})
        feeds["mask_encoder"].append({"images_sam": sam})
        feeds["prefill"].append({"inputs_embeds": splice_image_tokens(text, ids, t.image_token_id, image_tokens)})
        feeds["seg_projector"].append({"hidden": hidden})
        feeds["mask_decoder"].append({"image_embeddings": embeddings, "seg_embedding": seg})
    return feeds


def _drift(reference: Any, candidate: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], output: str) -> dict[str, float]:
    """Cosine, max abs diff and (for 2-D logits) top-1 agreement of ``output``, candidate vs reference."""
    runner = OnnxRuntimeBackend(candidate, intra_op_threads=1)
    ref = np.concatenate([reference.infer(f)[output].reshape(1, -1) for f in feeds])
    got = np.concatenate([runner.infer(f)[output].reshape(1, -1) for f in feeds])
    cos = float(np.mean(np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)))
    out = {"cosine": cos, "max_abs_diff": float(np.abs(ref - got).max())}
    if output == "logits":
        out["top1_agreement"] = float(np.mean(ref.argmax(1) == got.argmax(1)))
    return out


def _mask_ious(reference: Any, candidate: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> list[float]:
    runner = OnnxRuntimeBackend(candidate, intra_op_threads=1)
    return [mask_iou(runner.infer(f)["mask_logits"], reference.infer(f)["mask_logits"]) for f in feeds]


# -- the folder ----------------------------------------------------------------------------------
def _embedded(proto: onnx.ModelProto, source: onnx.ModelProto, precision: str,
              calibration: CalibrationInfo | None, keep: list[str]) -> onnx.ModelProto:
    """Carry the FP32 graph's embedded manifest over, with the new precision and its parent."""
    manifest = read_manifest(source)
    del proto.metadata_props[:]
    if manifest is not None:
        write_manifest(proto, manifest.model_copy(update={
            "precision": precision, "calibration": calibration, "parent_graph_sha256": graph_sha256(source),
            "keep_fp32_nodes": keep, "derived": False}))
    return proto


FUSED_LOGITS_TOLERANCE = 1e-3  # fused vs exported FP32 graph: the same arithmetic, so only rounding may differ


def fuse_llm_graph(template: onnx.ModelProto, weights: Mapping[str, np.ndarray], source: LisatManifest,
                   reference: Any, feeds: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    """``template`` (the exported prefill or decode graph) rebuilt with fused operators from
    ``weights``; refused unless every output matches ``reference`` (that graph's runner) on ``feeds``
    within FUSED_LOGITS_TOLERANCE."""
    from edgeperc.export.lisat_fused_llm import build_fused_llm

    from edgeperc.models.lisat_config import LisatConfig

    llm = LisatConfig.model_validate(source.config).llm
    fused = build_fused_llm(weights, template, llm.layers, llm.heads, llm.kv_heads, llm.max_positions, llm.rms_norm_eps,
                            llm.rope_theta)
    runner = OnnxRuntimeBackend(fused, intra_op_threads=1)
    worst = max(float(np.abs(ref - got).max()) for f in feeds
                for ref, got in zip(reference.infer(f).values(), runner.infer(f).values()))
    if worst > FUSED_LOGITS_TOLERANCE:
        raise ModelFileError(f"the fused {template.graph.name or 'LLM'} graph differs from the exported one by {worst:.2e} "
                             f"(tolerance {FUSED_LOGITS_TOLERANCE}): the weights do not belong to this export")
    return fused


def decode_feeds(runners: Mapping[str, Any], prefill_feeds: list[dict[str, np.ndarray]],
                 layers: int) -> list[dict[str, np.ndarray]]:
    """One decode step per prompt: the FP32 prefill's KV cache of all but the last position, and that position."""
    feeds = []
    for f in prefill_feeds:
        head = runners["prefill"].infer({"inputs_embeds": f["inputs_embeds"][:, :-1]})
        feeds.append({"inputs_embeds": f["inputs_embeds"][:, -1:],
                      **{f"past_{kind}_{i}": head[f"present_{kind}_{i}"] for i in range(layers) for kind in ("key", "value")}})
    return feeds


def compress_lisat(fp32_dir: str | Path, out_dir: str | Path, calibration: Sequence[Mapping[str, Any]],
                   student_onnx: str | Path | None = None, options: CompressOptions | None = None,
                   calibration_description: str = "", student_record: Mapping[str, Any] | None = None,
                   progress: bool = True, llm_weights: Mapping[str, np.ndarray] | None = None) -> LisatManifest:
    """Write the compressed folder of the FP32 export in ``fp32_dir`` into ``out_dir``; returns its manifest.

    ``calibration``: examples as check_lisat_parity takes them (images_clip, images_sam, input_ids;
    torch or numpy), used to calibrate INT8 and to measure each quantized graph against FP32.
    ``student_onnx``: a distilled mask encoder (export_student_mask_encoder) to replace the teacher's.
    ``student_record``: its training record, summarised into the manifest.
    ``llm_weights``: the LLaMA tensors (lisat_fused_llm.llm_weights) for ``options.fuse_llm``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    options = options or CompressOptions()
    options.check()
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    if not calibration:
        raise ConfigError("compressing LISAt needs calibration examples (images_clip, images_sam, input_ids)")
    source, runners = open_lisat_graphs(fp32_dir, intra_op_threads=1)
    if source.compression is not None or any(g.precision != "fp32" for g in source.graphs.values()):
        raise ConfigError(f"{fp32_dir} is already compressed: compress the FP32 export")
    if out_dir.resolve() == fp32_dir.resolve():
        raise ConfigError("the compressed folder must differ from the FP32 one")
    student = _student_graph(student_onnx, source.graphs["mask_encoder"]) if student_onnx is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(calibration)
    calib_text = calibration_description or f"{n} examples"
    feeds = graph_feeds(runners, source, calibration)
    calib_info = CalibrationInfo(source="lisat examples", samples=n, method="ort:minmax", description=calib_text)
    o = options
    int4_text = f"MatMulNBits RTN INT4, block {o.block_size}, {'symmetric' if o.symmetric else 'asymmetric'}"
    fuse = o.fuse_llm and llm_weights is not None
    llm_method = ("ORT fused operators (GroupQueryAttention, SkipSimplifiedLayerNormalization), " if fuse else "") + int4_text
    if fuse:
        feeds["decode"] = decode_feeds(runners, feeds["prefill"], source.kv_cache.layers)

    def int4(name: str, proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        if fuse:
            proto = fuse_llm_graph(proto, llm_weights, source, runners[name], feeds[name])
        quantized = quantize_int4(proto, o.block_size, o.symmetric, o.accuracy_level)
        if name == "prefill":
            d = _drift(runners[name], quantized, feeds["prefill"], "logits")
            why = (f"the LLM weights are the bulk of the folder and read once per token; next-token top-1 agreement "
                   f"with FP32 {d['top1_agreement']:.3f}, logits cosine {d['cosine']:.4f} on {n} calibration prompts")
        else:
            why = "the same LLM weights as prefill (each graph carries its own copy), one token per call"
        if fuse:
            why += (f"; rebuilt with fused operators first (same outputs as the export within {FUSED_LOGITS_TOLERANCE}, "
                    f"checked on {n} prompts): the decode step is bound by per-node cost at this size")
        return quantized, "int4", llm_method, why, []

    def embed(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        if not o.quantize_embed:
            return keep_graph(proto, "embed", "kept on request (quantize_embed=False)")
        quantized = quantize_int4(proto, o.block_size, o.symmetric, None, op_types=("Gather",))
        why = ("the table is lm_head's size; a gather dequantizes only the rows it reads, so its cost does not "
               "grow with the table")
        return quantized, "int4", f"GatherBlockQuantized INT4 rows, block {o.block_size}", why, []

    def int8(name: str, proto: onnx.ModelProto, output: str) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        keep = list(DEFAULT_KEEP_FP32)
        if o.vision_int8 == "dynamic":
            quantized, method, kept = quantize_int8_dynamic(proto), "ORT dynamic INT8 (per-channel weights)", []
        else:
            samples = SampleSet(feeds[name], "lisat examples", description=calib_text)
            quantized = to_int8_ort(proto, samples, keep)
            method, kept = "ORT static QDQ INT8 (per-channel weights, u8 activations, minmax)", resolve_nodes(proto, keep)
        d = _drift(runners[name], quantized, feeds[name], output)
        why = (f"{output} cosine {d['cosine']:.4f} vs FP32 on {n} calibration images"
               + (f"; LayerNorm/Softmax/Sigmoid and the output head kept FP32 ({len(kept)} nodes)" if kept else ""))
        return quantized, "int8", method, why, kept

    def keep_graph(proto: onnx.ModelProto, name: str, why: str) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        if o.keep_precision == "fp16":
            return to_fp16(proto, list(DEFAULT_KEEP_FP32)), "fp16", "ORT float16 converter, I/O FP32", why, []
        return proto, "fp32", "none", why, []

    def mask_decoder(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        keep = list(DEFAULT_KEEP_FP32)
        if o.mask_decoder_int8 == "dynamic":
            quantized, kind, method, kept = (quantize_int8_dynamic(proto), "dynamic",
                                             "ORT dynamic INT8 (per-channel weights, activations ranged per call)", [])
        else:
            samples = SampleSet(feeds["mask_decoder"], "lisat examples", description=calib_text)
            quantized, kind = to_int8_ort(proto, samples, keep), "static QDQ"
            method, kept = "ORT static QDQ INT8 (per-channel weights, u8 activations, minmax)", resolve_nodes(proto, keep)
        ious = _mask_ious(runners["mask_decoder"], quantized, feeds["mask_decoder"])
        mean = float(np.mean(ious))
        measured = (f"INT8 (ORT {kind}) mask IoU vs FP32 mean {mean:.3f}, min {min(ious):.3f} on {n} calibration "
                    f"examples (floor {o.mask_iou_floor})")
        if mean >= o.mask_iou_floor:
            return quantized, "int8", method, measured, kept
        return keep_graph(proto, "mask_decoder", f"{measured}: below the floor, so INT8 hurts the mask; kept {o.keep_precision}")

    def seg_projector(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str, str, str, list[str]]:
        quantized = quantize_int4(proto, min(o.block_size, 64), o.symmetric, o.accuracy_level)
        d = _drift(runners["seg_projector"], quantized, feeds["seg_projector"], "seg_embedding")
        measured = f"seg embedding cosine {d['cosine']:.4f} vs FP32 on {n} calibration prompts (floor {o.seg_cosine_floor})"
        if d["cosine"] >= o.seg_cosine_floor:
            return quantized, "int4", f"MatMulNBits RTN INT4, block {min(o.block_size, 64)}", measured, []
        return keep_graph(proto, "seg_projector", f"{measured}: below the floor; kept {o.keep_precision}")

    student_info = None
    entries: dict[str, GraphEntry] = {}
    records: dict[str, GraphCompression] = {}
    columns = (TextColumn("compress LISAt {task.fields[graph]}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("compress", total=len(source.graphs), graph="")
        for name, entry in source.graphs.items():
            bar.update(task, graph=name)
            src_path = fp32_dir / entry.file
            proto = load_onnx(src_path)
            calibrated: CalibrationInfo | None = None
            if name in ("prefill", "decode"):
                result = int4(name, proto)
            elif name == "embed":
                result = embed(proto)
            elif name == "vision":
                result = int8("vision", proto, "image_tokens")
                calibrated = calib_info if o.vision_int8 == "static" else None
            elif name == "mask_encoder" and student is not None:
                d = _drift(runners[name], student, feeds["mask_encoder"], "image_embeddings")
                rec = dict(student_record or {})
                embedded = read_manifest(student)
                student_info = {"onnx_sha256": sha256_file(student_onnx),
                                "checkpoint_sha256": embedded.checkpoint_sha256 if embedded else None, "drift_vs_teacher": d,
                                **{k: rec[k] for k in ("teacher_vs_student_mse", "teacher_vs_student_cosine", "parameters",
                                                       "flops", "steps", "seed", "command") if k in rec}}
                why = (f"distilled student replaces SAM's ViT encoder: embeddings cosine {d['cosine']:.4f} vs the teacher "
                       f"on {n} calibration images"
                       + (f", {rec['flops']['ratio']:.2f}x its FLOPs" if "flops" in rec else ""))
                result = (student, "fp32", "distilled student (lisat_student)", why, [])
            elif name == "mask_encoder":
                result = int8("mask_encoder", proto, "image_embeddings")
                calibrated = calib_info if o.vision_int8 == "static" else None
            elif name == "mask_decoder":
                result = mask_decoder(proto)
                calibrated = calib_info if result[1] == "int8" else None
            elif name == "seg_projector" and o.quantize_seg_projector:
                result = seg_projector(proto)
            else:  # seg_projector, and any graph a later export adds
                kb = src_path.stat().st_size / 1024
                result = keep_graph(proto, name, f"{kb:.0f} KB; its output is the mask prompt itself, so it keeps "
                                            f"{o.keep_precision} for no measurable size")
            quantized, precision, method, why, kept = result
            if quantized is not student:  # the student keeps its own embedded manifest
                quantized = _embedded(quantized, proto, precision, calibrated, kept)
            _check_graph(quantized, name)
            path = save_onnx(quantized, out_dir / entry.file)
            inputs, outputs = _io(quantized)
            entries[name] = GraphEntry(file=entry.file, sha256=sha256_file(path), inputs=entry.inputs,
                                       outputs=entry.outputs, precision=precision)
            if [s.name for s in inputs] != [s.name for s in entry.inputs] or \
                    [s.name for s in outputs] != [s.name for s in entry.outputs]:
                raise ModelFileError(f"compressed {name} changed its I/O names: refusing to write it")
            records[name] = GraphCompression(precision=precision, method=method, reason=why, source_sha256=entry.sha256,
                                             bytes_fp32=src_path.stat().st_size, bytes=path.stat().st_size)
            bar.advance(task)
    tokenizer = None
    if source.tokenizer is not None:
        copied = out_dir / source.tokenizer.file
        shutil.copyfile(fp32_dir / source.tokenizer.file, copied)
        tokenizer = FileEntry(file=copied.name, sha256=sha256_file(copied))
    compression = CompressionInfo(
        source_manifest_sha256=sha256_file(fp32_dir / MANIFEST_FILE),
        method=f"LLM {llm_method}; vision INT8 {o.vision_int8}; "
               f"mask encoder {'distilled student' if student_onnx is not None else 'INT8 ' + o.vision_int8}",
        int4_block_size=o.block_size, int4_symmetric=o.symmetric, int4_accuracy_level=o.accuracy_level,
        calibration=calib_text, calibration_size=n, graphs=records, student=student_info)
    manifest = source.model_copy(update={"graphs": entries, "tokenizer": tokenizer, "compression": compression,
                                         "tool_versions": {**source.tool_versions, **tool_versions()}})
    write_lisat_manifest(manifest, out_dir)
    return verify_lisat_manifest(out_dir)


# -- from a checkpoint (what `edgeperc export lisat --precision compressed` runs) -------------------
CALIBRATION_SEED = 3000  # scene seeds 3000 * 1_000_003 + i: disjoint from training (0) and the students' (1000, 2000)
CALIBRATION_QUERIES = 32
STUDENT_SUFFIX = "-student.safetensors"


def student_beside(checkpoint: str | Path) -> Path | None:
    """``<stem>-student.safetensors`` next to ``checkpoint`` (how a student ships with its teacher), if present."""
    checkpoint = Path(checkpoint)
    path = checkpoint.with_name(checkpoint.stem + STUDENT_SUFFIX)
    return path if path.is_file() else None


def calibration_examples(manifest: LisatManifest, folder: str | Path, count: int = CALIBRATION_QUERIES,
                         seed: int = CALIBRATION_SEED, size: int = 256) -> list[dict[str, np.ndarray]]:
    """``count`` generated aerial queries (one per scene, scenes of ``seed``) as examples for the
    export in ``folder``, prompts encoded with its tokenizer."""
    from edgeperc.export.lisat_compress_check import aerial_examples

    from edgeperc.models.lisat_tokenizer import load_tokenizer
    from edgeperc.models.lisat_training import build_query_set

    if manifest.tokenizer is None:
        raise ConfigError(f"{folder} has no tokenizer: calibration prompts cannot be encoded (export with one)")
    tokenizer = load_tokenizer(Path(folder) / manifest.tokenizer.file)
    data = build_query_set(count, 1, size, seed, manifest.clip.size[0], manifest.sam.size[0])
    return aerial_examples(data, tokenizer, limit=count)


def compress_lisat_checkpoint(checkpoint: str | Path, fp32_dir: str | Path, out_dir: str | Path,
                              student: str | Path | None = None, options: CompressOptions | None = None,
                              calibration_queries: int = CALIBRATION_QUERIES, progress: bool = True) -> Path:
    """The FP32 export of ``checkpoint`` -> the compressed folder ``out_dir``, calibrated on generated
    aerial queries; the mask encoder is replaced by ``student`` (default: the one shipped beside the
    checkpoint, ``<stem>-student.safetensors``, with its ``.json`` record), else INT8."""
    from edgeperc.export.lisat_fused_llm import llm_weights

    from edgeperc.models.lisat_checkpoint import load_lisat
    from edgeperc.models.lisat_config import LisatConfig

    source = verify_lisat_manifest(fp32_dir)
    config = LisatConfig.model_validate(source.config)
    weights = None
    if (options or CompressOptions()).fuse_llm:
        model, _ = load_lisat(checkpoint, config)
        weights = llm_weights(model.state_dict(), config.llm.layers)
        del model
    student = Path(student) if student is not None else student_beside(checkpoint)
    examples = calibration_examples(source, fp32_dir, calibration_queries)
    description = (f"{len(examples)} generated aerial queries (edgeperc generate aerial, seed {CALIBRATION_SEED}, "
                   f"one per scene; disjoint from the training scenes)")
    with tempfile.TemporaryDirectory() as tmp:
        student_onnx, record = None, None
        if student is not None:
            import json

            from edgeperc.models.lisat_student import load_lisat_student

            model, _ = load_lisat_student(student, config)
            student_onnx = export_student_mask_encoder(model, Path(tmp) / "mask_encoder.onnx", opset=source.opset,
                                                       checkpoint_sha256=sha256_file(student))
            record_path = Path(student).with_suffix(".json")
            record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        compress_lisat(fp32_dir, out_dir, examples, student_onnx=student_onnx, options=options,
                       calibration_description=description, student_record=record, progress=progress, llm_weights=weights)
    return Path(out_dir)
