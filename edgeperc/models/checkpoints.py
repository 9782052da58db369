"""Checkpoints in and out: safetensors (preferred) or torch files loaded with weights_only=True.

A checkpoint written by edgeperc carries its family and config in the safetensors metadata, so
``edgeperc export ck.safetensors`` needs no flags; missing, unexpected or mis-shaped tensors are
named in the error instead of surfacing as a torch traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperc.errors import ModelFileError

FAMILY_KEY = "edgeperc.family"
CONFIG_KEY = "edgeperc.config"


def read_state(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(state_dict of torch tensors, metadata) from .safetensors, .pt, .pth or .ckpt."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
                return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"checkpoint is truncated or corrupt: {path} ({exc})") from exc
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles and zip archives
        raise ModelFileError(f"checkpoint cannot be read with weights_only=True: {path} ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise ModelFileError(f"checkpoint does not hold a state dict: {path}")
    state = {k.removeprefix("module."): v for k, v in loaded.items() if hasattr(v, "shape")}
    return state, {}


def checkpoint_config(metadata: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """(family name, config dict) stored by ``save_checkpoint``, or (None, {})."""
    config = json.loads(metadata[CONFIG_KEY]) if CONFIG_KEY in metadata else {}
    return metadata.get(FAMILY_KEY), config


def load_into(module: Any, state: dict[str, Any], path: str | Path) -> Any:
    """Strictly load ``state`` into ``module``; every mismatch is listed in one ModelFileError."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state) if state[k].shape != own[k].shape
    )
    problems = []
    for label, names in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mis_shaped)):
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            problems.append(f"{len(names)} {label}: {shown}")
    if problems:
        raise ModelFileError(f"checkpoint {path} does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
    return module


def save_checkpoint(module: Any, path: str | Path, family: str, config: dict[str, Any], extra: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {FAMILY_KEY: family, CONFIG_KEY: json.dumps(config), **(extra or {})}
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path


STORED_DTYPE_KEY = "edgeperc.stored_dtype"


def store_half(path: str | Path, out: str | Path) -> Path:
    """``path`` rewritten with its floating tensors in float16 (half the bytes; models load them back
    into float32 parameters), metadata kept and the stored dtype recorded. For shipping weights:
    the ONNX exported from the half file is the reference, not the float32 original."""
    import torch
    from safetensors.torch import save_file

    state, metadata = read_state(path)
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    out = Path(out)
    save_file(half, str(out), metadata={**metadata, STORED_DTYPE_KEY: str(torch.float16).removeprefix("torch.")})
    return out
