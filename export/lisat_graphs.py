"""LISAt as seven exportable nn.Modules, one per ONNX graph, each a thin view of LisatModel.

Why seven: the image encoders run once per image, the LLM once per token, SAM's decoder once per
<SEG>; one graph would re-run the encoders at every token. Each wrapper calls LisatModel's own
piece so the graph and the PyTorch reference cannot drift apart.

  vision         images_clip (1, 3, Hc, Wc)            -> image_tokens (1, N, d)
  mask_encoder   images_sam (1, 3, S, S)               -> image_embeddings (1, P, S/16, S/16)
  embed          input_ids (1, T) int64                -> embeddings (1, T, d)
  prefill        inputs_embeds (1, T, d)               -> logits (1, V), hidden (1, d), present_* (1, kv, T, hd)
  decode         inputs_embeds (1, 1, d), past_* (1, kv, P, hd) -> logits, hidden, present_* (1, kv, P + 1, hd)
  seg_projector  hidden (1, d)                         -> seg_embedding (1, 1, P)
  mask_decoder   image_embeddings, seg_embedding       -> mask_logits (1, 1, H, W)

Embedding is its own graph: prefill must take embeddings (the image tokens are spliced in between
text embeddings), so decode takes them too and one copy of the table serves both; folding it into
decode would put a second copy of the table (0.5 GB at LLaMA-7B fp32) in decode.

``hidden`` is the final-norm hidden state at the last position: the one whose logits emit the next
token, which is LISA's <SEG> hidden when that token is <SEG> (lisat.greedy_decode's ``emitted``).
Batch is 1 everywhere: the KV-cache loop is single-stream and TensorRT prefers static batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeperc.models.lisat import LisatModel


def kv_names(prefix: str, layers: int) -> list[str]:
    """``past`` / ``present`` tensor names, layer by layer: key_0, value_0, key_1, ..."""
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def _flatten(cache: tuple[tuple[torch.Tensor, torch.Tensor], ...]) -> tuple[torch.Tensor, ...]:
    return tuple(t for layer in cache for t in layer)


class VisionGraph(nn.Module):
    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images_clip: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image_clip(images_clip)


class MaskEncoderGraph(nn.Module):
    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images_sam: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image_sam(images_sam)


class EmbedGraph(nn.Module):
    """Ids outside the vocabulary (LLaVA's -200 placeholder) embed as padding, as embed_tokens does."""

    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_tokens(input_ids)


class PrefillGraph(nn.Module):
    """The whole prompt at once, no past: logits and hidden of the last position, the KV cache."""

    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mask = torch.ones_like(inputs_embeds[..., 0], dtype=torch.long)  # (1, T): no padding at B = 1
        logits, hidden, cache = self.model.forward_llm(inputs_embeds, mask)
        return (logits[:, -1], hidden[:, -1], *_flatten(cache))


class DecodeGraph(nn.Module):
    """One token on top of ``past`` (positions continue at the past length, as forward_llm's mask gives)."""

    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cache = tuple((past[i], past[i + 1]) for i in range(0, len(past), 2))
        mask = torch.ones_like(torch.cat([past[0][:, 0, :, 0], inputs_embeds[..., 0]], 1), dtype=torch.long)
        logits, hidden, cache = self.model.forward_llm(inputs_embeds, mask, cache)
        return (logits[:, -1], hidden[:, -1], *_flatten(cache))


class SegProjectorGraph(nn.Module):
    def __init__(self, model: LisatModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.seg_embedding(hidden)


class MaskDecoderGraph(nn.Module):
    """decode_mask at a fixed ``mask_size``: SAM's decoder, upscaling, crop and resize all inside."""

    def __init__(self, model: LisatModel, mask_size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.mask_size = tuple(mask_size)

    def forward(self, image_embeddings: torch.Tensor, seg_embedding: torch.Tensor) -> torch.Tensor:
        return self.model.decode_mask(image_embeddings, seg_embedding, self.mask_size)


@dataclass(frozen=True)
class GraphSpec:
    """A wrapper with its I/O names, dynamic axes and an example input (torch tensors, by input name)."""

    name: str
    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    example: dict[str, torch.Tensor]
    dynamic_axes: dict[str, dict[int, str]]


def graph_specs(model: LisatModel, mask_size: tuple[int, int] | None = None, seed: int = 0) -> list[GraphSpec]:
    """The seven graphs of ``model`` with example inputs from ``seed`` (prompt of 5 text tokens + the
    image tokens, past of 7): examples need only the right shapes, parity is checked elsewhere."""
    c = model.config
    d, layers = c.llm.hidden_size, c.llm.layers
    kv, hd = c.llm.kv_heads, c.llm.hidden_size // c.llm.heads
    g = torch.Generator().manual_seed(seed)
    n_image, s, v = c.vision.tokens, c.sam.image_size, c.vision.image_size
    grid, p = c.sam.embedding_size, c.sam.prompt_embed_dim
    past, present = kv_names("past", layers), kv_names("present", layers)
    prompt = n_image + 5
    size = tuple(mask_size or (s, s))
    return [
        GraphSpec("vision", VisionGraph(model), ["images_clip"], ["image_tokens"],
                  {"images_clip": torch.randn(1, 3, v, v, generator=g)}, {}),
        GraphSpec("mask_encoder", MaskEncoderGraph(model), ["images_sam"], ["image_embeddings"],
                  {"images_sam": torch.randn(1, 3, s, s, generator=g)}, {}),
        GraphSpec("embed", EmbedGraph(model), ["input_ids"], ["embeddings"],
                  {"input_ids": torch.randint(0, c.llm.vocab_size, (1, 6), generator=g)},
                  {"input_ids": {1: "tokens"}, "embeddings": {1: "tokens"}}),
        GraphSpec("prefill", PrefillGraph(model), ["inputs_embeds"], ["logits", "hidden", *present],
                  {"inputs_embeds": torch.randn(1, prompt, d, generator=g)},
                  {"inputs_embeds": {1: "prompt_length"}, **{n: {2: "prompt_length"} for n in present}}),
        GraphSpec("decode", DecodeGraph(model), ["inputs_embeds", *past], ["logits", "hidden", *present],
                  {"inputs_embeds": torch.randn(1, 1, d, generator=g),
                   **{n: torch.randn(1, kv, 7, hd, generator=g) for n in past}},
                  {**{n: {2: "past_length"} for n in past}, **{n: {2: "total_length"} for n in present}}),
        GraphSpec("seg_projector", SegProjectorGraph(model), ["hidden"], ["seg_embedding"],
                  {"hidden": torch.randn(1, d, generator=g)}, {}),
        GraphSpec("mask_decoder", MaskDecoderGraph(model, size), ["image_embeddings", "seg_embedding"], ["mask_logits"],
                  {"image_embeddings": torch.randn(1, p, grid, grid, generator=g),
                   "seg_embedding": torch.randn(1, 1, p, generator=g)}, {}),
    ]
