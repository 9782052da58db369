"""LISAt's typed config, torch-free so the runtime and the CLI read it without PyTorch.

LISAt (dissertation ch. 6) is LISA (dvlab-research/LISA) retrained on remote-sensing data: a CLIP
ViT vision tower and a projector feed a LLaMA decoder (LLaVA style); the last hidden state that
emits ``<SEG>`` goes through ``text_hidden_fcs`` into the prompt space of SAM's mask decoder.

``LisatConfig.full()`` is the published LISA-7B / LISAt layout (CLIP ViT-L/14 at 224, Vicuna-7B,
SAM ViT-H); ``LisatConfig.tiny()`` trains on two CPU cores. The two images a LISAt model takes have
their own preprocessing, given here as ``clip_normalisation`` / ``sam_normalisation`` and
``sam_resize_hw``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgeperc.errors import ConfigError
from edgeperc.manifest import Normalisation

FAMILY = "lisat"
IGNORE_INDEX = -100  # label of positions the text loss skips (image tokens, prompt), as in LLaVA
LLAVA_IMAGE_TOKEN_INDEX = -200  # LLaVA's <image> placeholder: an id outside the vocabulary


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VisionConfig(_Frozen):
    """CLIP ViT vision tower (transformers' CLIPVisionConfig names in comments)."""

    image_size: int = Field(224, ge=16, le=1024)
    patch_size: int = Field(14, ge=2, le=64)
    hidden_size: int = Field(1024, ge=8, le=8192)  # also LLaVA's mm_hidden_size
    layers: int = Field(24, ge=1, le=96)  # num_hidden_layers
    heads: int = Field(16, ge=1, le=128)  # num_attention_heads
    mlp_dim: int = Field(4096, ge=8, le=65536)  # intermediate_size
    select_layer: int = Field(-2, description="LLaVA's mm_vision_select_layer: index into CLIP's hidden states "
                              "(embeddings, layer 1, ..., layer N); the patch tokens of that state are projected")
    hidden_act: Literal["quick_gelu", "gelu"] = "quick_gelu"  # OpenAI CLIP uses quick_gelu
    layer_norm_eps: float = Field(1e-5, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> VisionConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by heads {self.heads}")
        if not -(self.layers + 1) <= self.select_layer <= self.layers:
            raise ValueError(f"select_layer {self.select_layer} must lie in [{-(self.layers + 1)}, {self.layers}] "
                             f"(CLIP has {self.layers + 1} hidden states)")
        return self

    @property
    def tokens(self) -> int:
        """Image tokens spliced into the LLM sequence: one per patch (CLS dropped, LLaVA's 'patch')."""
        return (self.image_size // self.patch_size) ** 2


class LlmConfig(_Frozen):
    """LLaMA decoder (transformers' LlamaConfig names in comments)."""

    vocab_size: int = Field(32003, ge=8, le=1_000_000)  # after adding LISA's tokens
    hidden_size: int = Field(4096, ge=8, le=16384)
    layers: int = Field(32, ge=1, le=200)  # num_hidden_layers
    heads: int = Field(32, ge=1, le=256)  # num_attention_heads
    kv_heads: int = Field(32, ge=1, le=256)  # num_key_value_heads
    intermediate_size: int = Field(11008, ge=8, le=131072)
    max_positions: int = Field(2048, ge=16, le=1_048_576)  # max_position_embeddings
    rms_norm_eps: float = Field(1e-6, gt=0, lt=1)
    rope_theta: float = Field(10000.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> LlmConfig:
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by heads {self.heads}")
        if (self.hidden_size // self.heads) % 2:
            raise ValueError(f"head dimension {self.hidden_size // self.heads} must be even (rotary embedding)")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads {self.heads} must be a multiple of kv_heads {self.kv_heads}")
        return self


class SamConfig(_Frozen):
    """SAM: ViT image encoder, prompt encoder, two-way-transformer mask decoder (segment_anything's
    build_sam arguments in comments)."""

    image_size: int = Field(1024, ge=64, le=4096)  # img_size
    patch_size: int = Field(16, ge=4, le=64)  # vit_patch_size
    encoder_embed_dim: int = Field(1280, ge=8, le=8192)
    encoder_depth: int = Field(32, ge=1, le=96)
    encoder_heads: int = Field(16, ge=1, le=128)
    global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    window_size: int = Field(14, ge=0, le=256, description="windowed attention in the other blocks; 0: global")
    mlp_ratio: float = Field(4.0, gt=0, le=16)
    prompt_embed_dim: int = Field(256, ge=16, le=4096)  # also the encoder's out_chans and LISA's out_dim
    mask_in_chans: int = Field(16, ge=4, le=1024)
    decoder_depth: int = Field(2, ge=1, le=16)  # TwoWayTransformer depth
    decoder_heads: int = Field(8, ge=1, le=64)
    decoder_mlp_dim: int = Field(2048, ge=8, le=65536)
    iou_head_depth: int = Field(3, ge=1, le=8)
    iou_head_hidden_dim: int = Field(256, ge=8, le=8192)
    multimask_outputs: int = Field(3, ge=1, le=8)

    @model_validator(mode="after")
    def _check(self) -> SamConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch_size {self.patch_size}")
        if self.encoder_embed_dim % self.encoder_heads:
            raise ValueError(f"encoder_embed_dim {self.encoder_embed_dim} must be divisible by encoder_heads "
                             f"{self.encoder_heads}")
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.encoder_depth]
        if bad or len(set(self.global_attn_indexes)) != len(self.global_attn_indexes):
            raise ValueError(f"global_attn_indexes {list(self.global_attn_indexes)} must be distinct block indexes "
                             f"in [0, {self.encoder_depth - 1}]")
        if self.prompt_embed_dim % 8:
            raise ValueError(f"prompt_embed_dim {self.prompt_embed_dim} must be divisible by 8 (mask upscaling)")
        if (self.prompt_embed_dim // 2) % self.decoder_heads:
            raise ValueError(f"prompt_embed_dim / 2 = {self.prompt_embed_dim // 2} must be divisible by decoder_heads "
                             f"{self.decoder_heads} (the decoder's cross-attention halves the width)")
        if self.mask_in_chans % 4:
            raise ValueError(f"mask_in_chans {self.mask_in_chans} must be divisible by 4")
        return self

    @property
    def embedding_size(self) -> int:
        """Side of the (C, h, w) image embedding: image_size / patch_size (64 for SAM at 1024)."""
        return self.image_size // self.patch_size


class ProjectorConfig(_Frozen):
    """CLIP features -> LLM embeddings. LISA-7B and LISAt use LLaVA-1's single Linear; LLaVA-1.5's
    two-layer GELU MLP (``mm_projector_type: mlp2x_gelu``) is accepted for LLaVA-1.5-based checkpoints."""

    kind: Literal["linear", "mlp2x_gelu"] = "linear"


class LisatConfig(_Frozen):
    """The whole LISAt layout. ``seg_token_id`` is the vocabulary id of ``<SEG>`` (LISA's literal
    is ``[SEG]``); ``image_token_id`` is the placeholder replaced by the image tokens, LLaVA's -200
    (outside the vocabulary) for LISA checkpoints, an ordinary id for the word tokenizer."""

    vision: VisionConfig = VisionConfig()
    llm: LlmConfig = LlmConfig()
    sam: SamConfig = SamConfig()
    projector: ProjectorConfig = ProjectorConfig()
    seg_token_id: int = Field(32000, ge=0)
    image_token_id: int = LLAVA_IMAGE_TOKEN_INDEX
    pad_token_id: int = Field(0, ge=0, description="LISA pads with <unk> (id 0 in LLaMA's vocabulary)")

    @model_validator(mode="after")
    def _check(self) -> LisatConfig:
        vocab = self.llm.vocab_size
        for name in ("seg_token_id", "pad_token_id"):
            if getattr(self, name) >= vocab:
                raise ValueError(f"{name} {getattr(self, name)} must be below llm.vocab_size {vocab}")
        if self.image_token_id >= vocab:
            raise ValueError(f"image_token_id {self.image_token_id} must be below llm.vocab_size {vocab} "
                             f"(or negative: a placeholder outside the vocabulary, as LLaVA's -200)")
        if self.image_token_id == self.seg_token_id:
            raise ValueError("image_token_id and seg_token_id must differ")
        if self.vision.tokens >= self.llm.max_positions:
            raise ValueError(f"{self.vision.tokens} image tokens do not fit in llm.max_positions {self.llm.max_positions}")
        return self

    @classmethod
    def full(cls) -> LisatConfig:
        """LISA-7B-v1 / LISAt: CLIP ViT-L/14 at 224 (select layer -2, 256 tokens), Vicuna-7B (vocab
        32000 + [SEG] 32000 + <im_start> 32001 + <im_end> 32002), SAM ViT-H at 1024."""
        return cls()

    @classmethod
    def tiny(cls) -> LisatConfig:
        """About 2 M parameters: trains on two CPU cores; ids match ``lisat_tokenizer``'s specials."""
        return cls(
            vision=VisionConfig(image_size=128, patch_size=16, hidden_size=128, layers=2, heads=4, mlp_dim=512),
            llm=LlmConfig(vocab_size=512, hidden_size=128, layers=2, heads=4, kv_heads=2, intermediate_size=344,
                          max_positions=256),
            sam=SamConfig(image_size=256, patch_size=16, encoder_embed_dim=96, encoder_depth=2, encoder_heads=4,
                          global_attn_indexes=(1,), window_size=8, prompt_embed_dim=64, decoder_heads=4,
                          decoder_mlp_dim=256, iou_head_hidden_dim=64),
            seg_token_id=5, image_token_id=4, pad_token_id=0,
        )


PRESETS = {"full": LisatConfig.full, "tiny": LisatConfig.tiny}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_lisat_config(overrides: dict[str, Any] | None = None, preset: str = "tiny") -> LisatConfig:
    """A preset with nested ``overrides`` ({"sam": {"window_size": 0}}); errors name the field."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown LISAt preset '{preset}'; choose one of {', '.join(PRESETS)}")
    values = _merge(PRESETS[preset]().model_dump(), overrides or {})
    try:
        return LisatConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'lisat'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise ConfigError(f"invalid lisat config: {problems}") from exc


def clip_normalisation() -> Normalisation:
    """OpenAI CLIP's statistics (CLIPImageProcessor; LISA resizes the short side to 224 and centre-crops)."""
    return Normalisation(scale=1 / 255, mean=[0.48145466, 0.4578275, 0.40821073],
                         std=[0.26862954, 0.26130258, 0.27577711], color="rgb")


def sam_normalisation() -> Normalisation:
    """SAM's pixel_mean / pixel_std (123.675, 116.28, 103.53) / (58.395, 57.12, 57.375) on 0..255."""
    return Normalisation(scale=1 / 255, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], color="rgb")


def sam_resize_hw(original_hw: tuple[int, int], image_size: int) -> tuple[int, int]:
    """(H, W) after SAM's ResizeLongestSide: longest side -> image_size, rounded as SAM rounds.

    The resized image is normalised and zero-padded bottom/right to image_size x image_size; the
    mask is cropped back to this size before it is resized to ``original_hw``.
    """
    h, w = original_hw
    if h <= 0 or w <= 0:
        raise ConfigError(f"original size {original_hw} must be positive")
    scale = image_size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)
