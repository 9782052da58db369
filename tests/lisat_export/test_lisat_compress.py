"""Compressed LISAt (issue 6 item 5) on the tiny random model: INT4 LLM graphs, INT8 vision, the
mask decoder's measured decision, a distilled mask-encoder student, same folder layout as FP32."""

from __future__ import annotations

import json

import pytest

from tests.lisat_export.conftest import MAX_NEW_TOKENS
from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import numpy as np
import onnx
import torch
from edgeperc.export.lisat_compress import (
    CompressOptions,
    compress_lisat,
    compress_lisat_checkpoint,
    export_student_mask_encoder,
)
from edgeperc.export.lisat_compress_check import check_compressed_lisat, folder_bytes
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.lisat_manifest import (
    GRAPH_NAMES,
    MANIFEST_FILE,
    read_lisat_manifest,
    verify_lisat_manifest,
)
from edgeperc.manifest import read_manifest
from edgeperc.models.lisat_checkpoint import save_lisat
from edgeperc.models.lisat_student import (
    StudentConfig,
    build_student,
    distill_mask_encoder,
    distillation_images,
    load_lisat_student,
    save_lisat_student,
)

MAX_FP32_WEIGHT = 1024  # elements: anything bigger left beside a MatMul in prefill/decode is a missed weight


@pytest.fixture(scope="module")
def distilled(seg_model):
    torch.manual_seed(0)
    images = distillation_images(6, 7, 256, seg_model.config.sam.image_size)
    held = distillation_images(2, 8, 256, seg_model.config.sam.image_size)
    return distill_mask_encoder(seg_model, images, steps=25, lr=3e-3, batch=4, seed=0, progress=False, held_out=held)


@pytest.fixture(scope="module")
def student_onnx(distilled, tmp_path_factory):
    student, _ = distilled
    return export_student_mask_encoder(student, tmp_path_factory.mktemp("student") / "mask_encoder.onnx")


@pytest.fixture(scope="module")
def compressed_dir(seg_model, lisat_export_dir, distilled, tmp_path_factory):
    """Through compress_lisat_checkpoint: the student found beside the checkpoint (its -student file),
    calibrated on 3 generated aerial queries."""
    shipped = save_lisat(seg_model, seg_model.config, tmp_path_factory.mktemp("checkpoint"))
    save_lisat_student(shipped / "model-student.safetensors", *distilled)  # found beside model.safetensors
    folder = tmp_path_factory.mktemp("lisat_compressed")
    compress_lisat_checkpoint(shipped / "model.safetensors", lisat_export_dir, folder, calibration_queries=3,
                              progress=False)
    return folder


def _ops(folder, name):
    return [n.op_type for n in onnx.load(str(folder / f"{name}.onnx")).graph.node]


def test_compressed_folder_opens_verifies_and_keeps_the_layout(compressed_dir, lisat_export_dir):
    manifest = verify_lisat_manifest(compressed_dir)
    fp32 = read_lisat_manifest(lisat_export_dir)
    assert tuple(manifest.graphs) == GRAPH_NAMES
    for name, entry in manifest.graphs.items():
        assert entry.file == fp32.graphs[name].file == f"{name}.onnx"
        assert entry.inputs == fp32.graphs[name].inputs and entry.outputs == fp32.graphs[name].outputs
        onnx.checker.check_model(str(compressed_dir / entry.file), full_check=True)
    assert manifest.tokens == fp32.tokens and manifest.kv_cache == fp32.kv_cache and manifest.sam == fp32.sam
    assert (compressed_dir / manifest.tokenizer.file).is_file()
    _, runners = open_lisat_graphs(compressed_dir)  # every graph loads in ONNX Runtime
    assert set(runners) == set(GRAPH_NAMES)


def test_llm_graphs_are_int4_with_no_large_fp32_matmul_weight(compressed_dir):
    for name in ("prefill", "decode"):
        model = onnx.load(str(compressed_dir / f"{name}.onnx"))
        sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
        ops = _ops(compressed_dir, name)
        assert sum(op == "MatMulNBits" for op in ops) == 2 * 5 + 1  # 2 layers x (qkv, o, gate, up, down) + lm_head
        assert ops.count("GroupQueryAttention") == 2  # rebuilt with fused operators before INT4
        left = [(n.name, sizes[i]) for n in model.graph.node if n.op_type in ("MatMul", "Gemm")
                for i in n.input if sizes.get(i, 0) > MAX_FP32_WEIGHT]
        assert not left, left
    assert "GatherBlockQuantized" in _ops(compressed_dir, "embed")


def test_vision_graph_is_int8(compressed_dir):
    ops = set(_ops(compressed_dir, "vision"))
    assert ops & {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "DynamicQuantizeLinear",
                  "MatMulInteger"}, ops


def test_manifest_records_precision_method_and_reasons(compressed_dir, lisat_export_dir, distilled):
    manifest = read_lisat_manifest(compressed_dir)
    precision = {name: g.precision for name, g in manifest.graphs.items()}
    assert precision["prefill"] == precision["decode"] == precision["embed"] == "int4"
    assert precision["vision"] == "int8" and precision["mask_encoder"] == "fp32"  # the student
    assert precision["seg_projector"] in ("int4", "fp32") and precision["mask_decoder"] in ("int8", "fp32")
    c = manifest.compression
    assert c.int4_block_size == 128 and c.int4_symmetric and c.calibration_size == 3
    assert "cosine" in c.graphs["seg_projector"].reason
    assert c.calibration.startswith("3 generated aerial queries")
    assert set(c.graphs) == set(GRAPH_NAMES)
    assert all(g.reason and g.source_sha256 == read_lisat_manifest(lisat_export_dir).graphs[n].sha256
               for n, g in c.graphs.items())
    assert "IoU" in c.graphs["mask_decoder"].reason and "student" in c.graphs["mask_encoder"].reason
    assert c.student["flops"]["ratio"] == distilled[1]["flops"]["ratio"] < 1 and c.student["checkpoint_sha256"]
    for name in ("prefill", "vision"):  # each graph's own embedded manifest follows
        embedded = read_manifest(onnx.load(str(compressed_dir / f"{name}.onnx")))
        assert embedded.precision == precision[name] and embedded.parent_graph_sha256
    assert c.graphs["prefill"].bytes < c.graphs["prefill"].bytes_fp32 / 3


def test_compressed_greedy_decode_runs_end_to_end(compressed_dir, lisat_export_dir, prompts):
    manifest, runners = open_lisat_graphs(compressed_dir)
    example = prompts[0]
    image_tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
    answer = greedy_decode_graphs(runners, manifest, example["input_ids"].numpy(), image_tokens, MAX_NEW_TOKENS)
    assert 1 <= len(answer.tokens) <= MAX_NEW_TOKENS and np.isfinite(answer.emitted).all()
    report = check_compressed_lisat(lisat_export_dir, compressed_dir, prompts, max_new_tokens=MAX_NEW_TOKENS)
    assert report["examples"] == 3 and 0 <= report["tokens_equal_rate"] <= 1
    assert 0 <= report["mask_iou_min"] <= report["mask_iou_mean"] <= 1
    sizes = report["bytes"]
    assert sizes["fp32"] == folder_bytes(lisat_export_dir) and sizes["ratio"] < 0.6
    assert sizes["compressed"]["graphs"]["decode"] < sizes["fp32"]["graphs"]["decode"] / 3


def test_mask_decoder_precision_follows_the_measured_iou(lisat_export_dir, prompts, tmp_path):
    """Floor 0: INT8 always passes; no student: the mask encoder is INT8 too (dynamic here)."""
    options = CompressOptions(mask_iou_floor=0.0, vision_int8="dynamic", quantize_embed=False)
    manifest = compress_lisat(lisat_export_dir, tmp_path / "c", prompts[:2], options=options, progress=False)
    precision = {name: g.precision for name, g in manifest.graphs.items()}
    assert precision["mask_decoder"] == "int8" and precision["mask_encoder"] == "int8" and precision["embed"] == "fp32"
    assert "DynamicQuantizeLinear" in _ops(tmp_path / "c", "vision")
    assert "mean" in manifest.compression.graphs["mask_decoder"].reason
    with pytest.raises(ConfigError, match="already compressed"):
        compress_lisat(tmp_path / "c", tmp_path / "d", prompts[:1], progress=False)


def test_a_student_with_other_io_is_refused(lisat_export_dir, prompts, tmp_path):
    with pytest.raises(ModelFileError, match="student mask encoder"):
        compress_lisat(lisat_export_dir, tmp_path / "c", prompts[:1], student_onnx=lisat_export_dir / "vision.onnx",
                       progress=False)


def test_a_few_distillation_steps_reduce_the_students_error(distilled):
    _, record = distilled
    assert record["errors_on"] == "held_out"
    assert record["final"]["mse"] < record["initial"]["mse"]
    assert record["final_loss"] < record["first_loss"] and len(record["loss_curve"]) == 25
    assert record["parameters"]["student"] < record["parameters"]["teacher"]
    assert 0 < record["flops"]["student"] < record["flops"]["teacher"]


def test_student_onnx_has_the_teacher_graphs_io_and_matches_torch(student_onnx, distilled, lisat_export_dir):
    teacher = read_lisat_manifest(lisat_export_dir).graphs["mask_encoder"]
    runner = OnnxRuntimeBackend(student_onnx)
    assert [(s.name, s.shape, s.dtype) for s in runner.inputs] == [(s.name, s.shape, s.dtype) for s in teacher.inputs]
    assert [(s.name, s.shape, s.dtype) for s in runner.outputs] == [(s.name, s.shape, s.dtype) for s in teacher.outputs]
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = distilled[0](x).numpy()
    np.testing.assert_allclose(runner.infer({"images_sam": x.numpy()})["image_embeddings"], ref, atol=1e-4, rtol=0)


def test_student_checkpoint_round_trips_and_a_wrong_shape_is_named(distilled, seg_model, tmp_path):
    student, record = distilled
    path = save_lisat_student(tmp_path / "s.safetensors", student, record)
    assert json.loads(path.with_suffix(".json").read_text())["steps"] == 25
    loaded, config = load_lisat_student(path, seg_model.config)
    for (k, a), b in zip(student.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    other = build_student(StudentConfig(**{**config.model_dump(), "widths": (16, 32, 64, 128)}))
    other.config = config  # its tensors, this config in the metadata: a shape mismatch
    save_lisat_student(tmp_path / "bad.safetensors", other)
    with pytest.raises(ModelFileError, match=r"neck\.0\.weight \(64, 128, 1, 1\) vs \(64, 96, 1, 1\)"):
        load_lisat_student(tmp_path / "bad.safetensors")
    with pytest.raises(ModelFileError, match="not found"):
        load_lisat_student(tmp_path / "missing.safetensors")


def test_patchify_stem_and_batchnorm_neck_student(seg_model, tmp_path):
    """stem_stride 4 (one 4x4 stride-4 convolution) + two stride-2 stages reach the teacher's grid;
    the BatchNorm neck folds into the convolutions at export (no per-position normalisation ops
    left); the teacher's I/O and torch's numbers are kept; a stem that misses the grid is named."""
    from edgeperc.export.lisat_compress import export_student_mask_encoder

    config = StudentConfig.for_lisat(seg_model.config, (16, 32, 64),
                                     {"stem_stride": 4, "blocks_per_stage": 0, "neck_norm": "batchnorm"})
    torch.manual_seed(0)
    student = build_student(config).eval()
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        out = student(x)
    assert out.shape == (2, 64, 16, 16)
    path = export_student_mask_encoder(student, tmp_path / "fast.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("ReduceMean") <= 1, ops  # the pooled context only; LayerNorm2d would add two, with Pow and Sqrt
    assert "BatchNormalization" not in ops and "Pow" not in ops and "Sqrt" not in ops
    np.testing.assert_allclose(OnnxRuntimeBackend(path).infer({"images_sam": x[:1].numpy()})["image_embeddings"],
                               out[:1].numpy(), atol=1e-4, rtol=0)
    save_lisat_student(tmp_path / "fast.safetensors", student)
    loaded, loaded_config = load_lisat_student(tmp_path / "fast.safetensors", seg_model.config)
    assert loaded_config == config
    with pytest.raises(ConfigError, match="stem_stride x 2"):
        StudentConfig.for_lisat(seg_model.config, (16, 32, 64, 96), {"stem_stride": 4})
    with pytest.raises(ConfigError, match="power of two"):
        StudentConfig.for_lisat(seg_model.config, (16, 32), {"stem_stride": 6})


def test_separable_neck_student_exports_without_a_full_3x3(seg_model, tmp_path):
    """neck_conv separable: the neck's 3x3 is depthwise (groups = P) then a 1x1, far fewer weights
    than SAM's P x P x 3 x 3; the ONNX keeps the teacher's I/O and torch's numbers; the config
    round-trips through the checkpoint."""
    from edgeperc.export.lisat_compress import export_student_mask_encoder

    options = {"stem_stride": 4, "blocks_per_stage": 1, "neck_conv": "separable"}
    config = StudentConfig.for_lisat(seg_model.config, (16, 32, 64), options)
    full = build_student(StudentConfig.for_lisat(seg_model.config, (16, 32, 64), {**options, "neck_conv": "full"}))
    torch.manual_seed(0)
    student = build_student(config).eval()
    count = lambda m: sum(p.numel() for p in m.neck.parameters())  # noqa: E731
    p = seg_model.config.sam.prompt_embed_dim
    assert count(full) - count(student) == p * p * 9 - (p * 9 + p * p)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        out = student(x)
    path = export_student_mask_encoder(student, tmp_path / "sep.onnx")
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in convs]
    assert p in groups, groups
    np.testing.assert_allclose(OnnxRuntimeBackend(path).infer({"images_sam": x.numpy()})["image_embeddings"],
                               out.numpy(), atol=1e-4, rtol=0)
    save_lisat_student(tmp_path / "sep.safetensors", student)
    assert load_lisat_student(tmp_path / "sep.safetensors", seg_model.config)[1] == config
    with pytest.raises(ConfigError, match="neck_conv"):
        StudentConfig.for_lisat(seg_model.config, (16, 32, 64), {**options, "neck_conv": "grouped"})


def test_student_layernorm2d_is_sams_per_position_channel_norm(seg_model):
    """The student's LayerNorm2d (written NHWC so it exports as one LayerNormalization) against
    SAM's formula in numpy: each position's channel vector normalised, then scaled and shifted."""
    student = build_student(StudentConfig.for_lisat(seg_model.config, (24, 48, 64), {"stem_stride": 4})).eval()
    norm = student.neck[1]
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, norm.weight.numel()))
        norm.bias.copy_(torch.linspace(-1, 1, norm.bias.numel()))
        x = torch.randn(2, norm.weight.numel(), 5, 7) * 3 + 1
        got = norm(x).numpy()
    a = x.numpy()
    mean = a.mean(1, keepdims=True)
    var = ((a - mean) ** 2).mean(1, keepdims=True)
    w, b = norm.weight.detach().numpy(), norm.bias.detach().numpy()
    want = (a - mean) / np.sqrt(var + 1e-6) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_manifests_written_before_compression_still_read(lisat_export_dir, tmp_path):
    data = json.loads((lisat_export_dir / MANIFEST_FILE).read_text())
    for entry in data["graphs"].values():
        entry.pop("precision", None)
    data.pop("compression", None)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(data))
    manifest = read_lisat_manifest(tmp_path)
    assert all(g.precision == "fp32" for g in manifest.graphs.values()) and manifest.compression is None


def test_eval_lisat_cli_puts_fp32_and_compressed_side_by_side(compressed_dir, lisat_export_dir, tmp_path, capsys):
    """Each export evaluated in its own process on generated held-out scenes; metrics in [0, 1],
    a latency per graph, bytes that match the folders, the paper's figures and the statement."""
    from edgeperc.cli import main

    plot = tmp_path / "eval.png"
    code = main(["eval", "lisat", "--fp32", str(lisat_export_dir), "--compressed", str(compressed_dir), "--scenes", "2",
                 "--queries-per-image", "1", "--json", "--plot", str(plot)])
    assert code in (0, None)
    record = json.loads(capsys.readouterr().out)
    for name, folder in (("fp32", lisat_export_dir), ("compressed", compressed_dir)):
        run = record[name]
        assert run["queries"] >= 1 and set(run["metrics"]) == {"all", "small", "large"}
        assert 0.0 <= run["metrics"]["all"]["giou"] <= 1.0
        assert run["bytes"]["total"] == folder_bytes(folder)["total"] and run["peak_rss_mib"] > 0
        assert all(run["latency_ms"][k] > 0 for k in ("vision_ms", "mask_encoder_ms", "prefill_ms", "first_query_ms"))
    comparison = record["comparison"]
    assert comparison["size_ratio"] == pytest.approx(record["fp32"]["bytes"]["total"] / record["compressed"]["bytes"]["total"])
    assert record["paper"]["lisat_7b"]["all"]["giou"] == 0.275 and "generated" in record["statement"]
    assert plot.is_file() and plot.stat().st_size > 1000
