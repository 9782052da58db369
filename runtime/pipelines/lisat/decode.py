"""Greedy decoding over LISAt's prefill / decode graphs with an explicit KV cache, numpy only.

Backend-agnostic (anything with ``infer(feeds) -> dict``): the export's parity check runs it on
ONNX Runtime, the runtime on whichever backend a target asks for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgeperc.errors import InvalidInputError, ModelFileError
from edgeperc.lisat_manifest import LisatManifest


class Runner(Protocol):
    def infer(self, feeds: Mapping[str, np.ndarray], check: bool = True) -> dict[str, np.ndarray]: ...


def finite_logits(logits: np.ndarray, graph: str) -> np.ndarray:
    """``logits`` if all finite, else ModelFileError: graph hand-offs skip the per-feed NaN scan, so
    a NaN anywhere upstream (it reaches the logits) is caught here, once per token, on V floats."""
    if not np.isfinite(logits).all():
        raise ModelFileError(f"the {graph} graph returned NaN/Inf logits: the model (or its quantization) is broken")
    return logits


@dataclass
class GreedyResult:
    """``tokens`` (T,) int64 new ids, the stop token included; ``emitted`` (T, d) the hidden state
    whose logits chose each; ``seg_hidden`` (1, d) that of the first <SEG>, None without one."""

    tokens: np.ndarray
    emitted: np.ndarray
    seg_hidden: np.ndarray | None


def splice_image_tokens(text_embeds: np.ndarray, input_ids: np.ndarray, image_token_id: int,
                        image_tokens: np.ndarray) -> np.ndarray:
    """(1, L, d) text embeddings + (1, L) ids + (1, N, d) -> (1, L + N - 1, d), the image tokens in
    place of the one placeholder (LisatModel.splice_image_tokens at B = 1)."""
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise InvalidInputError(f"input_ids must be (1, L), got shape {ids.shape}")
    at = np.flatnonzero(ids[0] == image_token_id)
    if len(at) != 1:
        raise InvalidInputError(f"input_ids need exactly one image placeholder (id {image_token_id}), found {len(at)}")
    p = int(at[0])
    image = image_tokens.astype(text_embeds.dtype, copy=False)
    return np.concatenate([text_embeds[:, :p], image, text_embeds[:, p + 1:]], axis=1)


def _kv_feeds(outputs: Mapping[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """present_* of one step -> past_* of the next."""
    return {f"past_{kind}_{i}": outputs[f"present_{kind}_{i}"] for i in range(layers) for kind in ("key", "value")}


class TokenEmbeddings:
    """Embedding rows by token id, filled from the ``embed`` graph on first use, at most ``rows`` kept
    (a row is hidden_size floats: 16 KB at 7B). The embedding is a pure function of the id."""

    def __init__(self, rows: int = 1024) -> None:
        self.rows = rows
        self._rows: dict[int, np.ndarray] = {}

    def get(self, token: int, embed: Runner) -> np.ndarray:
        """(1, 1, d) embedding of ``token``."""
        row = self._rows.get(token)
        if row is None:
            row = embed.infer({"input_ids": np.array([[token]], np.int64)}, check=False)["embeddings"]
            if len(self._rows) < self.rows:
                self._rows[token] = row
        return row


def greedy_decode_graphs(runners: Mapping[str, Runner], manifest: LisatManifest, input_ids: np.ndarray,
                         image_tokens: np.ndarray, max_new_tokens: int, stop_at_seg: bool = True,
                         on_token: Callable[[int], None] | None = None,
                         timings: dict[str, float] | None = None,
                         embed_cache: TokenEmbeddings | None = None) -> GreedyResult:
    """(1, L) int64 prompt ids holding one image placeholder + (1, N, d) image tokens (``vision``'s
    output) -> greedy new tokens, stopping after EOS, after the first <SEG> if ``stop_at_seg``, or at
    ``max_new_tokens``. Uses the ``embed``, ``prefill`` and ``decode`` runners. ``on_token(id)`` is
    called as each token is chosen (streaming); ``timings`` gets ``prefill_s`` (embed + prefill),
    ``decode_s`` (embed + decode, all steps) and ``decode_steps``. ``embed_cache`` keeps the
    embedding rows of generated tokens across calls (answers repeat their words: one graph call
    per token saved).

    Same arithmetic as models.lisat.greedy_decode: argmax of the last logits (first index on ties),
    the hidden state returned beside those logits is the one that emitted the token.
    """
    if max_new_tokens < 1:
        raise InvalidInputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    ids = np.asarray(input_ids, np.int64)
    t = manifest.tokens
    image_tokens = np.asarray(image_tokens, np.float32)
    if image_tokens.ndim != 3 or image_tokens.shape[:2] != (1, t.n_image_tokens):
        raise InvalidInputError(f"image_tokens must be (1, {t.n_image_tokens}, d), got shape {image_tokens.shape}")
    begin = time.perf_counter()
    text = runners["embed"].infer({"input_ids": ids})["embeddings"]
    embeds = splice_image_tokens(text, ids, t.image_token_id, image_tokens)
    out = runners["prefill"].infer({"inputs_embeds": embeds})  # checked: image_tokens come from the caller
    graph = "prefill"
    prefill_s, decode_s, steps = time.perf_counter() - begin, 0.0, 0
    tokens: list[int] = []
    emitted: list[np.ndarray] = []
    seg_hidden = None
    rows = embed_cache if embed_cache is not None else TokenEmbeddings(rows=0)  # rows=0: every step runs embed
    for _ in range(max_new_tokens):
        token = int(finite_logits(out["logits"][0], graph).argmax())
        tokens.append(token)
        if on_token is not None:
            on_token(token)
        emitted.append(out["hidden"][0])
        if token == t.seg_token_id and seg_hidden is None:
            seg_hidden = out["hidden"][:1].copy()
            if stop_at_seg:
                break
        if token == t.eos_id or len(tokens) == max_new_tokens:
            break
        begin = time.perf_counter()
        step = rows.get(token, runners["embed"])
        out = runners["decode"].infer({"inputs_embeds": step, **_kv_feeds(out, manifest.kv_cache.layers)}, check=False)
        graph = "decode"
        decode_s, steps = decode_s + time.perf_counter() - begin, steps + 1
    if timings is not None:
        timings.update(prefill_s=prefill_s, decode_s=decode_s, decode_steps=steps)
    return GreedyResult(np.array(tokens, np.int64), np.stack(emitted), seg_hidden)
