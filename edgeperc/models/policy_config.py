"""The RPT-style policy's typed configs, torch-free so the runtime and the CLI read them without PyTorch.

``PolicyConfig`` is the architecture plus the normalisation statistics the exported ONNX bakes in
(so it takes and returns radians and metres); ``BCConfig`` is the behaviour-cloning recipe.
``lerobot_overrides`` maps a LeRobot ``config.json`` onto ``PolicyConfig`` fields and refuses a
checkpoint whose action dimension or chunk length this runtime cannot drive.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edgeperc.errors import ConfigError

ACTION_DIM = 8  # 7 joint-target deltas (rad) + gripper width command (m)
PROPRIO_DIM = 8  # 7 measured joint positions (rad) + measured gripper width (m)
CHUNK_LENGTH = 16  # steps of one predicted chunk at 10 Hz (LLARVA ch. 5, Diffusion Policy's horizon)

# Franka "ready" pose (edgeperc.sim.env.HOME_Q_RAD) and a half-open hand: priors until demos give stats.
_HOME_Q_RAD = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)


class Stats(BaseModel):
    """Per-dimension mean and std of one 8-D quantity, physical units; x_model = (x - mean) / std."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _check(self) -> Stats:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values, std {len(self.std)}")
        if not all(math.isfinite(v) for v in self.mean + self.std):
            raise ValueError("mean and std must be finite")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0 in every dimension, got {list(self.std)}")
        return self


def _stats(mean: tuple[float, ...], std: tuple[float, ...]) -> Stats:
    return Stats(mean=mean, std=std)


class PolicyConfig(BaseModel):
    """Sizes of the sensorimotor transformer and the statistics its inputs/outputs are scaled by.

    Tokens: ``image_tokens`` camera tokens (spatial-softmax pooling of a small conv trunk), one
    proprioception token, ``past_steps`` past-action tokens, ``chunk_length`` readout tokens.
    """

    model_config = ConfigDict(extra="forbid")

    image_hw: tuple[int, int] = (96, 96)
    camera: str = Field("workspace", description="edgeperc.sim camera the image comes from (set from the demos' "
                        "metadata at training time); tells a simulator which view to render for this policy")
    in_channels: int = Field(3, ge=1, le=4)
    base_width: int = Field(16, ge=2, le=128, description="conv trunk width; stages are w, 2w, 4w")
    image_tokens: int = Field(8, ge=1, le=64, description="camera tokens pooled from the trunk's feature map")
    d_model: int = Field(128, ge=8, le=1024)
    heads: int = Field(4, ge=1, le=16)
    layers: int = Field(3, ge=1, le=12)
    ff_dim: int = Field(256, ge=8, le=4096)
    dropout: float = Field(0.1, ge=0, lt=1)
    past_steps: int = Field(2, ge=1, le=16, description="K executed actions fed back, oldest first")
    chunk_length: int = Field(CHUNK_LENGTH, ge=1, le=128)
    action_dim: int = ACTION_DIM
    proprio_stats: Stats = _stats(_HOME_Q_RAD + (0.04,), (0.3,) * 7 + (0.04,))
    action_stats: Stats = _stats((0.0,) * 7 + (0.04,), (0.05,) * 7 + (0.04,))
    chunk_stats: Stats = _stats((0.0,) * 7 + (0.04,), (0.2,) * 7 + (0.04,))

    @field_validator("image_hw")
    @classmethod
    def _divisible(cls, hw: tuple[int, int]) -> tuple[int, int]:
        if any(side % 8 or side < 32 for side in hw):
            raise ValueError(f"image_hw {hw} must be >= 32 and divisible by 8 (three 2x downsamplings)")
        return hw

    @field_validator("action_dim")
    @classmethod
    def _action_dim(cls, value: int) -> int:
        if value != ACTION_DIM:
            raise ValueError(f"action dimension {value} does not fit: rpt-policy drives 7 joints + gripper, "
                             f"action_dim must be {ACTION_DIM}")
        return value

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        for name, dim in (("proprio_stats", PROPRIO_DIM), ("action_stats", ACTION_DIM), ("chunk_stats", ACTION_DIM)):
            if len(getattr(self, name).mean) != dim:
                raise ValueError(f"{name} must have {dim} values per statistic, got {len(getattr(self, name).mean)}")
        return self

    @property
    def tokens(self) -> int:
        """Sequence length of the transformer: camera + proprio + past actions + readout."""
        return self.image_tokens + 1 + self.past_steps + self.chunk_length


class BCConfig(BaseModel):
    """Behaviour cloning: L1 on the chunk (ACT), masked-modality dropout (RPT), Adam with cosine decay,
    and an auxiliary cube-pose loss on the camera tokens (privileged sim state, training time only).

    The modality dropout is high on purpose: with proprioception and past actions nearly always
    present, the chunk loss is mostly explained without the image and the camera branch learns
    nothing (a 50-demo run: first-frame chunks no better than the mean chunk, pick 1/10).
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(3000, ge=1)
    batch: int = Field(64, ge=1, le=4096)
    lr: float = Field(5e-4, gt=0, le=1.0)
    weight_decay: float = Field(0.0, ge=0, le=1.0)
    warmup_steps: int = Field(100, ge=0)
    seed: int = 0
    pad_weight: float = Field(0.1, ge=0, le=1, description="loss weight of chunk steps padded past an episode's end")
    drop_image: float = Field(0.05, ge=0, le=1, description="chance a sample's camera tokens are masked")
    drop_proprio: float = Field(0.4, ge=0, le=1, description="high so the model must read the image")
    drop_past_actions: float = Field(0.7, ge=0, le=1, description="also fights copying the last action, which "
                                     "makes a policy re-planned every control step keep going past its goal")
    shift_px: int = Field(2, ge=0, le=16, description="random image shift (pad and crop), DrQ-style; small, since the "
                          "camera is fixed and a shift moves the cube's apparent table position (1 px ~ 4 mm)")
    colour_jitter: float = Field(0.1, ge=0, le=0.5, description="per-sample brightness and per-channel gain "
                                 "within 1 +- this")
    aux_cube_weight: float = Field(1.0, ge=0, le=100, description="weight of the auxiliary loss: cube (x, y) in the "
                                   "base frame and yaw (cos, sin of 4x yaw) of both cubes from the camera tokens, "
                                   "L1 in standardised units; needs demos with cube_pos (else off); 0: off")
    holdout_fraction: float = Field(0.1, ge=0, lt=1, description="episodes kept out for the held-out L1")
    successful_only: bool = True
    threads: int | None = Field(1, ge=1, le=256, description="torch intra-op threads while training; None: torch's "
                                "default. This model is too small to gain from a second thread, which stalls "
                                "whenever another process shares the cores")


def make_bc_config(values: dict[str, Any] | None = None) -> BCConfig:
    """BCConfig from plain values (CLI options); errors name the field instead of a pydantic dump."""
    try:
        return BCConfig.model_validate(values or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'bc'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid behaviour-cloning options: {problems}") from exc


def lerobot_overrides(config_json: dict[str, Any], expected_chunk_length: int = CHUNK_LENGTH) -> dict[str, Any]:
    """PolicyConfig overrides from a LeRobot ``config.json`` (ACT-style names), refusing misfits.

    Maps chunk_size -> chunk_length, dim_model -> d_model, n_heads -> heads, n_encoder_layers ->
    layers, dim_feedforward -> ff_dim, the first VISUAL input's (C, H, W) -> in_channels, image_hw;
    edgeperc's own field names pass through. Raises ConfigError naming the mismatch when the action is not 8-D, the state not 8-D,
    or the chunk is not ``expected_chunk_length`` steps.
    """
    own = set(PolicyConfig.model_fields)
    renames = {"chunk_size": "chunk_length", "dim_model": "d_model", "n_heads": "heads",
               "n_encoder_layers": "layers", "dim_feedforward": "ff_dim"}
    overrides: dict[str, Any] = {k: v for k, v in config_json.items() if k in own and not k.endswith("_stats")}
    for theirs, ours in renames.items():
        if theirs in config_json and ours not in overrides:
            overrides[ours] = config_json[theirs]
    inputs = config_json.get("input_features") or {}
    visual = [f.get("shape") for f in inputs.values() if isinstance(f, dict) and f.get("type") == "VISUAL"]
    if visual and visual[0] and len(visual[0]) == 3:  # (C, H, W) of the first camera
        overrides.setdefault("in_channels", visual[0][0])
        overrides.setdefault("image_hw", tuple(visual[0][1:]))
    action = (config_json.get("output_features") or {}).get("action", {}).get("shape")
    if action is not None and list(action)[-1:] != [ACTION_DIM]:
        raise ConfigError(f"checkpoint action dimension {list(action)} does not fit: rpt-policy needs "
                          f"{ACTION_DIM} (7 joint deltas + gripper width)")
    state = inputs.get("observation.state", {}).get("shape")
    if state is not None and list(state)[-1:] != [PROPRIO_DIM]:
        raise ConfigError(f"checkpoint observation.state dimension {list(state)} does not fit: rpt-policy needs "
                          f"{PROPRIO_DIM} (7 joint positions + gripper width)")
    chunk = overrides.get("chunk_length")
    if chunk is not None and chunk != expected_chunk_length:
        raise ConfigError(f"checkpoint chunk length {chunk} does not fit: this runtime executes "
                          f"{expected_chunk_length}-step chunks")
    return overrides
