"""Read a JSON file a model folder needs: a missing or unreadable one is a ModelFileError naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperc.errors import ModelFileError


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
