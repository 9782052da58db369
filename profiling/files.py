"""Reading the files the profiler is given (baselines, trtexec exports): one error style for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperc.errors import ConfigError


def read_json_file(path: Path, label: str, how_to_make: str) -> Any:
    """Parsed JSON of ``path``; a missing or malformed file is a ConfigError naming ``label``."""
    if not path.is_file():
        raise ConfigError(f"{label} not found ({how_to_make})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label} is not valid JSON: {exc}") from exc
