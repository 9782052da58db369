"""LISAt as seven ONNX graphs: checker, manifest and checksums, per-graph parity with PyTorch,
KV-cache decode = re-prefill, token-exact greedy answers, <SEG> mask IoU, tampering refused."""

from __future__ import annotations

import shutil

import pytest

from tests.lisat_export.conftest import MAX_NEW_TOKENS
from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import numpy as np
import onnx
import torch
from edgeperc.export.lisat_export import mask_iou, verify_lisat_manifest
from edgeperc.runtime.pipelines.lisat.decode import (
    finite_logits,
    greedy_decode_graphs,
    splice_image_tokens,
)
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs
from edgeperc.runtime.pipelines.lisat.masks import crop_and_resize_mask

from edgeperc.errors import InvalidInputError, ModelFileError
from edgeperc.hashing import sha256_file
from edgeperc.lisat_manifest import GRAPH_NAMES, MANIFEST_FILE, read_lisat_manifest
from edgeperc.manifest import read_manifest
from edgeperc.models.lisat import greedy_decode
from edgeperc.models.lisat_config import clip_normalisation, sam_normalisation
from edgeperc.models.lisat_tokenizer import load_tokenizer

ATOL = 1e-4


def test_every_graph_passes_the_checker_and_carries_a_manifest(lisat_export_dir):
    manifest = read_lisat_manifest(lisat_export_dir)
    assert tuple(manifest.graphs) == GRAPH_NAMES
    for name, entry in manifest.graphs.items():
        path = lisat_export_dir / entry.file
        assert path.name == f"{name}.onnx"
        onnx.checker.check_model(str(path), full_check=True)
        embedded = read_manifest(onnx.load(str(path)))
        assert embedded.family == "lisat" and embedded.family_config["graph"] == name
        assert [s.name for s in embedded.inputs] == [s.name for s in entry.inputs]


def test_mask_decoder_graph_runs_one_hypernetwork_and_one_resize(lisat_export_dir, seg_model):
    """At SAM's own size the exported mask decoder upsamples once (no identity crop/resize) and runs
    only mask 0's hypernetwork MLP (LISA's multimask_output=False): SAM's other three would be dead
    nodes that ONNX Runtime still executes."""
    graph = onnx.load(str(lisat_export_dir / "mask_decoder.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Resize") == 1, ops.count("Resize")
    hyper = {p for n in graph.node for p in n.name.split("/") if p.startswith("output_hypernetworks_mlps")}
    assert hyper == {"output_hypernetworks_mlps.0"}, hyper
    assert seg_model.model.visual_model.mask_decoder.num_mask_tokens > 1


def test_mask_decoder_opens_without_skip_layernorm_fusion_and_answers_the_same(lisat_export_dir, graphs, tmp_path):
    """open_lisat_graphs turns ORT's SkipLayerNormFusion off on the CPU (measured slower on the mask
    decoder): what runs keeps Add + LayerNormalization, and the outputs do not change."""
    from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from edgeperc.runtime.pipelines.lisat.graphs import CPU_DISABLED_OPTIMIZERS

    manifest, runners = graphs
    assert all(r.disabled_optimizers == CPU_DISABLED_OPTIMIZERS for r in runners.values())
    path = lisat_export_dir / "mask_decoder.onnx"
    fused = OnnxRuntimeBackend(path, save_optimized=tmp_path / "fused.onnx")
    plain = OnnxRuntimeBackend(path, disabled_optimizers=CPU_DISABLED_OPTIMIZERS, save_optimized=tmp_path / "plain.onnx")
    ops = {name: [n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node] for name in ("fused", "plain")}
    assert "SkipLayerNormalization" in ops["fused"] and "SkipLayerNormalization" not in ops["plain"]
    rng = np.random.default_rng(0)
    feeds = {s.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in s.shape]).astype(np.float32)
             for s in plain.inputs}
    np.testing.assert_allclose(plain.infer(feeds)["mask_logits"], fused.infer(feeds)["mask_logits"], atol=1e-4, rtol=0)


def test_manifest_checksums_ids_and_layout(lisat_export_dir, seg_model, lisat_tokenizer):
    manifest = verify_lisat_manifest(lisat_export_dir)
    c = seg_model.config
    for entry in manifest.graphs.values():
        assert sha256_file(lisat_export_dir / entry.file) == entry.sha256
    assert sha256_file(lisat_export_dir / manifest.tokenizer.file) == manifest.tokenizer.sha256
    assert len(load_tokenizer(lisat_export_dir / manifest.tokenizer.file)) == len(lisat_tokenizer)
    t = manifest.tokens
    assert (t.bos_id, t.eos_id, t.pad_id) == (lisat_tokenizer.bos_id, lisat_tokenizer.eos_id, lisat_tokenizer.pad_id)
    assert (t.image_token_id, t.seg_token_id, t.n_image_tokens) == (c.image_token_id, c.seg_token_id, c.vision.tokens)
    assert (manifest.kv_cache.layers, manifest.kv_cache.kv_heads, manifest.kv_cache.head_dim) == (2, 2, 32)
    assert manifest.clip.size == (128, 128) and manifest.clip.normalisation == clip_normalisation()
    assert manifest.sam.size == (256, 256) and manifest.sam.normalisation == sam_normalisation()
    assert manifest.mask_size == (256, 256) and manifest.config == c.model_dump(mode="json")
    specs = {name: {s.name: s.shape for s in g.inputs + g.outputs} for name, g in manifest.graphs.items()}
    assert specs["embed"]["input_ids"] == [1, "tokens"] and specs["embed"]["embeddings"] == [1, "tokens", 128]
    assert specs["prefill"]["inputs_embeds"] == [1, "prompt_length", 128]
    assert specs["prefill"]["present_value_1"] == [1, 2, "prompt_length", 32]
    assert specs["prefill"]["logits"] == [1, 512] and specs["prefill"]["hidden"] == [1, 128]
    assert specs["decode"]["inputs_embeds"] == [1, 1, 128]
    assert specs["decode"]["past_key_0"] == [1, 2, "past_length", 32]
    assert specs["decode"]["present_key_0"] == [1, 2, "past_length + 1", 32]  # named by shape inference
    assert specs["mask_decoder"]["mask_logits"] == [1, 1, 256, 256]


def test_every_graph_matches_its_pytorch_piece(parity_report):
    assert set(parity_report["max_abs_diff"]) == set(GRAPH_NAMES)
    assert len(parity_report["graphs"]["decode"]) == 2 + 2 * 2  # logits, hidden, 2 layers x (key, value)
    for name, worst in parity_report["max_abs_diff"].items():
        assert worst < ATOL, (name, parity_report["graphs"][name])


def test_greedy_answers_are_token_exact_and_reach_seg(parity_report, seg_model):
    seg = seg_model.config.seg_token_id
    assert parity_report["tokens_equal"], [(e["tokens"], e["reference_tokens"]) for e in parity_report["examples"]]
    sources = [e["mask_source"] for e in parity_report["examples"]]
    assert sources.count("greedy") >= 1 and sources.count("forced") >= 1  # both paths exercised
    # <SEG> after some ordinary tokens: its hidden state came through the KV cache, not the prefill.
    assert any(e["reference_tokens"].index(seg) >= 2 for e in parity_report["examples"] if seg in e["reference_tokens"])


def test_mask_of_the_onnx_path_matches_pytorch(parity_report):
    assert parity_report["mask_iou"] >= 0.99
    for e in parity_report["examples"]:
        assert 0.01 < e["mask_positive_fraction"] < 0.99  # a mask with both classes, so the IoU means something
        assert e["mask_max_abs_diff"] < ATOL


def test_decode_step_equals_reprefill_of_the_longer_sequence(graphs, seg_model, prompts):
    _, runners = graphs
    example = prompts[1]
    with torch.no_grad():
        tokens = seg_model.encode_image_clip(example["images_clip"])
        embeds, _ = seg_model.splice_image_tokens(example["input_ids"], tokens)
    embeds = embeds.numpy()
    n = embeds.shape[1] - 3
    out = runners["prefill"].infer({"inputs_embeds": embeds[:, :n]})
    for k in range(3):  # three steps: past lengths n, n + 1, n + 2
        past = {f"past_{kind}_{i}": out[f"present_{kind}_{i}"] for i in range(2) for kind in ("key", "value")}
        out = runners["decode"].infer({"inputs_embeds": embeds[:, n + k: n + k + 1], **past})
        full = runners["prefill"].infer({"inputs_embeds": embeds[:, : n + k + 1]})
        assert out["present_key_0"].shape[2] == n + k + 1
        for name in ("logits", "hidden", "present_key_1", "present_value_0"):
            np.testing.assert_allclose(out[name], full[name], atol=ATOL, rtol=0, err_msg=f"step {k}: {name}")
    # The positions matter: the same token at a wrong past length gives other logits.
    shifted = {f"past_{kind}_{i}": full[f"present_{kind}_{i}"][:, :, 1:] for i in range(2) for kind in ("key", "value")}
    wrong = runners["decode"].infer({"inputs_embeds": embeds[:, n + 2: n + 3], **shifted})
    assert np.abs(wrong["logits"] - out["logits"]).max() > 1e-3


def test_prefill_and_decode_hold_at_lengths_far_from_the_traced_ones(graphs, seg_model):
    """Traced at a prompt of 69 and a past of 7: lengths 1, 2 and 200 (max_positions 256) still match."""
    _, runners = graphs
    rng = np.random.default_rng(3)
    for n in (1, 2, 200):
        embeds = rng.standard_normal((1, n + 1, seg_model.config.llm.hidden_size)).astype(np.float32)
        with torch.no_grad():
            logits, hidden, _ = seg_model.forward_llm(torch.from_numpy(embeds), torch.ones(1, n + 1, dtype=torch.long))
        prefill = runners["prefill"].infer({"inputs_embeds": embeds[:, :n]})
        np.testing.assert_allclose(prefill["logits"], logits[:, n - 1].numpy(), atol=ATOL, rtol=0)
        past = {f"past_{kind}_{i}": prefill[f"present_{kind}_{i}"] for i in range(2) for kind in ("key", "value")}
        step = runners["decode"].infer({"inputs_embeds": embeds[:, n:], **past})
        np.testing.assert_allclose(step["logits"], logits[:, n].numpy(), atol=ATOL, rtol=0)
        np.testing.assert_allclose(step["hidden"], hidden[:, n].numpy(), atol=ATOL, rtol=0)


def test_decode_loop_stops_at_seg_with_the_hidden_state_that_emitted_it(graphs, seg_model, prompts):
    manifest, runners = graphs
    seg = manifest.tokens.seg_token_id
    seen_seg = 0
    for example in prompts:
        with torch.no_grad():
            ref_ids, ref_emitted = greedy_decode(seg_model, example["images_clip"], example["input_ids"],
                                                 MAX_NEW_TOKENS, stop_id=manifest.tokens.eos_id)
        ref = ref_ids[0].tolist()
        image_tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
        ours = greedy_decode_graphs(runners, manifest, example["input_ids"].numpy(), image_tokens, MAX_NEW_TOKENS)
        if seg in ref:
            seen_seg += 1
            at = ref.index(seg)
            assert ours.tokens.tolist() == ref[: at + 1]
            np.testing.assert_allclose(ours.seg_hidden, ref_emitted[:, at].numpy(), atol=ATOL, rtol=0)
        else:
            assert ours.tokens.tolist() == ref and ours.seg_hidden is None
        np.testing.assert_allclose(ours.emitted, ref_emitted[0, : len(ours.tokens)].numpy(), atol=ATOL, rtol=0)
    assert seen_seg >= 1


def test_nan_is_refused_at_the_prefill_and_caught_in_the_logits(graphs, prompts):
    """The decode steps skip the per-feed scan (graph hand-offs): NaN image tokens from a caller are
    refused by the checked prefill feed, and non-finite logits (a broken graph) are a named error."""
    manifest, runners = graphs
    image_tokens = runners["vision"].infer({"images_clip": prompts[0]["images_clip"].numpy()})["image_tokens"]
    image_tokens[0, 3, 5] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        greedy_decode_graphs(runners, manifest, prompts[0]["input_ids"].numpy(), image_tokens, MAX_NEW_TOKENS)
    logits = np.zeros(7, np.float32)
    assert finite_logits(logits, "decode") is logits
    logits[4] = np.inf
    with pytest.raises(ModelFileError, match="decode graph returned NaN/Inf logits"):
        finite_logits(logits, "decode")


def test_numpy_splice_matches_the_model_and_refuses_bad_placeholders(seg_model, prompts):
    ids = prompts[0]["input_ids"]
    with torch.no_grad():
        tokens = seg_model.encode_image_clip(prompts[0]["images_clip"])
        ref, _ = seg_model.splice_image_tokens(ids, tokens)
        text = seg_model.embed_tokens(ids).numpy()
    ours = splice_image_tokens(text, ids.numpy(), seg_model.config.image_token_id, tokens.numpy())
    np.testing.assert_array_equal(ours, ref.numpy())
    two = ids.clone()
    two[0, -1] = seg_model.config.image_token_id
    after = int((ids[0] == seg_model.config.image_token_id).nonzero()[0, 0]) + 1
    for bad in (two.numpy(), ids[:, after:].numpy()):  # two placeholders, none
        with pytest.raises(InvalidInputError, match="exactly one image placeholder"):
            splice_image_tokens(text[:, : bad.shape[1]], bad, seg_model.config.image_token_id, tokens.numpy())


def test_mask_at_sam_size_crops_and_resizes_like_decode_mask(graphs, seg_model, prompts):
    _, runners = graphs
    size = (90, 120)
    with torch.no_grad():
        embeddings = seg_model.encode_image_sam(prompts[0]["images_sam"])
        seg = seg_model.seg_embedding(torch.randn(1, seg_model.config.llm.hidden_size,
                                                  generator=torch.Generator().manual_seed(5)))
        ref = seg_model.decode_mask(embeddings, seg, size)[0, 0].numpy()
    at_sam = runners["mask_decoder"].infer({"image_embeddings": embeddings.numpy(), "seg_embedding": seg.numpy()})
    ours = crop_and_resize_mask(at_sam["mask_logits"][0, 0], size)
    assert ours.shape == size
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)
    assert mask_iou(ours, ref) >= 0.99 and 0.01 < (ref > 0).mean() < 0.99


def test_a_flipped_byte_in_a_graph_is_refused_by_name(lisat_export_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(lisat_export_dir, folder)
    verify_lisat_manifest(folder)
    path = folder / "decode.onnx"
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="decode.onnx"):
        verify_lisat_manifest(folder)
    with pytest.raises(ModelFileError, match="decode.onnx"):
        open_lisat_graphs(folder)
    path.write_bytes(original)
    (folder / "seg_projector.onnx").unlink()
    with pytest.raises(ModelFileError, match="seg_projector.onnx"):
        verify_lisat_manifest(folder)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match=MANIFEST_FILE):
        verify_lisat_manifest(folder)
