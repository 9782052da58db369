"""LISAt checkpoints in and out, Hugging Face folder layout, checked before a byte is loaded.

A folder holds ``config.json`` and ``model.safetensors``, or shards ``model-0000i-of-0000n.safetensors``
listed by ``model.safetensors.index.json``, or the ``pytorch_model*.bin`` equivalents (read with
``torch.load(weights_only=True)``); a single ``.safetensors`` / ``.bin`` file is accepted too. Every
tensor name and shape is compared with the model the config describes (built on the meta device,
so free) before the model is built: a missing shard, a truncated or corrupt file, or missing /
unexpected / mis-shaped tensors raise ModelFileError naming them.

config.json -> LisatConfig. Folders written by ``save_lisat`` carry the whole config under
``edgeperc_lisat``. A LISA/LISAt folder (LISA's merge_lora_weights_and_save_hf_model.py) has LLaVA's
fields, mapped onto ``LisatConfig.full()``:
  vocab_size, hidden_size, intermediate_size, rms_norm_eps, rope_theta  -> llm.* (same names)
  num_hidden_layers -> llm.layers, num_attention_heads -> llm.heads,
  num_key_value_heads -> llm.kv_heads (default: heads), max_position_embeddings -> llm.max_positions
  mm_hidden_size -> vision.hidden_size, mm_vision_select_layer -> vision.select_layer,
  vision_tower / mm_vision_tower naming "336" -> vision.image_size 336 (LLaVA-1.5's CLIP)
  mm_projector_type -> projector.kind (absent: LLaVA-1's linear)
  out_dim -> sam.prompt_embed_dim (SAM itself is ViT-H: LISA hard-codes build_sam_vit_h)
  seg_token_idx (if present) -> seg_token_id, pad_token_id -> pad_token_id
LISA's merge script drops every ``vision_tower`` tensor (CLIP is reloaded from
openai/clip-vit-large-patch14): pass that CLIP checkpoint as ``vision_tower=``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.json_files import read_json_file
from edgeperc.models.lisat_config import LisatConfig

CONFIG_FILE = "config.json"
SAFE_SINGLE, SAFE_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN_SINGLE, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
CONFIG_BLOCK = "edgeperc_lisat"
VISION_PREFIX = "model.vision_tower.vision_tower."
# Buffers recomputed at construction, present in checkpoints written by older transformers.
DERIVED_BUFFERS = ("rotary_emb.inv_freq", "embeddings.position_ids")
DEFAULT_SHARD_BYTES = 4 << 30


# -- config.json -----------------------------------------------------------------------------------
def config_to_json(config: LisatConfig) -> dict[str, Any]:
    """LISA/LLaVA's config.json fields (so other tools read the sizes) + the whole config under edgeperc_lisat."""
    llm, vision = config.llm, config.vision
    return {
        "architectures": ["LISAForCausalLM"], "model_type": "llava",
        "vocab_size": llm.vocab_size, "hidden_size": llm.hidden_size, "intermediate_size": llm.intermediate_size,
        "num_hidden_layers": llm.layers, "num_attention_heads": llm.heads, "num_key_value_heads": llm.kv_heads,
        "max_position_embeddings": llm.max_positions, "rms_norm_eps": llm.rms_norm_eps,
        "rope_theta": llm.rope_theta, "hidden_act": "silu", "tie_word_embeddings": False,
        "pad_token_id": config.pad_token_id, "mm_hidden_size": vision.hidden_size,
        "mm_vision_select_layer": vision.select_layer, "mm_vision_select_feature": "patch",
        "mm_projector_type": config.projector.kind, "out_dim": config.sam.prompt_embed_dim,
        "seg_token_idx": config.seg_token_id,
        CONFIG_BLOCK: config.model_dump(mode="json"),
    }


def config_from_json(data: dict[str, Any], source: str = CONFIG_FILE) -> LisatConfig:
    """LisatConfig from a config.json: edgeperc's own block, else LISA/LLaVA fields onto full()."""
    try:
        if CONFIG_BLOCK in data:
            return LisatConfig.model_validate(data[CONFIG_BLOCK])
        base = LisatConfig.full().model_dump()
        llm_names = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
                     "num_hidden_layers": "layers", "num_attention_heads": "heads", "num_key_value_heads": "kv_heads",
                     "max_position_embeddings": "max_positions", "rms_norm_eps": "rms_norm_eps",
                     "rope_theta": "rope_theta"}
        for theirs, ours in llm_names.items():
            if data.get(theirs) is not None:
                base["llm"][ours] = data[theirs]
        if data.get("num_key_value_heads") is None and data.get("num_attention_heads") is not None:
            base["llm"]["kv_heads"] = data["num_attention_heads"]
        if data.get("mm_hidden_size") is not None:
            base["vision"]["hidden_size"] = data["mm_hidden_size"]
        if data.get("mm_vision_select_layer") is not None:
            base["vision"]["select_layer"] = data["mm_vision_select_layer"]
        tower = str(data.get("mm_vision_tower") or data.get("vision_tower") or "")
        if "336" in tower:
            base["vision"]["image_size"] = 336
        if data.get("mm_projector_type") is not None:
            base["projector"]["kind"] = data["mm_projector_type"]
        if data.get("out_dim") is not None:
            base["sam"]["prompt_embed_dim"] = data["out_dim"]
        for theirs, ours in (("seg_token_idx", "seg_token_id"), ("pad_token_id", "pad_token_id")):
            if data.get(theirs) is not None:
                base[ours] = data[theirs]
        return LisatConfig.model_validate(base)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'lisat'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise ModelFileError(f"{source} does not describe a LISAt model this build supports: {problems}") from exc


def _read_json(path: Path) -> Any:
    return read_json_file(path, "checkpoint file")


# -- locating and reading tensors ------------------------------------------------------------------
def checkpoint_files(path: str | Path) -> list[Path]:
    """The weight files of a folder or single file; a shard the index names but the folder lacks is refused."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ModelFileError(f"checkpoint not found: {path}")
    for index_name, single in ((SAFE_INDEX, SAFE_SINGLE), (BIN_INDEX, BIN_SINGLE)):
        index = path / index_name
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ModelFileError(f"{index} has no weight_map")
            shards = sorted(set(weight_map.values()))
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise ModelFileError(f"{path}: {len(missing)} of {len(shards)} shards listed in {index_name} are "
                                     f"missing: {', '.join(missing[:5])}")
            return [path / s for s in shards]
        if (path / single).is_file():
            return [path / single]
    raise ModelFileError(f"no weights in {path}: expected {SAFE_SINGLE}, {SAFE_INDEX} with its shards, "
                         f"{BIN_SINGLE} or {BIN_INDEX}")


def _torch_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) archives cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles and zip archives
        raise ModelFileError(f"{path} cannot be read with weights_only=True, truncated or corrupt? "
                             f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and hasattr(v, "shape") for k, v in loaded.items()):
        raise ModelFileError(f"{path} does not hold a flat state dict of tensors")
    return loaded


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of one weight file, from the safetensors header (no tensor is read)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                names = handle.keys()
                return {k: tuple(handle.get_slice(k).get_shape()) for k in names}
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{path} is truncated or corrupt ({exc})") from exc
    return {k: tuple(v.shape) for k, v in _torch_state(path).items()}


def read_tensors(path: Path) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of one weight file, one at a time for safetensors."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                names = handle.keys()
                for key in names:
                    yield key, handle.get_tensor(key)
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{path} is truncated or corrupt ({exc})") from exc
        return
    yield from _torch_state(path).items()


def _clip_name(key: str) -> str | None:
    """A CLIP checkpoint's key (CLIPModel / CLIPVisionModel, transformers 4 or 5) -> LISA's name; None: not vision."""
    if key.startswith("vision_model."):
        return VISION_PREFIX + key
    if key.split(".")[0] in ("embeddings", "pre_layrnorm", "encoder", "post_layernorm"):
        return VISION_PREFIX + "vision_model." + key
    return None  # text_model.*, visual_projection, text_projection, logit_scale


# -- checks ------------------------------------------------------------------------------------------
def expected_shapes(config: LisatConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor the model's state dict holds, from a meta-device build (no memory)."""
    import torch

    from edgeperc.models.lisat import LisatModel

    with torch.device("meta"):
        model = LisatModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _listed(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def check_fit(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], where: str,
              against: str = "the LISAt config") -> None:
    """ModelFileError listing the first missing, unexpected and mis-shaped tensors, if any."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mis_shaped = sorted(f"{k} {found[k]} vs {expected[k]}" for k in set(found) & set(expected) if found[k] != expected[k])
    problems = [f"{len(names)} {label}: {_listed(names)}" for label, names in
                (("missing tensors", missing), ("unexpected tensors", unexpected),
                 ("shape mismatches (file vs model)", mis_shaped)) if names]
    if problems:
        raise ModelFileError(f"{where} does not fit {against}: " + "; ".join(problems))


def _no_init() -> Any:
    """transformers' no_init_weights: skips random init of weights about to be overwritten."""
    for module in ("transformers.initialization", "transformers.modeling_utils"):  # 5.x, 4.x
        with contextlib.suppress(ImportError, AttributeError):
            return importlib.import_module(module).no_init_weights()
    return contextlib.nullcontext()


# -- load / save ---------------------------------------------------------------------------------------
def resolve_config(path: Path, config: LisatConfig | None) -> LisatConfig:
    """``config`` if given, else the folder's (or the file's sibling) config.json."""
    if config is not None:
        return config
    folder = path if path.is_dir() else path.parent
    if not (folder / CONFIG_FILE).is_file():
        raise ConfigError(f"no {CONFIG_FILE} beside {path}: pass config= (e.g. LisatConfig.full())")
    return config_from_json(_read_json(folder / CONFIG_FILE), str(folder / CONFIG_FILE))


def load_lisat(path: str | Path, config: LisatConfig | None = None, vision_tower: str | Path | None = None,
               dtype: Any = None) -> tuple[Any, LisatConfig]:
    """(LisatModel in eval mode, its config) from a folder or file, every tensor checked before loading.

    ``vision_tower``: a CLIP checkpoint (folder or file; CLIPModel or CLIPVisionModel names) for a
    checkpoint without ``model.vision_tower.*``, as LISA's released folders are. ``dtype``: cast
    the model (e.g. torch.bfloat16) before the weights are copied in; default float32.
    """
    from edgeperc.models.lisat import LisatModel

    path = Path(path)
    files = checkpoint_files(path)  # a missing path or shard first: it is the likelier mistake
    config = resolve_config(path, config)
    expected = expected_shapes(config)

    def derived(name: str) -> bool:
        return name.endswith(DERIVED_BUFFERS) and name not in expected

    renames: dict[Path, dict[str, str]] = {}  # file -> {name in the file: name in the model}
    found: dict[str, tuple[int, ...]] = {}
    owner: dict[str, Path] = {}

    def add(file: Path, names: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> None:
        twice = sorted(n for n in names.values() if n in owner)
        if twice:
            raise ModelFileError(f"{len(twice)} tensors are in both {owner[twice[0]].name} and {file.name}: "
                                 f"{_listed(twice)}")
        renames[file] = names
        found.update({n: shapes[k] for k, n in names.items()})
        owner.update({n: file for n in names.values()})

    for file in files:
        shapes = read_shapes(file)
        add(file, {k: k for k in shapes if not derived(k)}, shapes)
    has_tower = any(k.startswith(VISION_PREFIX) for k in found)
    if vision_tower is not None:
        if has_tower:
            raise ModelFileError(f"{path} already holds the CLIP vision tower; vision_tower= would replace it")
        for file in checkpoint_files(vision_tower):
            shapes = read_shapes(file)
            add(file, {k: n for k in shapes if (n := _clip_name(k)) and not derived(n)}, shapes)
    elif not has_tower and any(k.startswith(VISION_PREFIX) for k in expected):
        raise ModelFileError(f"{path} holds no CLIP vision tower (model.vision_tower.*; LISA's merge script drops "
                             f"it): pass vision_tower=<folder of openai/clip-vit-large-patch14>")
    check_fit(found, expected, str(path) if vision_tower is None else f"{path} + {vision_tower}")

    with _no_init():
        model = LisatModel(config)
    if dtype is not None:
        model.to(dtype)
    loaded: set[str] = set()
    for file, names in renames.items():
        part = {names[k]: v for k, v in read_tensors(file) if k in names}
        model.load_state_dict(part, strict=False)
        loaded |= set(part)
    if loaded != set(expected):  # a file changed between the check and the read
        raise ModelFileError(f"{path}: {len(set(expected) - loaded)} tensors could not be read")
    return model.eval(), config


def save_lisat(model: Any, config: LisatConfig, folder: str | Path, shard_bytes: int = DEFAULT_SHARD_BYTES) -> Path:
    """``config.json`` + ``model.safetensors``, or shards of at most ``shard_bytes`` (a larger tensor gets
    a shard of its own) with ``model.safetensors.index.json``. Earlier weight files there are removed."""
    from safetensors.torch import save_file

    if shard_bytes <= 0:
        raise ConfigError(f"shard_bytes must be positive, got {shard_bytes}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    for old in folder.iterdir():
        if old.name in (SAFE_SINGLE, SAFE_INDEX) or re.fullmatch(r"model-\d+-of-\d+\.safetensors", old.name):
            old.unlink()
    (folder / CONFIG_FILE).write_text(json.dumps(config_to_json(config), indent=2))
    if len(shards) == 1:
        save_file(shards[0], str(folder / SAFE_SINGLE), metadata={"format": "pt"})
        return folder
    weight_map: dict[str, str] = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (folder / SAFE_INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return folder
