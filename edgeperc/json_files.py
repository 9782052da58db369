"""JSON at the edges: a file a model folder needs (a missing or unreadable one is a ModelFileError
naming it) and a CLI option's JSON object (a ConfigError naming the option)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperc.errors import ConfigError, ModelFileError


def read_json_file(path: str | Path, what: str, missing: str | None = None) -> Any:
    """Parsed ``path``; ``what`` names the file in errors ("LISAt manifest", "tokenizer"),
    ``missing`` replaces the not-found message."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelFileError(missing or f"{what} not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{what} {path} is not readable JSON ({exc})") from exc


def parse_json_option(text: str | None, option: str) -> dict:
    """``text`` given to ``option`` (e.g. --config) as a JSON object; {} when not given."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object, got {type(value).__name__}")
    return value
