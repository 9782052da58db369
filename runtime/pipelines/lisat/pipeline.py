"""Image + free-text query -> text answer + mask, over a LISAt export (FP32 or compressed).

The order LISA runs in, split at the graph boundaries: vision tower -> image tokens spliced into the
prompt -> prefill -> greedy decode with the KV cache until <SEG> or EOS -> the hidden state that
emitted <SEG> -> seg projector -> mask decoder over the mask encoder's image embedding. A drone asks
several questions about one frame, so both encoders run once per image and their outputs are kept
(a small cache keyed by the pixels' hash); only the language model and the mask decoder run per
query. Tokens stream to ``on_text`` as they are chosen.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgeperc.runtime.pipelines.lisat.decode import (
    TokenEmbeddings,
    finite_logits,
    greedy_decode_graphs,
)
from edgeperc.runtime.pipelines.lisat.graphs import open_lisat_graphs
from edgeperc.runtime.pipelines.lisat.masks import crop_and_resize_mask

from edgeperc.errors import ConfigError, InvalidInputError, ModelFileError
from edgeperc.models.lisat_preprocess import preprocess_clip, preprocess_sam
from edgeperc.models.lisat_tokenizer import load_tokenizer, seg_prompt, split_words

log = logging.getLogger(__name__)

MAX_QUERY_WORDS = 64  # templated reasoning queries are < 20 words; a paragraph is a mistake, not a query
GRAPH_ORDER = ("vision", "mask_encoder", "prefill", "decode", "seg_projector", "mask_decoder")


@dataclass(frozen=True)
class ImageFeatures:
    """Both encoders' outputs for one image, reused by every query on it."""

    key: str
    image_hw: tuple[int, int]
    image_tokens: np.ndarray  # (1, N, d) vision tower + projector
    image_embeddings: np.ndarray  # (1, C, h, w) mask encoder
    vision_ms: float
    mask_encoder_ms: float
    preprocess_ms: float  # resize + normalise for both encoders (numpy / OpenCV, not a graph)


@dataclass
class LisatAnswer:
    """One query's result. ``mask`` (H, W) bool over the input image, None when the model did not
    emit <SEG> (``stop`` says why: "eos" or "budget"); ``timings_ms`` per graph for this query
    (encoders 0 when their features came from the cache)."""

    query: str
    text: str
    tokens: list[int]
    mask: np.ndarray | None
    stop: str  # "seg", "eos" or "budget"
    timings_ms: dict[str, float]
    decode_tokens: int
    features_cached: bool
    unknown_words: list[str] = field(default_factory=list)

    @property
    def has_mask(self) -> bool:
        return self.mask is not None

    @property
    def decode_tokens_per_s(self) -> float | None:
        ms = self.timings_ms.get("decode", 0.0)
        return self.decode_tokens / (ms / 1e3) if self.decode_tokens and ms > 0 else None

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the answer, whether there is a mask and its area, the per-graph latency."""
        return {
            "query": self.query, "answer": self.text, "has_mask": self.has_mask, "stop": self.stop,
            "mask_area_px": int(self.mask.sum()) if self.mask is not None else 0,
            "latency_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "decode_tokens": self.decode_tokens,
            "decode_tokens_per_s": None if self.decode_tokens_per_s is None else round(self.decode_tokens_per_s, 1),
            "features_cached": self.features_cached, "unknown_words": self.unknown_words,
        }


def check_image(image: object) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or (H, W) uint8 grey (made RGB); anything else is InvalidInputError."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidInputError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if min(image.shape[:2]) < 16:
        raise InvalidInputError(f"image is too small to segment: {image.shape[0]}x{image.shape[1]} px (need >= 16 per side)")
    return np.ascontiguousarray(image)


class LisatPipeline:
    """A LISAt export folder opened for queries. ``threads``: ONNX Runtime intra-op threads per
    graph (0 = its default); ``max_new_tokens``: the answer's budget; ``cache_images``: how many
    images' features to keep."""

    def __init__(self, folder: str | Path, threads: int = 0, max_new_tokens: int = 24, cache_images: int = 4,
                 native_size_warning: bool = True) -> None:
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.folder = Path(folder)
        self.manifest, self.runners = open_lisat_graphs(self.folder, intra_op_threads=threads)
        if self.manifest.tokenizer is None:
            raise ModelFileError(f"{self.folder}: the LISAt export has no tokenizer file; re-export with one")
        self.tokenizer = load_tokenizer(self.folder / self.manifest.tokenizer.file)
        self.max_new_tokens = max_new_tokens
        self.max_positions = int(self.manifest.config.get("llm", {}).get("max_positions", 2048))
        self.cache_images = max(0, cache_images)
        self.native_size_warning = native_size_warning
        self._features: OrderedDict[str, ImageFeatures] = OrderedDict()
        self._token_embeddings = TokenEmbeddings()

    @property
    def precision(self) -> dict[str, str]:
        """Graph -> precision, as the manifest records it (FP32 when it does not say)."""
        out = {}
        for name, graph in self.manifest.graphs.items():
            out[name] = str(getattr(graph, "precision", None) or "fp32")
        return out

    # --- per image ---------------------------------------------------------------------------

    def features(self, image: np.ndarray) -> tuple[ImageFeatures, bool]:
        """(both encoders' outputs, came from the cache)."""
        image = check_image(image)
        key = hashlib.sha256(image.tobytes()).hexdigest() + f"{image.shape}"
        cached = self._features.get(key)
        if cached is not None:
            self._features.move_to_end(key)
            return cached, True
        clip_side = int(self.manifest.clip.size[0])
        sam_side = int(self.manifest.sam.size[0])
        if self.native_size_warning and tuple(image.shape[:2]) != (sam_side, sam_side):
            log.warning("LISAt: image is %dx%d, the mask encoder takes %dx%d: resized (longest side) and padded; "
                        "the mask comes back at the image's own size", image.shape[0], image.shape[1], sam_side, sam_side)
        begin = time.perf_counter()
        clip_input, sam_input = preprocess_clip(image, clip_side)[None], preprocess_sam(image, sam_side)[None]
        preprocess_ms = (time.perf_counter() - begin) * 1e3
        begin = time.perf_counter()
        # preprocess_* of a checked image: the graphs' feeds by construction, not scanned again
        tokens = self.runners["vision"].infer({"images_clip": clip_input}, check=False)["image_tokens"]
        vision_ms = (time.perf_counter() - begin) * 1e3
        begin = time.perf_counter()
        embeddings = self.runners["mask_encoder"].infer({"images_sam": sam_input}, check=False)
        mask_encoder_ms = (time.perf_counter() - begin) * 1e3
        features = ImageFeatures(key, (int(image.shape[0]), int(image.shape[1])), tokens,
                                 embeddings["image_embeddings"], vision_ms, mask_encoder_ms, preprocess_ms)
        if self.cache_images:
            self._features[key] = features
            while len(self._features) > self.cache_images:
                self._features.popitem(last=False)
        return features, False

    # --- per query ---------------------------------------------------------------------------

    def prompt_ids(self, query: object) -> tuple[np.ndarray, list[str]]:
        """(1, L) int64 prompt ids for ``query`` and the words the vocabulary does not know.
        An empty query, one over MAX_QUERY_WORDS words, or one whose prompt + image tokens + answer
        budget does not fit the model's positions is ConfigError naming the limit."""
        if not isinstance(query, str):
            raise ConfigError(f"the query must be text, got {type(query).__name__}")
        words = split_words(query)
        if not words:
            raise ConfigError("the query is empty: ask for an object, e.g. \"the red vehicle left of the largest building\"")
        if len(words) > MAX_QUERY_WORDS:
            raise ConfigError(f"the query is too long: {len(words)} words (at most {MAX_QUERY_WORDS})")
        ids = self.tokenizer.encode(seg_prompt(query), add_bos=True)
        total = len(ids) - 1 + self.manifest.tokens.n_image_tokens + self.max_new_tokens
        if total > self.max_positions:
            raise ConfigError(f"the query is too long for the model: prompt + {self.manifest.tokens.n_image_tokens} image "
                              f"tokens + {self.max_new_tokens} answer tokens = {total} positions, the model has "
                              f"{self.max_positions}")
        unk = getattr(self.tokenizer, "unk_id", None)
        unknown = [w for w in words if unk is not None and self.tokenizer.encode(w, add_bos=False) == [unk]]
        return np.array([ids], np.int64), unknown

    def answer(self, image: np.ndarray, query: str, on_text: Callable[[str], None] | None = None) -> LisatAnswer:
        """Answer ``query`` about ``image``; ``on_text(piece)`` receives the answer as it is decoded."""
        ids, unknown = self.prompt_ids(query)
        if unknown:
            log.warning("LISAt: words the model does not know (read as <unk>): %s", ", ".join(unknown))
        features, cached = self.features(image)
        t = self.manifest.tokens
        streamed: list[int] = []

        def stream(token: int) -> None:
            if on_text is None:
                return
            streamed.append(token)
            piece = self.tokenizer.decode([token], skip_special=False)
            on_text(piece if len(streamed) == 1 or piece in {",", ".", ":", "?"} else " " + piece)

        timing: dict[str, float] = {}
        result = greedy_decode_graphs(self.runners, self.manifest, ids, features.image_tokens, self.max_new_tokens,
                                      on_token=stream, timings=timing, embed_cache=self._token_embeddings)
        tokens = [int(x) for x in result.tokens]
        timings_ms = {"preprocess": 0.0 if cached else features.preprocess_ms,
                      "vision": 0.0 if cached else features.vision_ms,
                      "mask_encoder": 0.0 if cached else features.mask_encoder_ms,
                      "prefill": timing["prefill_s"] * 1e3, "decode": timing["decode_s"] * 1e3,
                      "seg_projector": 0.0, "mask_decoder": 0.0}
        mask = None
        if result.seg_hidden is not None:
            stop = "seg"
            begin = time.perf_counter()
            seg = self.runners["seg_projector"].infer({"hidden": result.seg_hidden}, check=False)["seg_embedding"]
            timings_ms["seg_projector"] = (time.perf_counter() - begin) * 1e3
            begin = time.perf_counter()
            logits = self.runners["mask_decoder"].infer({"image_embeddings": features.image_embeddings,
                                                        "seg_embedding": seg}, check=False)["mask_logits"]
            logits = np.asarray(logits, np.float32).reshape(logits.shape[-2:])
            if logits.shape != features.image_hw:
                logits = crop_and_resize_mask(logits, features.image_hw)
            timings_ms["mask_decoder"] = (time.perf_counter() - begin) * 1e3
            mask = finite_logits(logits, "mask_decoder") > 0
        else:
            stop = "eos" if tokens and tokens[-1] == t.eos_id else "budget"
        timings_ms["total"] = sum(timings_ms.values())
        text = self.tokenizer.decode(tokens, skip_special=False).replace("</s>", "").strip()
        return LisatAnswer(query=" ".join(query.split()), text=text, tokens=tokens, mask=mask, stop=stop,
                           timings_ms=timings_ms, decode_tokens=int(timing["decode_steps"]), features_cached=cached,
                           unknown_words=unknown)
