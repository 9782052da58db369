"""RPT-style sensorimotor policy (dissertation ch. 4): one transformer over camera, proprioception
and past-action tokens, with learnable mask tokens standing in for any missing modality.

Inputs (physical units; the image normalised by the family manifest):
  image (B, 3, H, W) float32, proprio (B, 8) float32 [q_rad (7), gripper_width_m],
  past_actions (B, K, 8) float32, oldest first, each [q_target - q_measured (7) rad, width cmd m].
Output: actions (B, chunk, 8) float32: joint targets relative to the *current* measured q (rad) and
the gripper width command (m) for the next ``chunk`` control steps (10 Hz).

Normalisation statistics live in the config (computed from the demos at training time) and are
baked into the graph as constants, so the exported ONNX needs no pre/post scaling of its own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.models.policy_config import (
    ACTION_DIM,
    CHUNK_LENGTH,
    PROPRIO_DIM,
    PolicyConfig,
    lerobot_overrides,
)

FAMILY = "rpt-policy"
IMAGE, PROPRIO, PAST_ACTIONS = 0, 1, 2  # modality index in ``keep`` and ``mask_tokens``


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int) -> list[nn.Module]:
    """Conv, GroupNorm (batch-size independent: BC batches are small and correlated), GELU."""
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2 if kernel == 3 else 0),
            nn.GroupNorm(_groups(out_ch), out_ch), nn.GELU()]


def conv_trunk(in_ch: int, width: int) -> nn.Sequential:
    """(B, C, H, W) -> (B, 2w, H/8, W/8): a 4x4/4 patchify stem, then one stride-2 stage.

    The stem keeps a training step cheap on two CPU cores (no full-resolution 3x3 layer) while still
    seeing every pixel of a cube a few pixels wide.
    """
    return nn.Sequential(
        *_conv(in_ch, width, 4, 4), *_conv(width, width, 3, 1),
        *_conv(width, 2 * width, 3, 2), *_conv(2 * width, 2 * width, 3, 1),
    )


class SpatialTokens(nn.Module):
    """(B, C, h, w) features -> (B, T, d) camera tokens, each a spatial-softmax pooling of the map.

    A token carries *where* its attention fell (expected x, y in [-1, 1]) and *what* it saw (the
    attended features): a cube a few pixels wide is localised more precisely than by average pooling.
    """

    def __init__(self, channels: int, tokens: int, d_model: int, grid_hw: tuple[int, int]) -> None:
        super().__init__()
        self.logits = nn.Conv2d(channels, tokens, 1)
        self.proj = nn.Linear(channels + 2, d_model)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, grid_hw[0]), torch.linspace(-1, 1, grid_hw[1]), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys], -1).reshape(-1, 2), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        attention = torch.softmax(self.logits(features).flatten(2), dim=-1)  # (B, T, hw)
        values = features.flatten(2).transpose(1, 2)  # (B, hw, C)
        pooled = torch.cat([attention @ values, attention @ self.coords], dim=-1)
        return self.proj(pooled)


class Block(nn.Module):
    """Pre-norm transformer encoder layer, written out so the ONNX graph is plain MatMul/Softmax."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)  # a Python float: a constant in the traced graph
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        x = x + self.drop(self.out((weights @ v).transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class RPTPolicy(nn.Module):
    """Camera + proprio + past-action tokens -> transformer -> ``chunk_length`` readout tokens -> actions."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        w, d = config.base_width, config.d_model
        self.trunk = conv_trunk(config.in_channels, w)
        grid = (config.image_hw[0] // 8, config.image_hw[1] // 8)
        self.camera = SpatialTokens(2 * w, config.image_tokens, d, grid)
        self.proprio_in = nn.Linear(PROPRIO_DIM, d)
        self.action_in = nn.Linear(ACTION_DIM, d)
        # RPTx: one learnable token per modality replaces that modality wherever it is missing.
        self.mask_tokens = nn.Parameter(torch.randn(3, d) * 0.02)
        self.readout = nn.Parameter(torch.randn(config.chunk_length, d) * 0.02)
        self.position = nn.Parameter(torch.randn(config.tokens, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, config.heads, config.ff_dim, config.dropout) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, ACTION_DIM)
        nn.init.zeros_(self.head.weight)  # start at the mean chunk: a calm first rollout, stable early steps
        nn.init.zeros_(self.head.bias)
        for name in ("proprio", "action", "chunk"):
            stats = getattr(config, f"{name}_stats")
            self.register_buffer(f"{name}_mean", torch.tensor(stats.mean, dtype=torch.float32), persistent=False)
            self.register_buffer(f"{name}_std", torch.tensor(stats.std, dtype=torch.float32), persistent=False)

    def _masked(self, tokens: torch.Tensor | None, modality: int, count: int, batch: int, keep: torch.Tensor | None) -> torch.Tensor:
        mask = self.mask_tokens[modality].expand(batch, count, -1)
        if tokens is None:
            return mask
        if keep is None:
            return tokens
        return torch.where(keep[:, modality, None, None], tokens, mask)

    def forward(
        self,
        image: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
        past_actions: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor]:
        """Missing inputs (None) and samples with ``keep[:, m]`` False (B, 3) bool use mask tokens.

        Returns a 1-tuple ``(actions,)`` (B, chunk, 8), like the other families' tuple of heads.
        """
        return (self.actions_and_camera_tokens(image, proprio, past_actions, keep)[0],)

    def actions_and_camera_tokens(
        self,
        image: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
        past_actions: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward``'s actions and the camera tokens (B, image_tokens, d_model) before any masking
        (None without an image). Training reads the tokens for auxiliary heads; export traces
        ``forward``, so the graph keeps its one output."""
        present = next((t for t in (image, proprio, past_actions) if t is not None), None)
        if present is None:
            raise ValueError("RPTPolicy needs at least one of image, proprio, past_actions")
        cfg, b = self.config, present.shape[0]
        camera = self.camera(self.trunk(image)) if image is not None else None
        own = self.proprio_in((proprio - self.proprio_mean) / self.proprio_std)[:, None] if proprio is not None else None
        past = self.action_in((past_actions - self.action_mean) / self.action_std) if past_actions is not None else None
        x = torch.cat([
            self._masked(camera, IMAGE, cfg.image_tokens, b, keep),
            self._masked(own, PROPRIO, 1, b, keep),
            self._masked(past, PAST_ACTIONS, cfg.past_steps, b, keep),
            self.readout.expand(b, -1, -1),
        ], dim=1) + self.position
        for block in self.blocks:
            x = block(x)
        normalised = self.head(self.norm(x[:, -cfg.chunk_length:]))
        return normalised * self.chunk_std + self.chunk_mean, camera


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------- checkpoints
_LEGACY_STATS = {  # LeRobot < 0.4 keeps normalisers inside model.safetensors
    "proprio_stats": "normalize_inputs.buffer_observation_state",
    "chunk_stats": "unnormalize_outputs.buffer_action",
}


def _stats_from(tensors: dict[str, Any], prefix: str) -> dict[str, list[float]] | None:
    mean, std = tensors.get(f"{prefix}.mean"), tensors.get(f"{prefix}.std")
    if mean is None or std is None:
        return None
    return {"mean": [float(v) for v in mean.flatten()], "std": [float(v) for v in std.flatten()]}


def _lerobot_stats(folder: Path | None, state: dict[str, Any]) -> dict[str, Any]:
    """Normalisation statistics of a LeRobot checkpoint: processor files (>= 0.4) or legacy buffers.

    LeRobot normalises every chunk step with the per-step ``action`` stats; they serve here for
    both the chunk and the past-action tokens.
    """
    from edgeperc.models.checkpoints import read_state

    found: dict[str, Any] = {}
    files = sorted(folder.glob("policy_*processor*normalizer_processor.safetensors")) if folder else []
    for processor in files:
        tensors, _ = read_state(processor)
        if (s := _stats_from(tensors, "observation.state")) is not None:
            found.setdefault("proprio_stats", s)
        if (s := _stats_from(tensors, "action")) is not None:
            found.setdefault("chunk_stats", s)
    for field, prefix in _LEGACY_STATS.items():
        if (s := _stats_from(state, prefix)) is not None:
            found.setdefault(field, s)
    if "chunk_stats" in found:
        found.setdefault("action_stats", found["chunk_stats"])
    return found


def _strip_wrapper(state: dict[str, Any]) -> dict[str, Any]:
    """LeRobot policies wrap the network as ``self.model`` and keep normaliser buffers beside it."""
    keys = [k for k in state if not k.startswith(("normalize_", "unnormalize_"))]
    wrapped = keys and all(k.startswith("model.") for k in keys)
    return {k.removeprefix("model.") if wrapped else k: state[k] for k in keys}


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Sizes an RPTPolicy state dict implies (for plain safetensors without edgeperc metadata).

    ``heads`` and ``dropout`` leave no trace in the weights: they keep their defaults.
    """
    need = ("readout", "position", "trunk.0.weight", "camera.logits.weight", "blocks.0.ff.0.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise ModelFileError(f"not an {FAMILY} state dict: missing {', '.join(missing)}")
    chunk, d_model = (int(v) for v in state["readout"].shape)
    first = state["trunk.0.weight"]
    image_tokens = int(state["camera.logits.weight"].shape[0])
    return {
        "chunk_length": chunk,
        "d_model": d_model,
        "base_width": int(first.shape[0]),
        "in_channels": int(first.shape[1]),
        "image_tokens": image_tokens,
        "past_steps": int(state["position"].shape[0]) - image_tokens - 1 - chunk,
        "layers": len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
        "ff_dim": int(state["blocks.0.ff.0.weight"].shape[0]),
    }


def _check_head(state: dict[str, Any], path: Path, expected_chunk_length: int) -> None:
    """Refuse a checkpoint whose output does not fit before any key-by-key comparison."""
    head, readout = state.get("head.weight"), state.get("readout")
    if head is not None and int(head.shape[0]) != ACTION_DIM:
        raise ModelFileError(f"checkpoint {path} predicts {int(head.shape[0])}-D actions; {FAMILY} needs "
                             f"{ACTION_DIM} (7 joint deltas + gripper width)")
    if readout is not None and int(readout.shape[0]) != expected_chunk_length:
        raise ModelFileError(f"checkpoint {path} predicts {int(readout.shape[0])}-step chunks; this runtime "
                             f"executes {expected_chunk_length}-step chunks")


def load_policy(
    path: str | Path,
    expected_chunk_length: int = CHUNK_LENGTH,
    config_overrides: dict[str, Any] | None = None,
) -> tuple[RPTPolicy, PolicyConfig]:
    """(eval-mode RPTPolicy, its config) from an edgeperc .safetensors, a plain state dict of the
    same architecture, or a LeRobot folder (``model.safetensors`` + ``config.json``).

    Refuses, naming the mismatch: a wrong action dimension or chunk length (ConfigError from a
    config, ModelFileError from tensor shapes), another family, missing/corrupt files, or any
    missing, unexpected or mis-shaped tensor.
    """
    from edgeperc.models.checkpoints import checkpoint_config, load_into, read_state
    from edgeperc.models.registry import get_family

    path = Path(path)
    if path.is_dir():
        files = {name: path / name for name in ("config.json", "model.safetensors")}
        absent = [name for name, p in files.items() if not p.is_file()]
        if absent:
            raise ModelFileError(f"LeRobot checkpoint folder {path} lacks {', '.join(absent)}")
        try:
            config_json = json.loads(files["config.json"].read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{files['config.json']} is not valid JSON ({exc})") from exc
        if not isinstance(config_json, dict):
            raise ModelFileError(f"{files['config.json']} must hold a JSON object")
        overrides = lerobot_overrides(config_json, expected_chunk_length)
        raw, _ = read_state(files["model.safetensors"])
        overrides.update(_lerobot_stats(path, raw))
        state, source = _strip_wrapper(raw), files["model.safetensors"]
    else:
        raw, metadata = read_state(path)
        family, stored = checkpoint_config(metadata)
        if family is not None and family != FAMILY:
            raise ModelFileError(f"checkpoint {path} is a '{family}' checkpoint, not '{FAMILY}'")
        state, source = _strip_wrapper(raw), path
        if family is None:  # a bare state dict: its tensors are all there is to check
            _check_head(state, source, expected_chunk_length)
            stored = {**config_from_state(state), **_lerobot_stats(None, raw)}
        overrides = dict(stored)
        if overrides.get("chunk_length", expected_chunk_length) != expected_chunk_length:
            raise ConfigError(f"checkpoint {path} has chunk length {overrides['chunk_length']}; this runtime "
                              f"executes {expected_chunk_length}-step chunks")
    _check_head(state, source, expected_chunk_length)
    config = get_family(FAMILY).make_config({**overrides, **(config_overrides or {})})
    if config.chunk_length != expected_chunk_length:
        raise ConfigError(f"config chunk length {config.chunk_length}; this runtime executes "
                          f"{expected_chunk_length}-step chunks")
    model = RPTPolicy(config)
    load_into(model, state, source)
    return model.eval(), config


def convert_checkpoint(source: str | Path, out: str | Path, expected_chunk_length: int = CHUNK_LENGTH) -> Path:
    """Any checkpoint ``load_policy`` accepts -> an edgeperc .safetensors (family + config in its
    metadata), ready for ``edgeperc export out.safetensors``."""
    from edgeperc.models.checkpoints import save_checkpoint

    model, config = load_policy(source, expected_chunk_length)
    return save_checkpoint(model, out, FAMILY, config.model_dump(mode="json"),
                           {"edgeperc.converted_from": str(Path(source).name)})

