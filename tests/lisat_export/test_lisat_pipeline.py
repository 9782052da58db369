"""The LISAt runtime pipeline and `edgeperc segment` over a real export of the tiny seeded model:
the answer equals the graph loop's, features are computed once per image, text streams, and bad
input (queries, images, targets, tampered caches) is refused with a clear error or an explicit
no-mask answer. On the fixed random image below the seeded model emits <SEG> for two of the three
queries and exhausts its budget on the first: both paths run."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeperc.errors import ConfigError, InvalidInputError, ModelFileError

from .conftest import MAX_NEW_TOKENS

from tests.lisat_model.conftest import QUERIES


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def pipeline(lisat_export_dir):
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline

    return LisatPipeline(lisat_export_dir, threads=1, max_new_tokens=MAX_NEW_TOKENS)


def test_answers_equal_the_graph_loop_and_masks_come_at_the_image_size(pipeline, image):
    from edgeperc.models.lisat_preprocess import preprocess_clip, preprocess_sam
    from edgeperc.runtime.pipelines.lisat.decode import greedy_decode_graphs
    from edgeperc.runtime.pipelines.lisat.masks import crop_and_resize_mask

    m, r = pipeline.manifest, pipeline.runners
    stops = []
    for query in QUERIES:
        answer = pipeline.answer(image, query)
        ids, _ = pipeline.prompt_ids(query)
        tokens = r["vision"].infer({"images_clip": preprocess_clip(image, m.clip.size[0])[None]})["image_tokens"]
        direct = greedy_decode_graphs(r, m, ids, tokens, MAX_NEW_TOKENS)
        assert answer.tokens == direct.tokens.tolist()
        stops.append(answer.stop)
        if direct.seg_hidden is None:
            assert answer.mask is None and answer.stop in ("eos", "budget") and not answer.has_mask
            continue
        emb = r["mask_encoder"].infer({"images_sam": preprocess_sam(image, m.sam.size[0])[None]})["image_embeddings"]
        seg = r["seg_projector"].infer({"hidden": direct.seg_hidden})["seg_embedding"]
        logits = r["mask_decoder"].infer({"image_embeddings": emb, "seg_embedding": seg})["mask_logits"]
        expected = crop_and_resize_mask(logits.reshape(logits.shape[-2:]), image.shape[:2]) > 0
        assert answer.stop == "seg" and answer.mask.shape == image.shape[:2] and answer.mask.dtype == bool
        np.testing.assert_array_equal(answer.mask, expected)
    assert "seg" in stops and {"eos", "budget"} & set(stops), stops  # both paths were exercised


def test_features_are_computed_once_per_image(pipeline, image):
    first = pipeline.answer(image.copy() ^ 1, QUERIES[1])  # an image not seen before
    again = pipeline.answer(image.copy() ^ 1, QUERIES[2])
    assert not first.features_cached and first.timings_ms["vision"] > 0 and first.timings_ms["mask_encoder"] > 0
    assert again.features_cached and again.timings_ms["vision"] == 0 and again.timings_ms["mask_encoder"] == 0
    assert again.timings_ms["prefill"] > 0 and again.decode_tokens == len(again.tokens) - 1
    summary = again.summary()
    assert set(summary["latency_ms"]) >= {"vision", "mask_encoder", "prefill", "decode", "seg_projector", "mask_decoder", "total"}
    json.dumps(summary)


def test_text_streams_token_by_token(pipeline, image):
    pieces: list[str] = []
    answer = pipeline.answer(image, QUERIES[2], on_text=pieces.append)
    assert len(pieces) == len(answer.tokens)
    assert "".join(pieces).replace("</s>", "").strip() == answer.text


@pytest.mark.parametrize("query, match", [("", "empty"), ("   \n ", "empty"), ("tank " * 65, "too long"), (7, "text")])
def test_bad_queries_are_refused_by_name(pipeline, image, query, match):
    with pytest.raises(ConfigError, match=match):
        pipeline.answer(image, query)


def test_a_query_that_does_not_fit_the_models_positions_is_refused(lisat_export_dir, image):
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline

    greedy = LisatPipeline(lisat_export_dir, threads=1, max_new_tokens=10_000)
    with pytest.raises(ConfigError, match="positions"):
        greedy.answer(image, QUERIES[0])


def test_unknown_words_are_reported(pipeline, image):
    answer = pipeline.answer(image, "the zeppelin left of the hangar")
    assert answer.unknown_words == ["zeppelin"]


@pytest.mark.parametrize("bad, match", [(np.zeros((64, 64, 3), np.float32), "uint8"), (np.zeros((64, 64, 4), np.uint8), "RGB"),
                                        (np.zeros((8, 64, 3), np.uint8), "too small"), ("image.png", "numpy")])
def test_bad_images_are_refused(pipeline, bad, match):
    with pytest.raises(InvalidInputError, match=match):
        pipeline.answer(bad, QUERIES[0])


def test_an_image_of_another_size_is_resized_with_a_warning_and_masked_at_its_size(pipeline, image, caplog):
    wide = cv2.resize(image, (300, 180))
    grey = wide[..., 0]
    with caplog.at_level(logging.WARNING):
        answer = pipeline.answer(grey, QUERIES[2])  # grey is made RGB
    assert "resized" in caplog.text
    assert answer.mask is None or answer.mask.shape == (180, 300)


def test_overlay_tints_only_masked_pixels():
    from edgeperc.runtime.pipelines.lisat.overlay import TINT_RGB, overlay_mask

    img = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    out = overlay_mask(img, mask, alpha=0.5)
    inside = np.round(0.5 * 100 + 0.5 * np.array(TINT_RGB, np.float32)).astype(np.uint8)
    np.testing.assert_array_equal(out[8, 14], inside)  # interior: blended
    np.testing.assert_array_equal(out[5, 10], TINT_RGB)  # outline: full tint
    np.testing.assert_array_equal(out[~mask], img[~mask])  # outside: unchanged
    np.testing.assert_array_equal(overlay_mask(img, None), img)
    with pytest.raises(InvalidInputError, match="does not match"):
        overlay_mask(img, mask[:10])


# --- CLI ---------------------------------------------------------------------------------------


def _cli(*args) -> int:
    from edgeperc.cli import main

    return main([str(a) for a in args])


def test_segment_cli_writes_mask_overlay_and_json_and_survives_a_corrupt_image(lisat_export_dir, image, tmp_path, capsys):
    good = tmp_path / "scene.png"
    cv2.imwrite(str(good), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:200])
    out = tmp_path / "out"
    code = _cli("segment", good, corrupt, "-q", QUERIES[2], "-q", QUERIES[0], "--model", lisat_export_dir,
                "--max-new-tokens", MAX_NEW_TOKENS, "--json", "--out", out)
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    by_image = {Path(r["image"]).name: r for r in records}
    assert "error" in by_image["corrupt.png"]
    answers = by_image["scene.png"]["answers"]
    assert [a["query"] for a in answers] == [QUERIES[2], QUERIES[0]]
    assert answers[1]["features_cached"] and not answers[0]["features_cached"]
    for a in answers:
        mask = cv2.imread(a["mask"], cv2.IMREAD_GRAYSCALE)
        overlay = cv2.imread(a["overlay"])
        assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert (mask.any()) == a["has_mask"] or a["mask_area_px"] == 0
        assert overlay.shape[1] == 2 * image.shape[1]


def test_segment_cli_refuses_a_tensorrt_target_before_loading(lisat_export_dir, image, tmp_path, capsys):
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image)
    code = _cli("segment", path, "-q", QUERIES[0], "--model", lisat_export_dir, "--target", "drone-orin-nx")
    assert code != 0 and "onnxruntime" in capsys.readouterr().err


def test_a_tampered_export_is_refused_before_anything_runs(lisat_export_dir, image, tmp_path, capsys):
    copy = tmp_path / "export"
    shutil.copytree(lisat_export_dir, copy)
    data = bytearray((copy / "decode.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "decode.onnx").write_bytes(bytes(data))
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image)
    code = _cli("segment", path, "-q", QUERIES[0], "--model", copy)
    assert code != 0 and "decode" in capsys.readouterr().err


def test_a_checkpoint_is_exported_once_into_the_cache_and_rebuilt_when_tampered(seg_model, lisat_tokenizer, tmp_path):
    from edgeperc.lisat_exports import resolve_lisat_export
    from edgeperc.models.lisat_training import save_trained_lisat

    ckpt = save_trained_lisat(tmp_path / "ckpt" / "tiny.safetensors", seg_model, lisat_tokenizer, {"family": "lisat"})
    cache = tmp_path / "cache"
    folder = resolve_lisat_export(ckpt, "fp32", progress=False, cache_dir=cache)
    assert (folder / "lisat_manifest.json").is_file() and folder.parent == cache
    stamp = (folder / "prefill.onnx").stat().st_mtime_ns
    assert resolve_lisat_export(ckpt, "fp32", progress=False, cache_dir=cache) == folder
    assert (folder / "prefill.onnx").stat().st_mtime_ns == stamp  # reused, not re-exported
    (folder / "vision.onnx").write_bytes(b"tampered")
    again = resolve_lisat_export(ckpt, "fp32", progress=False, cache_dir=cache)
    from edgeperc.lisat_manifest import verify_lisat_manifest

    verify_lisat_manifest(again)  # rebuilt whole
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no half-written folder left
    with pytest.raises(ModelFileError, match="not found"):
        resolve_lisat_export(tmp_path / "missing.safetensors", "fp32", progress=False, cache_dir=cache)


def test_segment_on_a_checkpoint_exports_and_compresses_through_the_cache(seg_model, lisat_tokenizer, image, tmp_path,
                                                                           capsys, monkeypatch):
    """`edgeperc segment --model CKPT --precision compressed`: FP32 export, then the compressed one
    (no student beside the checkpoint: INT8 SAM encoder), both cached; the answer comes back."""
    from edgeperc.models.lisat_training import save_trained_lisat

    monkeypatch.setenv("EDGEPERC_LISAT_CACHE", str(tmp_path / "cache"))
    ckpt = save_trained_lisat(tmp_path / "ckpt" / "tiny.safetensors", seg_model, lisat_tokenizer, {"family": "lisat"})
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image)
    code = _cli("segment", path, "-q", QUERIES[2], "--model", ckpt, "--precision", "compressed", "--json",
                "--max-new-tokens", MAX_NEW_TOKENS, "--out", tmp_path / "out")
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["precision"]["prefill"] == "int4" and record["precision"]["vision"] == "int8"
    kinds = {p.name.rsplit("-", 1)[-1]: p.name for p in (tmp_path / "cache").iterdir()}
    assert set(kinds) == {"compressed", "fp32"} and "-nostudent-" in kinds["compressed"]


class _CountingEmbed:
    """The real embed runner, with its calls counted."""

    def __init__(self, runner) -> None:
        self.runner, self.calls = runner, 0

    def infer(self, feeds, check=True):
        self.calls += 1
        return self.runner.infer(feeds, check=check)


def test_token_embedding_rows_are_reused_and_equal_the_graphs(graphs, prompts):
    from edgeperc.runtime.pipelines.lisat.decode import TokenEmbeddings, greedy_decode_graphs

    manifest, runners = graphs
    embed = _CountingEmbed(runners["embed"])
    cache = TokenEmbeddings(rows=2)
    for token in (7, 7, 9, 11, 11):
        row = cache.get(token, embed)
        want = runners["embed"].infer({"input_ids": np.array([[token]], np.int64)})["embeddings"]
        np.testing.assert_array_equal(row, want)
    assert embed.calls == 4  # 7 and 9 kept; 11 came after the cap of 2 rows, so it runs each time
    swapped = {**runners, "embed": _CountingEmbed(runners["embed"])}
    shared = TokenEmbeddings()
    for example in prompts:
        ids = example["input_ids"].numpy()
        tokens = runners["vision"].infer({"images_clip": example["images_clip"].numpy()})["image_tokens"]
        plain = greedy_decode_graphs(runners, manifest, ids, tokens, MAX_NEW_TOKENS)
        cached = greedy_decode_graphs(swapped, manifest, ids, tokens, MAX_NEW_TOKENS, embed_cache=shared)
        np.testing.assert_array_equal(cached.tokens, plain.tokens)
    distinct = len(shared._rows)
    assert swapped["embed"].calls == len(prompts) + distinct  # one prompt call each, then one per new token id
