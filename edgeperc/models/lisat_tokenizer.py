"""A word-level tokenizer for LISAt's templated queries, torch-free.

The tiny LISAt model is trained on templated queries ("the white plane left of the hangar"), so
a word list is enough and keeps its vocabulary a few hundred entries. Words are lower-cased; ids
0-5 are fixed specials matching ``LisatConfig.tiny()``. A real LISA/LISAt checkpoint brings its own
LLaMA SentencePiece tokenizer (``tokenizer.model``): ``load_tokenizer`` is where it will plug in,
behind the same ``TextTokenizer`` protocol.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.json_files import read_json_file
from edgeperc.models.lisat_config import IGNORE_INDEX, LisatConfig

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>", "<SEG>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID, IMAGE_ID, SEG_ID = range(len(SPECIAL_TOKENS))
FORMAT = "edgeperc-lisat-words/1"
TOKENIZER_FILE = "lisat_tokenizer.json"

# The template's words, then the aerial scenes' vocabulary: most training queries need no new entry.
BASE_WORDS = (
    "\n", ":", ",", ".", "?", "user", "assistant", "sure", "it", "is", "the", "a", "an", "of", "in", "on", "at", "to", "and", "with",
    "near", "next", "left", "right", "top", "bottom", "upper", "lower", "middle", "centre", "center",
    "corner", "side", "edge", "north", "south", "east", "west", "above", "below", "between", "beside",
    "closest", "nearest", "farthest", "largest", "smallest", "biggest", "small", "large", "big", "long",
    "short", "wide", "narrow", "round", "square", "rectangular", "circular", "dark", "light", "bright",
    "white", "black", "grey", "gray", "red", "green", "blue", "yellow", "orange", "brown", "segment",
    "find", "show", "where", "which", "what", "please", "object", "image", "area", "region", "part",
    "building", "buildings", "house", "roof", "hangar", "warehouse", "tower", "tank", "storage", "road",
    "roads", "street", "bridge", "river", "lake", "pond", "pool", "field", "forest", "tree", "trees",
    "car", "cars", "truck", "bus", "vehicle", "plane", "aircraft", "airplane", "helicopter", "ship",
    "boat", "barge", "harbor", "port", "runway", "parking", "lot", "container", "crane", "court",
    "stadium", "track", "rail", "railway", "train", "one", "two", "three", "only", "single", "lone",
    "other", "all", "that", "this", "its", "has", "by", "from", "for", "or", "parked", "moored",
)
_WORD = re.compile(r"<[A-Za-z_/]+>|\n|[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")
_NO_SPACE_BEFORE = {",", ".", ":", ";", "?", "!", ")", "\n"}

SEG_ANSWER = "Sure, it is <SEG>."


class TextTokenizer(Protocol):
    """What LisatModel's callers need from a tokenizer; a LLaMA SentencePiece one will fit it too."""

    pad_id: int
    image_id: int
    seg_id: int

    def __len__(self) -> int: ...
    def encode(self, text: str, add_bos: bool = True, add_eos: bool = False) -> list[int]: ...
    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str: ...


def split_words(text: str) -> list[str]:
    """Text -> word, punctuation, newline and ``<special>`` pieces; words lower-cased."""
    pieces = _WORD.findall(text)
    return [p if p.startswith("<") and p.endswith(">") and len(p) > 2 else p.lower() for p in pieces]


def seg_prompt(query: str) -> str:
    """LLaVA-v1-like turn LISA trains on, up to the assistant's answer: 'USER: <image>\\n{query} ASSISTANT:'."""
    query = " ".join(query.split())
    if not query:
        raise ConfigError("the query is empty")
    return f"USER: <image>\n{query} ASSISTANT:"


def seg_conversation(query: str, answer: str = SEG_ANSWER) -> str:
    """The whole training turn: the prompt, then LISA's answer 'Sure, it is <SEG>.'."""
    return f"{seg_prompt(query)} {answer}"


class WordTokenizer:
    """Word <-> id over a fixed list: the six specials first, then words in a stable order."""

    pad_id, bos_id, eos_id, unk_id, image_id, seg_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID, IMAGE_ID, SEG_ID

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = list(tokens)
        if tuple(self.tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ConfigError(f"a LISAt word vocabulary must start with {list(SPECIAL_TOKENS)}")
        if len(set(self.tokens)) != len(self.tokens):
            duplicates = sorted(t for t, n in Counter(self.tokens).items() if n > 1)
            raise ConfigError(f"the word vocabulary repeats {duplicates[:5]}")
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = False) -> list[int]:
        ids = [self._ids.get(piece, UNK_ID) for piece in split_words(text)]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Ids -> text, spaces between words, none before punctuation or around newlines; <pad> dropped."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == PAD_ID or (skip_special and i < len(SPECIAL_TOKENS)):
                continue
            token = self.tokens[i] if 0 <= i < len(self.tokens) else "<unk>"
            if out and token not in _NO_SPACE_BEFORE and out[-1] != "\n":
                out.append(" ")
            out.append(token)
        return "".join(out)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": FORMAT, "tokens": self.tokens}, indent=0))
        return path


def build_tokenizer(texts: Iterable[str], max_size: int | None = None) -> WordTokenizer:
    """Specials + BASE_WORDS + the other words of ``texts`` (most frequent first, then alphabetical)."""
    known = set(SPECIAL_TOKENS) | set(BASE_WORDS)
    counts = Counter(p for text in texts for p in split_words(text) if p not in known)
    extra = sorted(counts, key=lambda w: (-counts[w], w))
    tokens = list(SPECIAL_TOKENS) + list(BASE_WORDS) + extra
    if max_size is not None and len(tokens) > max_size:
        raise ConfigError(f"the training text needs {len(tokens)} vocabulary entries, more than the model's "
                          f"llm.vocab_size {max_size}: raise it or simplify the queries")
    return WordTokenizer(tokens)


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """A word tokenizer from its JSON (or a folder holding ``lisat_tokenizer.json``).

    Hook: a LISA/LISAt checkpoint folder holds LLaMA's SentencePiece ``tokenizer.model`` (plus
    [SEG], <im_start>, <im_end> in ``added_tokens.json``); loading it is not implemented yet and is
    refused by name here, where it will be added.
    """
    path = Path(path)
    if path.is_dir():
        if (path / TOKENIZER_FILE).is_file():
            path = path / TOKENIZER_FILE
        elif (path / "tokenizer.model").is_file() or (path / "tokenizer.json").is_file():
            raise ModelFileError(f"{path} holds a LLaMA tokenizer (tokenizer.model / tokenizer.json): not supported "
                                 f"yet, only edgeperc's word tokenizer ({TOKENIZER_FILE})")
        else:
            raise ModelFileError(f"no tokenizer in {path} (expected {TOKENIZER_FILE})")
    data = read_json_file(path, "tokenizer")
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tokens"), list):
        raise ModelFileError(f"{path} is not an edgeperc LISAt word tokenizer (format {FORMAT})")
    try:
        return WordTokenizer(data["tokens"])
    except ConfigError as exc:
        raise ModelFileError(f"tokenizer {path}: {exc}") from exc


def check_tokenizer(tokenizer: TextTokenizer, config: LisatConfig) -> None:
    """Refuse a tokenizer whose special ids or size do not fit the model's config."""
    if len(tokenizer) > config.llm.vocab_size:
        raise ConfigError(f"tokenizer has {len(tokenizer)} entries, the model's llm.vocab_size is {config.llm.vocab_size}")
    for name, ours, theirs in (("seg_token_id", tokenizer.seg_id, config.seg_token_id),
                               ("image_token_id", tokenizer.image_id, config.image_token_id),
                               ("pad_token_id", tokenizer.pad_id, config.pad_token_id)):
        if ours != theirs:
            raise ConfigError(f"tokenizer {name} is {ours}, the model's config says {theirs}")


def training_example(tokenizer: TextTokenizer, query: str, answer: str = SEG_ANSWER) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one turn: labels are IGNORE_INDEX over the prompt, the ids over the answer + </s>."""
    prompt = tokenizer.encode(seg_prompt(query), add_bos=True)
    reply = tokenizer.encode(answer, add_bos=False, add_eos=True)
    return prompt + reply, [IGNORE_INDEX] * len(prompt) + reply
