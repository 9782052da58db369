"""LISAt's LLaMA decoder written straight into ONNX Runtime's fused operators.

The transformers export of a decoder layer is ~70 ONNX nodes (rotary halves, mask building,
shape arithmetic, repeat-kv); at the tiny and drone sizes each node costs more in dispatch than in
arithmetic. ONNX Runtime GenAI's model builder writes the same network with contrib operators
instead, and this does the same for our two LLM graphs, keeping their I/O (names, shapes, KV
layout: keys already rotated) so the runtime and the manifest do not change:

  SkipSimplifiedLayerNormalization                                  RMSNorm + the residual add
  MatMul on packed [q; k; v]                                        one projection per layer
  GroupQueryAttention (do_rotary, causal, KV cache in/out)          rotary + attention + cache
  MatMul gate, MatMul up, Sigmoid, Mul, Mul, MatMul down            SwiGLU MLP
  Slice + Reshape, then lm_head                                     last position only

Per layer 11 nodes instead of ~70. The MatMuls are plain FP32 here; ``quantize_int4`` turns them
into MatMulNBits as it does the exported graphs. ORT-only (GroupQueryAttention is a contrib op of
its CPU and CUDA providers): TensorRT targets keep the transformers export.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeperc.errors import ModelFileError

__all__ = ["LLM_KEYS", "build_fused_llm", "llm_weights"]

MS = "com.microsoft"
LLM_KEYS = ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")
_LAYER_KEYS = ("input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
               "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
               "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")


def llm_weights(state: Mapping[str, object], layers: int) -> dict[str, np.ndarray]:
    """The LLaMA tensors of a LISA-layout state dict (torch or numpy) as float32 arrays; names checked."""
    names = [*LLM_KEYS] + [f"model.layers.{i}.{key}" for i in range(layers) for key in _LAYER_KEYS]
    missing = [n for n in names if n not in state]
    if missing:
        raise ModelFileError(f"the checkpoint lacks LLaMA tensors {missing[:3]}{' ...' if len(missing) > 3 else ''}")
    out = {}
    for name in names:
        value = state[name]
        value = value.detach().cpu().float().numpy() if hasattr(value, "detach") else np.asarray(value)
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def _rotary_cache(head_dim: int, positions: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, head_dim / 2) cos and sin, as transformers' LlamaRotaryEmbedding computes them (float32)."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim))
    freqs = np.arange(positions, dtype=np.float32)[:, None] * inv_freq[None, :].astype(np.float32)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def build_fused_llm(weights: Mapping[str, np.ndarray], template: onnx.ModelProto, layers: int, heads: int,
                    kv_heads: int, max_positions: int, rms_norm_eps: float, rope_theta: float) -> onnx.ModelProto:
    """The prefill (no past inputs) or decode (past_key/value_i inputs) graph of ``template`` -- an
    export of lisat_graphs' PrefillGraph / DecodeGraph -- rebuilt from ``weights`` (llm_weights) with
    fused operators; same inputs and outputs, value infos copied from ``template``."""
    inputs = {v.name: v for v in template.graph.input}
    outputs = [v.name for v in template.graph.output]
    with_past = "past_key_0" in inputs
    expected = [f"present_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    if outputs != ["logits", "hidden", *expected] or "inputs_embeds" not in inputs:
        raise ModelFileError(f"{template.graph.name or 'template'} is not a LISAt prefill/decode graph: outputs {outputs}")
    hidden = weights["model.norm.weight"].shape[0]
    head_dim = hidden // heads
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, ins: list[str], outs: list[str], domain: str = "", **attrs: object) -> list[str]:
        nodes.append(helper.make_node(op, ins, outs, name=f"{outs[0]}/{op}", domain=domain, **attrs))
        return outs

    cos, sin = _rotary_cache(head_dim, max_positions, rope_theta)
    const("rotary_cos", cos)
    const("rotary_sin", sin)
    one = const("one_i64", np.array([1], np.int64))
    # GroupQueryAttention's lengths: seqlens_k = total - 1 (B = 1, no padding), total = past + new
    if with_past:
        node("Shape", ["inputs_embeds"], ["new_length"], start=1, end=2)
        node("Shape", ["past_key_0"], ["past_length"], start=2, end=3)
        node("Add", ["past_length", "new_length"], ["total_length_1d"])
    else:
        node("Shape", ["inputs_embeds"], ["total_length_1d"], start=1, end=2)
    node("Sub", ["total_length_1d", one], ["seqlens_k_i64"])
    node("Cast", ["seqlens_k_i64"], ["seqlens_k"], to=TensorProto.INT32)
    node("Squeeze", ["total_length_1d"], ["total_length_i64"])
    node("Cast", ["total_length_i64"], ["total_length"], to=TensorProto.INT32)

    x = "inputs_embeds"
    # the first RMSNorm has no residual to fuse: written in standard ops, which ORT fuses into
    # SimplifiedLayerNormalization when it loads the graph (that op is not in the ONNX standard)
    square = node("Pow", [x, const("two", np.array(2.0, np.float32))], ["layers.0.square"])[0]
    mean = node("ReduceMean", [square], ["layers.0.mean_square"], axes=[-1], keepdims=1)[0]
    var = node("Add", [mean, const("rms_eps", np.array(rms_norm_eps, np.float32))], ["layers.0.mean_square_eps"])[0]
    rms = node("Sqrt", [var], ["layers.0.rms"])[0]
    scaled = node("Div", [x, rms], ["layers.0.scaled"])[0]
    normed = node("Mul", [scaled, const("layers.0.input_norm", weights["model.layers.0.input_layernorm.weight"])],
                  ["layers.0.normed"])[0]
    residual = x
    for i in range(layers):
        def w(key: str, i: int = i) -> np.ndarray:
            return weights[f"model.layers.{i}.{key}"]

        qkv_weight = np.concatenate([w("self_attn.q_proj.weight"), w("self_attn.k_proj.weight"), w("self_attn.v_proj.weight")]).T
        qkv = node("MatMul", [normed, const(f"layers.{i}.qkv.weight", qkv_weight)], [f"layers.{i}.qkv"])[0]
        past = [f"past_key_{i}", f"past_value_{i}"] if with_past else ["", ""]
        attn = node("GroupQueryAttention", [qkv, "", "", *past, "seqlens_k", "total_length", "rotary_cos", "rotary_sin"],
                    [f"layers.{i}.attn", f"present_key_{i}", f"present_value_{i}"], domain=MS,
                    num_heads=heads, kv_num_heads=kv_heads, do_rotary=1, rotary_interleaved=0)[0]
        attn = node("MatMul", [attn, const(f"layers.{i}.o.weight", w("self_attn.o_proj.weight").T)], [f"layers.{i}.o"])[0]
        normed, _, _, residual = node("SkipSimplifiedLayerNormalization",
                                      [attn, residual, const(f"layers.{i}.post_norm", w("post_attention_layernorm.weight"))],
                                      [f"layers.{i}.post_normed", "", "", f"layers.{i}.h"],
                                      domain=MS, epsilon=rms_norm_eps)
        gate = node("MatMul", [normed, const(f"layers.{i}.gate.weight", w("mlp.gate_proj.weight").T)], [f"layers.{i}.gate"])[0]
        up = node("MatMul", [normed, const(f"layers.{i}.up.weight", w("mlp.up_proj.weight").T)], [f"layers.{i}.up"])[0]
        sig = node("Sigmoid", [gate], [f"layers.{i}.gate_sigmoid"])[0]
        act = node("Mul", [gate, sig], [f"layers.{i}.gate_silu"])[0]
        act = node("Mul", [act, up], [f"layers.{i}.swiglu"])[0]
        down = node("MatMul", [act, const(f"layers.{i}.down.weight", w("mlp.down_proj.weight").T)], [f"layers.{i}.down"])[0]
        last = i == layers - 1
        gamma = weights["model.norm.weight"] if last else weights[f"model.layers.{i + 1}.input_layernorm.weight"]
        normed, _, _, residual = node("SkipSimplifiedLayerNormalization",
                                      [down, residual, const(f"layers.{i + 1}.input_norm", gamma)],
                                      [f"layers.{i + 1}.normed", "", "", f"layers.{i + 1}.x"], domain=MS, epsilon=rms_norm_eps)
    # the last position: hidden (1, d) and its logits (1, V)
    node("Slice", [normed, const("last_start", np.array([-1], np.int64)),
                   const("last_end", np.array([np.iinfo(np.int64).max], np.int64)), one], ["last_position"])
    node("Reshape", ["last_position", const("hidden_shape", np.array([1, hidden], np.int64))], ["hidden"])
    node("MatMul", ["hidden", const("lm_head.weight", weights["lm_head.weight"].T)], ["logits"])

    graph = helper.make_graph(nodes, (template.graph.name or "lisat_llm") + "_fused", list(template.graph.input),
                              list(template.graph.output), inits)
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 17), helper.make_operatorsetid(MS, 1)],
                              producer_name="edgeperc.lisat_fused_llm")
    model.ir_version = template.ir_version
    return model
