"""LISAt (dissertation ch. 6): LISA's architecture, with state-dict names of LISA's checkpoints.

Module tree (dvlab-research/LISA ``model/LISA.py``: LISAForCausalLM -> LisaModel, a LlavaLlamaModel):
  model.embed_tokens / model.layers.N / model.norm      LLaMA decoder (transformers LlamaModel)
  model.vision_tower.vision_tower.vision_model.*        CLIP ViT (LLaVA's CLIPVisionTower -> CLIPVisionModel)
  model.mm_projector                                    CLIP features -> LLM width (Linear, LLaVA-1)
  model.visual_model.{image_encoder,prompt_encoder,mask_decoder}   SAM (segment_anything's own modules)
  model.text_hidden_fcs.0.{0,2}                         Linear(d, d)-ReLU-Linear(d, 256)-Dropout(0)
  lm_head                                               Linear(d, vocab), untied

Pieces, each with tensor inputs and outputs so each can be exported alone:
  encode_image_clip  (B, 3, Hc, Wc) -> (B, N, d) image tokens
  encode_image_sam   (B, 3, S, S)   -> (B, P, S/16, S/16) SAM image embeddings
  forward_llm        (B, L, d) embeddings, (B, past + L) mask, KV cache -> logits, last hidden, KV cache
  seg_embedding      (B, d) hidden state that emitted <SEG> -> (B, 1, P)
  decode_mask        (B, P, h, w) embeddings, (B, 1, P) seg embeddings -> (B, 1, H, W) mask logits

The <SEG> embedding is the last-layer hidden state at the position *before* <SEG>, the one whose
logits emit it (LISA: ``seg_token_mask = input_ids[:, 1:] == seg_token_idx``), so at inference it is
ready the moment <SEG> is generated, without feeding <SEG> back in.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgeperc.errors import BackendUnavailableError, InvalidInputError
from edgeperc.models.lisat_config import IGNORE_INDEX, LisatConfig, sam_resize_hw

KVCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer (keys, values): (B, kv_heads, T, head_dim)


def _need(module: str, extra: str = "lisat") -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name.split(".")[0]):
            raise BackendUnavailableError(f"LISAt needs {module.split('.')[0]}: pip install -e '.[{extra}]'") from exc
        raise


def sam_modeling() -> Any:
    """``segment_anything.modeling`` without torchvision.

    segment_anything 1.0's package ``__init__`` imports its predictor, which imports torchvision;
    the model modules do not. A torchvision wheel would pull a second (CUDA) torch, so when it is
    absent the package is registered bare and only ``modeling`` is imported from it.
    """
    try:
        return importlib.import_module("segment_anything.modeling")
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            if exc.name == "segment_anything":
                raise BackendUnavailableError("LISAt needs segment-anything: pip install -e '.[lisat]'") from exc
            raise
    spec = importlib.util.find_spec("segment_anything")
    for name in [n for n in sys.modules if n == "segment_anything" or n.startswith("segment_anything.")]:
        del sys.modules[name]  # the half-imported package from the failed attempt
    package = types.ModuleType("segment_anything")
    package.__path__ = list(spec.submodule_search_locations)  # type: ignore[union-attr]
    package.__file__ = spec.origin  # type: ignore[union-attr]
    package.__spec__ = spec  # so that later find_spec("segment_anything") calls still answer
    sys.modules["segment_anything"] = package
    return importlib.import_module("segment_anything.modeling")


class _VisionModelHolder(nn.Module):
    """transformers 5 flattened CLIPVisionModel (no ``.vision_model``): this keeps 4.x's key names."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.vision_model = clip


class ClipVisionTower(nn.Module):
    """LLaVA's CLIPVisionTower: (B, 3, H, W) CLIP-normalised -> (B, N, C) patch features of one layer."""

    def __init__(self, config: LisatConfig) -> None:
        super().__init__()
        transformers = _need("transformers")
        v = config.vision
        clip = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
            image_size=v.image_size, patch_size=v.patch_size, hidden_size=v.hidden_size, num_hidden_layers=v.layers,
            num_attention_heads=v.heads, intermediate_size=v.mlp_dim, hidden_act=v.hidden_act,
            layer_norm_eps=v.layer_norm_eps, num_channels=3))
        self.vision_tower = clip if hasattr(clip, "vision_model") else _VisionModelHolder(clip)
        self.select_layer = v.select_layer

    def _clip(self) -> nn.Module:
        tower = self.vision_tower
        return tower.vision_model if isinstance(tower, _VisionModelHolder) else tower

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self._clip()(pixel_values=images, output_hidden_states=True)
        return out.hidden_states[self.select_layer][:, 1:]  # drop CLS: LLaVA's select_feature "patch"


def build_projector(config: LisatConfig) -> nn.Module:
    """LLaVA's mm_projector: ``linear`` (keys mm_projector.weight/bias) or ``mlp2x_gelu`` (.0 and .2)."""
    c_in, c_out = config.vision.hidden_size, config.llm.hidden_size
    if config.projector.kind == "linear":
        return nn.Linear(c_in, c_out)
    return nn.Sequential(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))


def build_text_hidden_fcs(config: LisatConfig) -> nn.ModuleList:
    """LISA's projection of the <SEG> hidden state into SAM's prompt space (keys text_hidden_fcs.0.{0,2})."""
    d, p = config.llm.hidden_size, config.sam.prompt_embed_dim
    return nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, p), nn.Dropout(0.0))])


def build_sam(config: LisatConfig) -> nn.Module:
    """segment_anything's Sam at ``config.sam``'s sizes, built as its ``_build_sam`` builds ViT-H."""
    from functools import partial

    m, s = sam_modeling(), config.sam
    grid = s.embedding_size
    return m.Sam(
        image_encoder=m.ImageEncoderViT(
            depth=s.encoder_depth, embed_dim=s.encoder_embed_dim, img_size=s.image_size, mlp_ratio=s.mlp_ratio,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), num_heads=s.encoder_heads, patch_size=s.patch_size,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=tuple(s.global_attn_indexes),
            window_size=s.window_size, out_chans=s.prompt_embed_dim),
        prompt_encoder=m.PromptEncoder(
            embed_dim=s.prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(s.image_size, s.image_size), mask_in_chans=s.mask_in_chans),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=s.multimask_outputs,
            transformer=m.TwoWayTransformer(depth=s.decoder_depth, embedding_dim=s.prompt_embed_dim,
                                            mlp_dim=s.decoder_mlp_dim, num_heads=s.decoder_heads),
            transformer_dim=s.prompt_embed_dim, iou_head_depth=s.iou_head_depth,
            iou_head_hidden_dim=s.iou_head_hidden_dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )


def _llama_config(config: LisatConfig) -> Any:
    transformers = _need("transformers")
    c = config.llm
    return transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.layers, num_attention_heads=c.heads, num_key_value_heads=c.kv_heads,
        max_position_embeddings=c.max_positions, rms_norm_eps=c.rms_norm_eps, rope_theta=c.rope_theta,
        pad_token_id=config.pad_token_id, tie_word_embeddings=False, use_cache=True)


def _to_hf_cache(past: KVCache | None) -> Any:
    cache_cls = _need("transformers").DynamicCache
    if past is None:
        return cache_cls()
    if hasattr(cache_cls, "from_legacy_cache"):  # transformers 4.x
        return cache_cls.from_legacy_cache(tuple(past))
    return cache_cls(ddp_cache_data=tuple(past))


def _from_hf_cache(cache: Any) -> KVCache:
    if hasattr(cache, "layers"):
        return tuple((layer.keys, layer.values) for layer in cache.layers)
    return tuple((k, v) for k, v in cache.to_legacy_cache())


@dataclass
class LisatOutput:
    """``logits`` (B, L', V) and ``hidden_states`` (B, L', d) over the spliced sequence (L' = L + N - 1);
    one mask per <SEG>: ``mask_logits`` (S, 1, H, W), ``seg_batch_index`` (S,) its row in the batch."""

    logits: torch.Tensor
    hidden_states: torch.Tensor
    seg_batch_index: torch.Tensor
    mask_logits: torch.Tensor


class LisatModel(nn.Module):
    """LISA / LISAt at ``config``'s sizes; ``state_dict()`` names are those of LISA's checkpoints."""

    def __init__(self, config: LisatConfig) -> None:
        super().__init__()
        self.config = config
        model = _need("transformers").LlamaModel(_llama_config(config))
        # LisaModel is a LlamaModel with LLaVA's and LISA's modules beside the decoder: attach them
        # to the same object so the names come out as model.vision_tower..., model.visual_model...
        model.vision_tower = ClipVisionTower(config)
        model.mm_projector = build_projector(config)
        model.visual_model = build_sam(config)
        model.text_hidden_fcs = build_text_hidden_fcs(config)
        self.model = model
        self.lm_head = nn.Linear(config.llm.hidden_size, config.llm.vocab_size, bias=False)

    # -- the exportable pieces -------------------------------------------------------------------
    def encode_image_clip(self, images_clip: torch.Tensor) -> torch.Tensor:
        """(B, 3, Hc, Wc) CLIP-normalised -> (B, N, d) image tokens (vision tower + mm_projector)."""
        _check_images(images_clip, self.config.vision.image_size, "images_clip")
        return self.model.mm_projector(self.model.vision_tower(images_clip))

    def encode_image_sam(self, images_sam: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) SAM-normalised, resized and zero-padded -> (B, P, S/16, S/16) image embeddings."""
        _check_images(images_sam, self.config.sam.image_size, "images_sam")
        return self.model.visual_model.image_encoder(images_sam)

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, L, d) embeddings; ids outside the vocabulary (LLaVA's -200) embed as padding."""
        inside = (input_ids >= 0) & (input_ids < self.config.llm.vocab_size)
        return self.model.embed_tokens(torch.where(inside, input_ids, self.config.pad_token_id))

    def forward_llm(self, input_embeds: torch.Tensor, attention_mask: torch.Tensor,
                    past_key_values: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor, KVCache]:
        """(B, L, d) embeddings + (B, past + L) 0/1 mask -> (B, L, V) logits, (B, L, d) final-norm
        hidden states, and the KV cache extended by L (per layer (B, kv_heads, past + L, head_dim)).

        Position ids follow the mask (count of real tokens so far), so left-padded rows get the same
        positions as unpadded ones.
        """
        length = input_embeds.shape[1]
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
        out = self.model(inputs_embeds=input_embeds, attention_mask=attention_mask, position_ids=positions,
                         past_key_values=_to_hf_cache(past_key_values), use_cache=True)
        hidden = out.last_hidden_state  # after the final RMSNorm, as LISA's output.hidden_states[-1]
        return self.lm_head(hidden), hidden, _from_hf_cache(out.past_key_values)

    def seg_embedding(self, hidden_at_seg: torch.Tensor) -> torch.Tensor:
        """(B, d) or (B, 1, d) hidden state that emitted <SEG> -> (B, 1, P) sparse prompt for SAM."""
        if hidden_at_seg.dim() == 2:
            hidden_at_seg = hidden_at_seg[:, None]
        return self.model.text_hidden_fcs[0](hidden_at_seg)

    def decode_mask(self, image_embeddings: torch.Tensor, seg_embeddings: torch.Tensor,
                    original_size: tuple[int, int]) -> torch.Tensor:
        """(B, P, h, w) + (B, 1, P), paired row by row -> (B, 1, H, W) mask logits at ``original_size``.

        As LISA: the seg embedding is the only sparse prompt, no mask prompt (SAM's no_mask_embed),
        multimask_output=False; low-res masks are upscaled, cropped to the resized image, resized to
        ``original_size`` (SAM's postprocess_masks).
        """
        sam = self.model.visual_model
        if image_embeddings.shape[0] != seg_embeddings.shape[0]:
            raise InvalidInputError(f"{image_embeddings.shape[0]} image embeddings for {seg_embeddings.shape[0]} "
                                    f"seg embeddings: decode_mask pairs them row by row")
        _, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
        low_res = _predict_masks_paired(sam.mask_decoder, image_embeddings, sam.prompt_encoder.get_dense_pe(),
                                        seg_embeddings.to(image_embeddings.dtype), dense, masks=1)
        size = self.config.sam.image_size
        masks = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
        h, w = sam_resize_hw(tuple(original_size), size)
        if (h, w) == tuple(original_size) == (size, size):
            return masks  # the crop and the resize back would be identities (and still cost a graph node each)
        return F.interpolate(masks[..., :h, :w], tuple(original_size), mode="bilinear", align_corners=False)

    # -- composition -----------------------------------------------------------------------------
    def splice_image_tokens(self, input_ids: torch.Tensor, image_tokens: torch.Tensor,
                            attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids with one ``image_token_id`` per row + (B, N, d) -> (B, L + N - 1, d) embeddings
        and mask, the image tokens in place of the placeholder (LLaVA's prepare_inputs_labels_for_multimodal)."""
        text = self.embed_tokens(input_ids)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        embeds = splice_rows(text, input_ids, self.config.image_token_id, image_tokens)
        return embeds, splice_like(mask, input_ids, self.config.image_token_id, image_tokens.shape[1], fill=1)

    def forward(self, images_clip: torch.Tensor, images_sam: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None,
                original_size: tuple[int, int] | None = None) -> LisatOutput:
        """Training pass: text logits over the spliced sequence and one mask per <SEG> in ``input_ids``.

        ``original_size`` (H, W) of every image in the batch (default: SAM's input size, no padding).
        """
        image_tokens = self.encode_image_clip(images_clip)
        embeds, mask = self.splice_image_tokens(input_ids, image_tokens, attention_mask)
        logits, hidden, _ = self.forward_llm(embeds, mask)
        ids = splice_like(input_ids, input_ids, self.config.image_token_id, image_tokens.shape[1],
                          fill=self.config.image_token_id)
        emits_seg = ids[:, 1:] == self.config.seg_token_id  # position t emits <SEG> at t + 1
        rows, cols = emits_seg.nonzero(as_tuple=True)
        size = original_size or (self.config.sam.image_size,) * 2
        if rows.numel() == 0:
            empty = hidden.new_zeros((0, 1, *size))
            return LisatOutput(logits, hidden, rows, empty)
        image_embeddings = self.encode_image_sam(images_sam)
        seg = self.seg_embedding(hidden[rows, cols])
        masks = self.decode_mask(image_embeddings[rows], seg, size)
        return LisatOutput(logits, hidden, rows, masks)


def _check_images(images: torch.Tensor, side: int, name: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (side, side):
        raise InvalidInputError(f"{name} must be (B, 3, {side}, {side}), got {tuple(images.shape)}")


def _placeholder_columns(input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
    """(B, 1) column of the one image placeholder in each row; refuses rows with none or several."""
    counts = (input_ids == image_token_id).sum(-1)
    if bool((counts != 1).any()):
        raise InvalidInputError(f"every row of input_ids needs exactly one image placeholder (id {image_token_id}), "
                                f"found {counts.tolist()}")
    return (input_ids == image_token_id).long().argmax(-1, keepdim=True)


def _splice_index(input_ids: torch.Tensor, image_token_id: int, n_image: int) -> tuple[torch.Tensor, ...]:
    """For each spliced position: (is image, source column in the text, source row in the image tokens)."""
    b, length = input_ids.shape
    p = _placeholder_columns(input_ids, image_token_id)
    j = torch.arange(length + n_image - 1, device=input_ids.device).expand(b, -1)
    is_image = (j >= p) & (j < p + n_image)
    text_col = torch.where(j < p, j, j - n_image + 1).clamp(0, length - 1)
    image_row = (j - p).clamp(0, n_image - 1)
    return is_image, text_col, image_row


def splice_rows(text: torch.Tensor, input_ids: torch.Tensor, image_token_id: int,
                image_tokens: torch.Tensor) -> torch.Tensor:
    """(B, L, d) text embeddings + (B, N, d) image tokens -> (B, L + N - 1, d), gathers only (exportable)."""
    is_image, text_col, image_row = _splice_index(input_ids, image_token_id, image_tokens.shape[1])
    d = text.shape[-1]
    from_text = text.gather(1, text_col[..., None].expand(-1, -1, d))
    from_image = image_tokens.to(text.dtype).gather(1, image_row[..., None].expand(-1, -1, d))
    return torch.where(is_image[..., None], from_image, from_text)


def splice_like(values: torch.Tensor, input_ids: torch.Tensor, image_token_id: int, n_image: int,
                fill: int) -> torch.Tensor:
    """(B, L) per-token values (mask, labels, ids) -> (B, L + N - 1), ``fill`` at the image tokens."""
    is_image, text_col, _ = _splice_index(input_ids, image_token_id, n_image)
    return torch.where(is_image, torch.full_like(text_col, fill).to(values.dtype), values.gather(1, text_col))


def splice_labels(labels: torch.Tensor, input_ids: torch.Tensor, config: LisatConfig) -> torch.Tensor:
    """(B, L) labels -> (B, L + N - 1) with IGNORE_INDEX over the image tokens (LLaVA's labels)."""
    return splice_like(labels, input_ids, config.image_token_id, config.vision.tokens, fill=IGNORE_INDEX)


def _predict_masks_paired(decoder: nn.Module, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                          sparse: torch.Tensor, dense: torch.Tensor, masks: int | None = None) -> torch.Tensor:
    """SAM's MaskDecoder.predict_masks for B (image, prompt) pairs -> (B, masks, 4h, 4w) low-res logits.

    SAM's own repeats one image for many prompts (``repeat_interleave``); LISA loops over images for
    that reason. Pairing rows keeps a batch in one graph; the weights and arithmetic are SAM's.
    ``masks``: only the first ``masks`` hypernetworks run (LISA keeps mask 0, multimask_output=False;
    the others' MLPs would be dead weight in an exported graph), all of them when None.
    """
    b = sparse.shape[0]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens[None].expand(b, -1, -1), sparse), dim=1)
    src = image_embeddings + dense
    pos_src = image_pe.expand(b, -1, -1, -1)
    _, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos_src, tokens)
    mask_tokens_out = hs[:, 1: 1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    mlps = list(decoder.output_hypernetworks_mlps)[:masks]
    hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(mlps)], dim=1)
    _, c, h, w = upscaled.shape
    return (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)


@torch.no_grad()
def greedy_decode(model: LisatModel, images_clip: torch.Tensor, input_ids: torch.Tensor, max_new_tokens: int,
                  stop_id: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy generation with the KV cache, B = 1 or unpadded rows of equal length.

    Returns (B, T) new token ids and (B, T, d) the hidden state that emitted each of them: where a
    new id is <SEG>, ``model.seg_embedding`` of that hidden state is its mask prompt.
    """
    embeds, mask = model.splice_image_tokens(input_ids, model.encode_image_clip(images_clip))
    logits, hidden, past = model.forward_llm(embeds, mask)
    new_ids, emitted = [], []
    for _ in range(max_new_tokens):
        token = logits[:, -1].argmax(-1)
        new_ids.append(token)
        emitted.append(hidden[:, -1])
        if stop_id is not None and bool((token == stop_id).all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        logits, hidden, past = model.forward_llm(model.embed_tokens(token[:, None]), mask, past)
    return torch.stack(new_ids, 1), torch.stack(emitted, 1)


def lisat_loss(output: LisatOutput, labels: torch.Tensor, gt_masks: torch.Tensor, ce_weight: float = 1.0,
               bce_weight: float = 2.0, dice_weight: float = 0.5, pos_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """LISAt's objective (eq. 6.1-6.3, weights of section 6.5): next-token CE over the spliced
    ``labels`` (B, L') + per-pixel BCE and DICE of each <SEG>'s mask vs ``gt_masks`` (S, H, W) in [0, 1]
    (soft targets allowed); ``pos_weight`` > 1 weights the BCE of target pixels up (1: LISA's BCE)."""
    ce = F.cross_entropy(output.logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                         ignore_index=IGNORE_INDEX)
    if output.mask_logits.shape[0] != gt_masks.shape[0]:
        raise InvalidInputError(f"{output.mask_logits.shape[0]} predicted masks for {gt_masks.shape[0]} targets")
    total = ce_weight * ce
    parts = {"ce_loss": ce}
    if gt_masks.shape[0]:
        pred = output.mask_logits[:, 0].flatten(1).float()
        target = gt_masks.flatten(1).float()
        weight = None if pos_weight == 1.0 else pred.new_tensor(pos_weight)
        bce = F.binary_cross_entropy_with_logits(pred, target, reduction="none", pos_weight=weight).mean(1).mean()
        prob = pred.sigmoid()
        dice = (1 - (2 * (prob * target).sum(1) + 1e-6) / (prob.sum(1) + target.sum(1) + 1e-6)).mean()
        total = total + bce_weight * bce + dice_weight * dice
        parts.update(mask_bce_loss=bce, mask_dice_loss=dice)
    return {"loss": total, **parts}


def example_inputs(config: LisatConfig, batch: int = 1, seed: int = 0, text_length: int = 16) -> dict[str, torch.Tensor]:
    """Deterministic feeds for parity checks: images_clip (B, 3, Hc, Wc) and images_sam (B, 3, S, S)
    standard-normal (already normalised), input_ids (B, text_length) with the image placeholder in
    column 1 and <SEG> in the last column."""
    if text_length < 3:
        raise InvalidInputError(f"text_length {text_length} leaves no room for <s>, <image> and <SEG>")
    g = torch.Generator().manual_seed(seed)
    v, s = config.vision.image_size, config.sam.image_size
    reserved = {config.image_token_id, config.seg_token_id, config.pad_token_id}
    ordinary = torch.tensor([i for i in range(min(config.llm.vocab_size, 4096)) if i not in reserved])
    ids = ordinary[torch.randint(len(ordinary), (batch, text_length), generator=g)]
    ids[:, 1], ids[:, -1] = config.image_token_id, config.seg_token_id
    return {"images_clip": torch.randn(batch, 3, v, v, generator=g),
            "images_sam": torch.randn(batch, 3, s, s, generator=g), "input_ids": ids}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
