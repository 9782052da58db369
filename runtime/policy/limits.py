"""Franka Panda (FER) limits for the policy runtime, loaded from YAML and validated at the edge.

The published joint figures (frankarobotics/docs ``source/control-parameters-joint-fer.csv``, the
FER table in franka-facts.md §1.2) are the ceiling: a config may tighten them for a deployment but
never loosen them, so a typo cannot make the guard more permissive than the robot's own checks.
Everything else (margins, safety factor, workspace box, table floor, gripper caps) is ours and
documented field by field in ``firmware_configs/robots/franka-panda.yaml``.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from edgeperc.errors import ConfigError
from edgeperc.targets import format_validation_error, yaml_mapping

# libfranka kDeltaT (include/franka/rate_limiting.h): the realtime loop's sample time.
DT_S = 1e-3
N_JOINTS = 7

# FER joint limits, frankarobotics/docs source/control-parameters-joint-fer.csv (franka-facts.md §1.2).
PUBLISHED_Q_MAX_RAD = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
PUBLISHED_Q_MIN_RAD = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
PUBLISHED_DQ_MAX_RAD_S = (2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100)
PUBLISHED_DDQ_MAX_RAD_S2 = (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)
PUBLISHED_DDDQ_MAX_RAD_S3 = (7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0)
# Franka Hand: flange -> TCP 0.1034 m along flange z (franka_ros franka_robot.xacro tcp_xyz; F_T_EE in
# getting_started.rst); fingers 0..0.04 m each, 0.08 m total (franka_hand.xacro) - franka-facts.md §1.4, §3.
PUBLISHED_TCP_OFFSET_M = 0.1034
PUBLISHED_GRIPPER_WIDTH_MAX_M = 0.08

_CEILINGS = {
    "dq_max_rad_s": PUBLISHED_DQ_MAX_RAD_S,
    "ddq_max_rad_s2": PUBLISHED_DDQ_MAX_RAD_S2,
    "dddq_max_rad_s3": PUBLISHED_DDDQ_MAX_RAD_S3,
}
_LIMIT_EPS = 1e-3  # libfranka kLimitEps (include/franka/rate_limiting.h)
_PACKAGE = "edgeperc.firmware_configs"
DEFAULT_FILE = "robots/franka-panda.yaml"


def _fmt(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


class PandaLimits(BaseModel):
    """Joint, Cartesian and gripper limits of one Panda deployment (immutable).

    Joint vectors are 7 floats, joint 1 first. ``safety_factor`` scales velocity, acceleration and
    jerk for the 1 kHz limiter (the checker always uses the unscaled figures, as Control does).
    Numpy views of the vectors (read-only) are on ``q_min``, ``q_max``, ``dq_max``, ``ddq_max``,
    ``dddq_max``, ``q_lo`` / ``q_hi`` (limits shrunk by the margin), ``workspace_lo`` / ``workspace_hi``,
    and ``dq_cap`` / ``ddq_cap`` / ``dddq_cap`` (what the limiter may use: scaled, step-capped,
    minus libfranka's kLimitEps).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(default="franka-panda", min_length=1)
    description: str = ""
    q_min_rad: tuple[float, ...]
    q_max_rad: tuple[float, ...]
    dq_max_rad_s: tuple[float, ...]
    ddq_max_rad_s2: tuple[float, ...]
    dddq_max_rad_s3: tuple[float, ...]
    position_margin_rad: float = Field(ge=1e-3, le=0.5, description="targets stay this far inside q_min/q_max")
    safety_factor: float = Field(ge=0.01, le=1.0, description="fraction of dq/ddq/dddq_max the limiter may use")
    max_tick_step_rad: float = Field(ge=1e-5, description="largest command change per 1 ms tick, every joint")
    max_target_step_rad: float = Field(gt=0.0, le=math.pi, description="largest target move per 10 Hz target")
    workspace_min_m: tuple[float, ...]
    workspace_max_m: tuple[float, ...]
    floor_z_m: float = Field(description="table height in the base frame: nothing of the arm may go below")
    link_clearance_m: float = Field(default=0.05, ge=0.0, le=0.5, description="extra height above the floor for link origins")
    tcp_offset_m: float = Field(default=PUBLISHED_TCP_OFFSET_M, ge=0.0, le=0.5)
    gripper_width_min_m: float = Field(ge=0.0)
    gripper_width_max_m: float = Field(gt=0.0, le=PUBLISHED_GRIPPER_WIDTH_MAX_M)
    gripper_force_max_n: float = Field(gt=0.0, le=140.0)

    _arrays: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("q_min_rad", "q_max_rad", "dq_max_rad_s", "ddq_max_rad_s2", "dddq_max_rad_s3")
    @classmethod
    def _seven(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != N_JOINTS:
            raise ValueError(f"must list {N_JOINTS} values, joint 1 first; {len(value)} given")
        return value

    @field_validator("workspace_min_m", "workspace_max_m")
    @classmethod
    def _three(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 3:
            raise ValueError(f"must be [x, y, z] in metres in the base frame; {len(value)} values given")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> PandaLimits:
        """Checks across fields; every problem is reported in one message."""
        problems: list[str] = []
        for field, ceiling in _CEILINGS.items():
            values = getattr(self, field)
            bad = [j + 1 for j, (v, top) in enumerate(zip(values, ceiling)) if not 0.0 < v <= top]
            if bad:
                problems.append(
                    f"{field}: joint(s) {', '.join(map(str, bad))} out of range; allowed per joint: "
                    f"0 < value <= {_fmt(ceiling)} (published Panda limits) (got {_fmt(values)})"
                )
        for j in range(N_JOINTS):
            lo, hi = self.q_min_rad[j], self.q_max_rad[j]
            if lo < PUBLISHED_Q_MIN_RAD[j]:
                problems.append(f"q_min_rad[{j}] (joint {j + 1}): below the published Panda limit {PUBLISHED_Q_MIN_RAD[j]:g} (got {lo:g})")
            if hi > PUBLISHED_Q_MAX_RAD[j]:
                problems.append(f"q_max_rad[{j}] (joint {j + 1}): above the published Panda limit {PUBLISHED_Q_MAX_RAD[j]:g} (got {hi:g})")
            if lo >= hi:
                problems.append(f"q_min_rad[{j}] (joint {j + 1}): must be below q_max_rad[{j}] {hi:g} (got {lo:g})")
            elif lo + self.position_margin_rad >= hi - self.position_margin_rad:
                problems.append(
                    f"position_margin_rad: leaves no range on joint {j + 1} ([{lo:g}, {hi:g}]); "
                    f"allowed: 0.001 <= value < {(hi - lo) / 2:g} (got {self.position_margin_rad:g})"
                )
        top_step = max(self.dq_max_rad_s) * DT_S
        if top_step > 0.0 and self.max_tick_step_rad > top_step:
            problems.append(
                f"max_tick_step_rad: a 1 ms step above dq_max * 1 ms is a velocity violation by itself; "
                f"allowed: 1e-05 <= value <= {top_step:g} (got {self.max_tick_step_rad:g})"
            )
        for axis, (lo, hi) in zip("xyz", zip(self.workspace_min_m, self.workspace_max_m)):
            if lo >= hi:
                problems.append(f"workspace_min_m.{axis}: must be below workspace_max_m.{axis} {hi:g} (got {lo:g})")
        if self.floor_z_m >= self.workspace_max_m[2]:
            problems.append(
                f"floor_z_m: must be below workspace_max_m.z {self.workspace_max_m[2]:g} (got {self.floor_z_m:g})"
            )
        if self.gripper_width_min_m >= self.gripper_width_max_m:
            problems.append(
                f"gripper_width_min_m: must be below gripper_width_max_m {self.gripper_width_max_m:g} "
                f"(got {self.gripper_width_min_m:g})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        arrays = {
            "q_min": self.q_min_rad,
            "q_max": self.q_max_rad,
            "dq_max": self.dq_max_rad_s,
            "ddq_max": self.ddq_max_rad_s2,
            "dddq_max": self.dddq_max_rad_s3,
            "q_lo": tuple(v + self.position_margin_rad for v in self.q_min_rad),
            "q_hi": tuple(v - self.position_margin_rad for v in self.q_max_rad),
            "workspace_lo": self.workspace_min_m,
            "workspace_hi": self.workspace_max_m,
            # What the 1 kHz limiter may use: the safety factor, the per-tick step cap, and
            # libfranka's kLimitEps = 1e-3 (rate_limiting.h) so that even safety_factor 1 stays
            # strictly below Control's limits.
            "dq_cap": tuple(
                min(self.safety_factor * v, self.max_tick_step_rad / DT_S) - _LIMIT_EPS for v in self.dq_max_rad_s
            ),
            "ddq_cap": tuple(self.safety_factor * v - _LIMIT_EPS for v in self.ddq_max_rad_s2),
            "dddq_cap": tuple(self.safety_factor * v - _LIMIT_EPS for v in self.dddq_max_rad_s3),
        }
        for key, values in arrays.items():
            array = np.asarray(values, dtype=np.float64)
            array.setflags(write=False)
            self._arrays[key] = array
        # Per joint (dq_cap, ddq_cap, dddq_cap, q_lo, q_hi, brake_lo, brake_hi) as Python floats: the
        # limiter's scalar loop reads these every 1 ms, where small-array numpy costs more than it
        # computes. Goals are clipped to [q_lo, q_hi]; braking is planned for the looser bounds halfway
        # into the margin, so that a goal on q_hi is reached exactly (the braking look-ahead keeps a
        # few micro-radians off its own bound) and discrete-time residue still stays off q_min/q_max.
        half = 0.5 * self.position_margin_rad
        self._arrays["joint_caps"] = tuple(
            (*caps, lo - half, hi + half)
            for caps, lo, hi in zip(
                zip(*(tuple(float(x) for x in self._arrays[k]) for k in ("dq_cap", "ddq_cap", "dddq_cap", "q_lo", "q_hi"))),
                self._arrays["q_lo"].tolist(),
                self._arrays["q_hi"].tolist(),
            )
        )

    def __eq__(self, other: object) -> bool:
        """Field-wise (the cached numpy views are derived, and arrays do not compare to one bool)."""
        return type(other) is type(self) and self.__dict__ == other.__dict__  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> PandaLimits:
        """A validated copy: pydantic's own model_copy skips validation and would keep stale arrays."""
        data = self.model_dump()
        data.update(update or {})
        return validate_panda_limits(data, "copy")

    # Read-only numpy views, built once: the 1 kHz limiter reads them every tick.
    q_min = property(lambda self: self._arrays["q_min"])
    q_max = property(lambda self: self._arrays["q_max"])
    dq_max = property(lambda self: self._arrays["dq_max"])
    ddq_max = property(lambda self: self._arrays["ddq_max"])
    dddq_max = property(lambda self: self._arrays["dddq_max"])
    q_lo = property(lambda self: self._arrays["q_lo"])
    q_hi = property(lambda self: self._arrays["q_hi"])
    workspace_lo = property(lambda self: self._arrays["workspace_lo"])
    workspace_hi = property(lambda self: self._arrays["workspace_hi"])
    dq_cap = property(lambda self: self._arrays["dq_cap"])
    ddq_cap = property(lambda self: self._arrays["ddq_cap"])
    dddq_cap = property(lambda self: self._arrays["dddq_cap"])
    joint_caps = property(lambda self: self._arrays["joint_caps"])


def parse_panda_limits(text: str, label: str = "<string>") -> PandaLimits:
    """Validate YAML ``text``; any problem is one ConfigError line naming ``label`` and the field."""
    return validate_panda_limits(yaml_mapping(text, "robot limits", label), label)


def validate_panda_limits(data: object, label: str = "<dict>") -> PandaLimits:
    """A mapping of fields -> PandaLimits; any problem is one ConfigError line naming ``label`` and the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"robot limits {label}: top level must be a mapping of fields (got {type(data).__name__})")
    try:
        return PandaLimits.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid robot limits {label}: {format_validation_error(exc, PandaLimits)}") from exc


def load_panda_limits(path: str | Path | None = None) -> PandaLimits:
    """Limits from a YAML file, or the shipped ``firmware_configs/robots/franka-panda.yaml`` when ``path`` is None."""
    if path is None:
        entry = resources.files(_PACKAGE).joinpath(*DEFAULT_FILE.split("/"))
        return parse_panda_limits(entry.read_text(encoding="utf-8"), DEFAULT_FILE)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"robot limits file {path} cannot be read: {exc}") from exc
    return parse_panda_limits(text, str(path))
