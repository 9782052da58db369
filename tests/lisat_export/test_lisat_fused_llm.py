"""The LLM graphs rebuilt with ORT's fused operators (export/lisat_fused_llm.py): same outputs as the
transformers export of the tiny random model, far fewer nodes, and weights that do not belong to
the export are refused."""

from __future__ import annotations

import pytest

from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import numpy as np
import onnx
from edgeperc.export.lisat_compress import decode_feeds, fuse_llm_graph
from edgeperc.export.lisat_fused_llm import build_fused_llm, llm_weights
from edgeperc.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs

from edgeperc.errors import ModelFileError

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def weights(seg_model):
    return llm_weights(seg_model.state_dict(), seg_model.config.llm.layers)


@pytest.fixture(scope="module")
def fused(weights, seg_model, lisat_export_dir):
    llm = seg_model.config.llm
    return {name: build_fused_llm(weights, onnx.load(str(lisat_export_dir / f"{name}.onnx")), llm.layers, llm.heads,
                                  llm.kv_heads, llm.max_positions, llm.rms_norm_eps, llm.rope_theta)
            for name in ("prefill", "decode")}


@pytest.fixture(scope="module")
def prefill_feeds(graphs, prompts):
    from edgeperc.runtime.pipelines.lisat.decode import splice_image_tokens

    manifest, runners = graphs
    out = []
    for example in prompts:
        ids = example["input_ids"].numpy()
        tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
        text = runners["embed"].infer({"input_ids": ids})["embeddings"]
        out.append({"inputs_embeds": splice_image_tokens(text, ids, manifest.tokens.image_token_id, tokens)})
    return out


@pytest.mark.parametrize("name", ["prefill", "decode"])
def test_fused_graph_matches_the_export(name, fused, graphs, prefill_feeds, seg_model):
    manifest, runners = graphs
    feeds = prefill_feeds if name == "prefill" else decode_feeds(runners, prefill_feeds, manifest.kv_cache.layers)
    runner = OnnxRuntimeBackend(fused[name], intra_op_threads=1)
    for f in feeds:
        want, got = runners[name].infer(f), runner.infer(f)
        assert list(got) == list(want)  # same outputs, same order: logits, hidden, present_*
        for key in want:
            assert got[key].shape == want[key].shape, key
            np.testing.assert_allclose(got[key], want[key], atol=TOLERANCE, rtol=0, err_msg=key)


def test_fused_graphs_have_a_fraction_of_the_nodes(fused, lisat_export_dir):
    for name, model in fused.items():
        exported = onnx.load(str(lisat_export_dir / f"{name}.onnx"))
        ops = [n.op_type for n in model.graph.node]
        assert ops.count("GroupQueryAttention") == 2 and ops.count("SkipSimplifiedLayerNormalization") == 4
        assert len(ops) * 3 < len(exported.graph.node), (len(ops), len(exported.graph.node))


def test_greedy_answers_are_token_exact_with_the_fused_graphs(fused, graphs, prompts):
    manifest, runners = graphs
    swapped = {**runners, **{n: OnnxRuntimeBackend(m, intra_op_threads=1) for n, m in fused.items()}}
    for example in prompts:
        ids = example["input_ids"].numpy()
        tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
        want = greedy_decode_graphs(runners, manifest, ids, tokens, 8)
        got = greedy_decode_graphs(swapped, manifest, ids, tokens, 8)
        np.testing.assert_array_equal(got.tokens, want.tokens)
        assert (got.seg_hidden is None) == (want.seg_hidden is None)


def test_weights_of_another_model_are_refused(weights, graphs, prefill_feeds, lisat_export_dir):
    manifest, runners = graphs
    other = dict(weights)
    other["model.layers.1.mlp.down_proj.weight"] = other["model.layers.1.mlp.down_proj.weight"] * 1.5
    template = onnx.load(str(lisat_export_dir / "prefill.onnx"))
    with pytest.raises(ModelFileError, match="differs from the exported one"):
        fuse_llm_graph(template, other, manifest, runners["prefill"], prefill_feeds)


def test_missing_llm_tensors_are_named(weights, seg_model):
    state = dict(weights)
    del state["model.layers.0.self_attn.q_proj.weight"]
    with pytest.raises(ModelFileError, match="q_proj"):
        llm_weights(state, seg_model.config.llm.layers)


def test_a_graph_that_is_not_prefill_or_decode_is_refused(weights, seg_model, lisat_export_dir):
    llm = seg_model.config.llm
    with pytest.raises(ModelFileError, match="not a LISAt prefill/decode graph"):
        build_fused_llm(weights, onnx.load(str(lisat_export_dir / "vision.onnx")), llm.layers, llm.heads, llm.kv_heads,
                        llm.max_positions, llm.rms_norm_eps, llm.rope_theta)
