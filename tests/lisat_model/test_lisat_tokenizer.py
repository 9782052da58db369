"""The word tokenizer: round trip, specials, JSON save/load, the LLaMA-tokenizer hook (torch-free)."""

from __future__ import annotations

import json

import pytest

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.models.lisat_config import IGNORE_INDEX, LisatConfig
from edgeperc.models.lisat_tokenizer import (
    IMAGE_ID,
    SEG_ID,
    SPECIAL_TOKENS,
    build_tokenizer,
    check_tokenizer,
    load_tokenizer,
    seg_conversation,
    seg_prompt,
    training_example,
)
from tests.lisat_model.conftest import QUERIES


def test_template():
    assert seg_prompt("  the  barge ") == "USER: <image>\nthe barge ASSISTANT:"
    assert seg_conversation("the barge") == "USER: <image>\nthe barge ASSISTANT: Sure, it is <SEG>."
    with pytest.raises(ConfigError):
        seg_prompt("   ")


def test_round_trip_and_specials(tokenizer):
    text = seg_conversation("The white plane, left of the hangar?")
    ids = tokenizer.encode(text, add_bos=False)
    assert ids.count(IMAGE_ID) == 1 and ids.count(SEG_ID) == 1 and tokenizer.unk_id not in ids
    assert tokenizer.decode(ids) == "user: <image>\nthe white plane, left of the hangar? assistant: sure, it is <SEG>."
    assert tokenizer.encode("a zeppelin")[-1] == tokenizer.unk_id
    assert tokenizer.decode(tokenizer.encode("the barge", add_eos=True), skip_special=True) == "the barge"


def test_ids_fit_the_tiny_config(tokenizer):
    check_tokenizer(tokenizer, LisatConfig.tiny())
    with pytest.raises(ConfigError, match="seg_token_id"):
        check_tokenizer(tokenizer, LisatConfig.full())


def test_vocabulary_grows_with_the_text_and_is_capped():
    small = build_tokenizer(QUERIES)
    grown = build_tokenizer(QUERIES + ("the zeppelin hovers", "a zeppelin"))
    assert len(grown) == len(small) + 2
    assert grown.tokens.index("zeppelin") < grown.tokens.index("hovers") < grown.tokens.index("ships")  # by count
    with pytest.raises(ConfigError, match="vocab_size 50"):
        build_tokenizer(QUERIES, max_size=50)


def test_training_labels_cover_the_answer_only(tokenizer):
    ids, labels = training_example(tokenizer, "the barge")
    answer = [i for i, label in zip(ids, labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(answer) == "sure, it is <SEG>. </s>"
    assert len(ids) == len(labels) and labels[0] == IGNORE_INDEX


def test_save_load_and_refusals(tokenizer, tmp_path):
    path = tokenizer.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.tokens == tokenizer.tokens and load_tokenizer(path).tokens == tokenizer.tokens
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other", "tokens": []}))
    with pytest.raises(ModelFileError, match="not an edgeperc LISAt word tokenizer"):
        load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "swapped.json").write_text(json.dumps({"format": "edgeperc-lisat-words/1",
                                                       "tokens": list(reversed(SPECIAL_TOKENS))}))
    with pytest.raises(ModelFileError, match="must start with"):
        load_tokenizer(tmp_path / "swapped.json")
    llama = tmp_path / "lisa"
    llama.mkdir()
    (llama / "tokenizer.model").write_bytes(b"\x00")
    with pytest.raises(ModelFileError, match="LLaMA tokenizer"):
        load_tokenizer(llama)
