"""Device targets: one YAML per device, validated by a typed schema at load time.

A target says what a device can run (backend, GPU, TensorRT version, DLA cores, precisions),
how it is powered (nvpmodel modes) and what each pipeline may spend (latency, memory). Export,
build and runtime read it instead of re-typing device facts, and a wrong file fails at load
with one line naming the file, the field, the allowed values and the bad value.
"""

from __future__ import annotations

import types
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeperc.errors import ConfigError

Precision = Literal["fp32", "fp16", "int8", "int4"]
Pipeline = Literal["barcode", "policy", "depth", "lisat"]
Backend = Literal["onnxruntime", "tensorrt"]

_PACKAGE = "edgeperc.firmware_configs"
_SUFFIXES = (".yaml", ".yml")


def _quoted_version(value: Any) -> Any:
    """Versions must be quoted in YAML: an unquoted 10.10 is the float 10.1."""
    if value is not None and not isinstance(value, str):
        raise ValueError('must be a quoted string such as "10.3" (YAML reads unquoted 10.10 as the number 10.1)')
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSpec(_Strict):
    """The GPU as CUDA reports it: engines are only valid on the GPU they were built for."""

    name: str = Field(min_length=1, description="CUDA device name (cuDeviceGetName), e.g. 'Orin'")
    compute_capability: str = Field(pattern=r"^\d{1,2}\.\d$", description="major.minor as a quoted string, e.g. '8.7'")
    sm: int = Field(ge=10, le=200, description="compute capability as an int, e.g. 87")
    # Every Orin module reports the name "Orin"; the SM count is what tells AGX (16) from NX/Nano (8).
    multiprocessors: int | None = Field(default=None, ge=1, le=1024)

    _check_version = field_validator("compute_capability", mode="before")(_quoted_version)


class PowerMode(_Strict):
    """One nvpmodel mode (`sudo nvpmodel -m <id>`)."""

    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    budget_w: float = Field(gt=0, le=100)


class OnnxRuntimeOptions(_Strict):
    execution_providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    intra_op_threads: int = Field(default=0, ge=0, le=256, description="0 = ONNX Runtime's default")


class TensorRTOptions(_Strict):
    """Builder options; the ones that change the engine are part of the engine cache key."""

    builder_optimization_level: int = Field(default=3, ge=0, le=5)
    use_dla: bool = False
    dla_core: int | None = Field(default=None, ge=0, le=1)
    gpu_fallback: bool = True
    sparsity: bool = False
    timing_cache: bool = True
    max_batch: int = Field(default=8, ge=1, le=1024, description="max of the dynamic batch profile")


BudgetMs = Annotated[float, Field(gt=0, le=10000)]


def _number_is_p99(value: Any) -> Any:
    """A bare number in YAML is a p99 budget (what ``latency_budgets_ms: {barcode: 30}`` always meant)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"p99": value}
    return value


class StageBudget(_Strict):
    """p50 and/or p99 of one stage, in ms."""

    p50: BudgetMs | None = None
    p99: BudgetMs | None = None

    _number = model_validator(mode="before")(_number_is_p99)

    @model_validator(mode="after")
    def _some_limit(self) -> "StageBudget":
        if self.p50 is None and self.p99 is None:
            raise ValueError("a budget needs p50 and/or p99 (ms); got neither")
        if self.p50 is not None and self.p99 is not None and self.p50 > self.p99:
            raise ValueError(f"p50 must not exceed p99; allowed: p50 <= {self.p99:g} (got {self.p50:g})")
        return self

    def limits(self) -> dict[str, float]:
        """{'p50': ms, 'p99': ms} of the limits that are set."""
        return {name: value for name, value in (("p50", self.p50), ("p99", self.p99)) if value is not None}


class PipelineBudget(_Strict):
    """A pipeline's latency budget: end to end (p50 and/or p99) and optionally per stage.

    In YAML a value is either a number (the end-to-end p99, as before) or a mapping
    ``{p50: ms, p99: ms, stages: {stage: {p50: ms, p99: ms} | ms}}``. ``float(budget)`` and
    ``f"{budget:g}"`` give the headline figure (end-to-end p99, else p50) so code that read
    the old plain numbers keeps working.
    """

    p50: BudgetMs | None = None
    p99: BudgetMs | None = None
    stages: dict[str, StageBudget] = Field(default_factory=dict)

    _number = model_validator(mode="before")(_number_is_p99)

    @model_validator(mode="after")
    def _some_limit(self) -> "PipelineBudget":
        if self.p50 is None and self.p99 is None and not self.stages:
            raise ValueError("a budget needs p50, p99 and/or stages; got none of them")
        if self.p50 is not None and self.p99 is not None and self.p50 > self.p99:
            raise ValueError(f"p50 must not exceed p99; allowed: p50 <= {self.p99:g} (got {self.p50:g})")
        return self

    def limits(self) -> dict[str, float]:
        """End-to-end {'p50': ms, 'p99': ms} of the limits that are set."""
        return {name: value for name, value in (("p50", self.p50), ("p99", self.p99)) if value is not None}

    @property
    def headline_ms(self) -> float:
        """End-to-end p99, else p50, else the sum of the stages' p99 (or p50)."""
        if self.p99 is not None:
            return self.p99
        if self.p50 is not None:
            return self.p50
        return float(sum(stage.p99 if stage.p99 is not None else stage.p50 for stage in self.stages.values()))

    def describe(self) -> str:
        """Short text for tables, e.g. 'p50 400 / p99 900 (+4 stages)'."""
        parts = [f"{name} {value:g}" for name, value in self.limits().items()]
        text = " / ".join(parts) if parts else "stages only"
        return text + (f" (+{len(self.stages)} stages)" if self.stages else "")

    def __float__(self) -> float:
        return float(self.headline_ms)

    def __format__(self, spec: str) -> str:
        return format(self.headline_ms, spec) if spec else self.describe()


class TargetConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    device: str = Field(min_length=1)
    backend: Backend
    gpu: GpuSpec | None = None
    jetpack: str | None = None
    tensorrt_version: str | None = None
    cuda_version: str | None = None
    dla_cores: int = Field(default=0, ge=0, le=2)
    power_modes: list[PowerMode] = Field(default_factory=list)
    default_power_mode: int | None = None
    precisions: list[Precision] = Field(min_length=1)
    default_precision: Precision
    workspace_mib: int = Field(ge=16, le=65536)
    memory_budget_mib: int = Field(ge=64, le=262144)
    # Disk space edgeperc may use on the device for one release (models, libraries, configs):
    # `edgeperc bundle verify/stage` refuse a bundle whose files add up to more.
    storage_budget_mib: int = Field(default=1024, ge=1, le=1048576)
    # {pipeline: number (end-to-end p99 ms) | {p50, p99, stages: {stage: {p50, p99}}}}; see PipelineBudget
    latency_budgets_ms: dict[Pipeline, PipelineBudget] = Field(default_factory=dict)
    onnxruntime: OnnxRuntimeOptions = Field(default_factory=OnnxRuntimeOptions)
    tensorrt: TensorRTOptions = Field(default_factory=TensorRTOptions)

    _check_versions = field_validator("jetpack", "tensorrt_version", "cuda_version", mode="before")(_quoted_version)

    @model_validator(mode="after")
    def _cross_field(self) -> "TargetConfig":
        """Checks that span fields; all problems are reported together."""
        problems: list[str] = []
        if self.backend == "tensorrt" and self.gpu is None:
            problems.append("gpu: required when backend is 'tensorrt' (engines are built for one GPU); got None")
        if self.gpu is not None and self.gpu.sm != int(self.gpu.compute_capability.replace(".", "")):
            expected = int(self.gpu.compute_capability.replace(".", ""))
            problems.append(
                f"gpu.sm: must equal gpu.compute_capability {self.gpu.compute_capability} as an int; "
                f"allowed: {expected} (got {self.gpu.sm})"
            )
        if self.backend == "tensorrt" and self.tensorrt_version is None:
            problems.append("tensorrt_version: required when backend is 'tensorrt'; got None")
        if self.default_precision not in self.precisions:
            problems.append(
                f"default_precision: must be one of precisions; allowed: {', '.join(self.precisions)} "
                f"(got {self.default_precision!r})"
            )
        ids = [mode.id for mode in self.power_modes]
        if len(set(ids)) != len(ids):
            problems.append(f"power_modes: ids must be unique (got {ids})")
        if self.power_modes and self.default_power_mode not in ids:
            problems.append(
                f"default_power_mode: must be one of the power_modes ids; allowed: {', '.join(map(str, ids))} "
                f"(got {self.default_power_mode!r})"
            )
        if not self.power_modes and self.default_power_mode is not None:
            problems.append(f"default_power_mode: must be null when power_modes is empty (got {self.default_power_mode})")
        if self.tensorrt.use_dla and self.dla_cores == 0:
            problems.append("tensorrt.use_dla: the device has dla_cores 0; allowed: false (got true)")
        if self.tensorrt.dla_core is not None:
            if not self.tensorrt.use_dla:
                problems.append(
                    f"tensorrt.dla_core: set but tensorrt.use_dla is false; allowed: null (got {self.tensorrt.dla_core})"
                )
            elif self.tensorrt.dla_core >= self.dla_cores > 0:
                problems.append(
                    f"tensorrt.dla_core: must be below dla_cores; allowed: 0..{self.dla_cores - 1} "
                    f"(got {self.tensorrt.dla_core})"
                )
        if self.workspace_mib > self.memory_budget_mib:
            problems.append(
                f"workspace_mib: must not exceed memory_budget_mib; allowed: 16..{self.memory_budget_mib} "
                f"(got {self.workspace_mib})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def power_mode(self, mode_id: int | None = None) -> PowerMode | None:
        """The mode with ``mode_id`` (default: default_power_mode), or None when the target has none."""
        wanted = self.default_power_mode if mode_id is None else mode_id
        return next((mode for mode in self.power_modes if mode.id == wanted), None)


# --- error formatting -------------------------------------------------------------------------


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated/Optional; return the bare type and the constraint metadata found."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            for meta in args[1:]:
                metadata.extend(getattr(meta, "metadata", [meta]))
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        else:
            return annotation, metadata


def _describe_allowed(annotation: Any, metadata: list[Any]) -> str | None:
    if typing.get_origin(annotation) is Literal:
        return ", ".join(repr(value) for value in typing.get_args(annotation))
    low = high = None
    for meta in metadata:
        if isinstance(meta, Ge):
            low = f"{meta.ge} <= value"
        elif isinstance(meta, Gt):
            low = f"{meta.gt} < value"
        elif isinstance(meta, Le):
            high = f"value <= {meta.le}"
        elif isinstance(meta, Lt):
            high = f"value < {meta.lt}"
    if low and high:
        return f"{low} {high.removeprefix('value ')}"
    return low or high


def _allowed_at(model: type[BaseModel], loc: tuple[int | str, ...], error_type: str) -> str | None:
    """The allowed values or range of the schema position ``loc`` points at, when one is declared."""
    annotation: Any = model
    metadata: list[Any] = []
    description: str | None = None
    for index, part in enumerate(loc):
        annotation, _ = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                if error_type == "extra_forbidden":
                    return ", ".join(annotation.model_fields)
                return None
            annotation, metadata, description = field.annotation, list(field.metadata), field.description
            continue
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is list and args:
            annotation, metadata = args[0], []
        elif origin is dict and len(args) == 2:
            if index + 1 < len(loc) and loc[index + 1] == "[key]":
                return _describe_allowed(*_unwrap(args[0]))
            annotation, metadata = args[1], []
        else:
            return None
    if error_type == "extra_forbidden":
        return None
    if error_type == "string_pattern_mismatch":
        return description
    bare, inner = _unwrap(annotation)
    return _describe_allowed(bare, metadata + inner)


def format_validation_error(error: ValidationError, model: type[BaseModel] = TargetConfig) -> str:
    """One line: ``field.path: problem; allowed: ... (got value)`` per error, joined with '; '."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        if not loc:  # a model validator: its message already names the field and the values
            parts.append(msg)
            continue
        path = ".".join(str(p) for p in loc if p != "[key]")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_at(model, loc[:-1] + ("?",), "extra_forbidden")
            parts.append(f"{path}: unknown field; allowed fields: {allowed}")
            continue
        if loc[-1] == "[key]":
            msg = "unknown key"
        elif item["type"] == "literal_error":
            msg = "not an allowed value"
        elif item["type"] == "missing":
            msg = "required field is missing"
        allowed = _allowed_at(model, loc, item["type"])
        text = f"{path}: {msg}"
        if allowed and allowed not in msg:
            text += f"; allowed: {allowed}"
        if item["type"] != "missing":
            text += f" (got {item['input']!r})"
        parts.append(text)
    return "; ".join(parts)


# --- loading ----------------------------------------------------------------------------------


def list_targets() -> list[str]:
    """Names of the targets shipped in ``edgeperc.firmware_configs``, sorted."""
    folder = resources.files(_PACKAGE)
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIXES)
    )


def _read_source(name_or_path: str | Path) -> tuple[str, str]:
    """(label for messages, YAML text) of a file path or a packaged target name."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text.endswith(_SUFFIXES) or "/" in text or "\\" in text
    if looks_like_path or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"target config file not found: {path}")
        try:
            return str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"target config {path} cannot be read: {exc}") from exc
    folder = resources.files(_PACKAGE)
    for suffix in _SUFFIXES:
        entry = folder / f"{text}{suffix}"
        if entry.is_file():
            return f"{text} ({entry.name})", entry.read_text(encoding="utf-8")
    raise ConfigError(f"unknown target {text!r}; known targets: {', '.join(list_targets())} (or give a path to a YAML file)")


def yaml_mapping(text: str, kind: str, label: str) -> dict:
    """YAML ``text`` -> its top-level mapping; syntax errors, empty files and non-mappings are one
    ConfigError line naming ``kind`` (what the file is) and ``label`` (where it came from)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{kind} {label}: YAML syntax error{where}: {problem}") from exc
    if data is None:
        raise ConfigError(f"{kind} {label}: the file is empty; expected a mapping of fields")
    if not isinstance(data, dict):
        raise ConfigError(f"{kind} {label}: top level must be a mapping of fields (got {type(data).__name__})")
    return data


def parse_target(text: str, label: str = "<string>") -> TargetConfig:
    """Validate YAML ``text``; ``label`` names the source in the one-line ConfigError."""
    data = yaml_mapping(text, "target config", label)
    try:
        return TargetConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid target config {label}: {format_validation_error(exc)}") from exc


def load_target(name_or_path: str | Path) -> TargetConfig:
    """Load a target by packaged name (``orin-nx-16gb``) or by path to a YAML file."""
    label, text = _read_source(name_or_path)
    return parse_target(text, label)
