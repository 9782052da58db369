"""Y-Net's typed config, torch-free so the runtime can read it without PyTorch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HeadName = Literal["mask", "depth", "log_var"]


class YNetConfig(BaseModel):
    """Width 64 / dilated 32 is the paper's network; width 8 trains on two CPU cores."""

    model_config = ConfigDict(extra="forbid")

    in_channels: int = Field(1, ge=1, le=4)
    input_hw: tuple[int, int] = (400, 400)
    base_width: int = Field(64, ge=2, le=128)
    dilated_width: int | None = Field(None, ge=2, le=128)
    heads: list[HeadName] = Field(default_factory=lambda: ["mask"])
    pyramid_kernels: tuple[int, ...] = (5, 3, 2)
    wrap_longitude: bool = Field(False, description="circular padding along W: equirectangular panoramas have no seam")
    upsample: Literal["transposed", "nearest"] = Field(
        "transposed",
        description="decoder upsampler: 2x2 transposed conv (the paper) or 1x1 conv + nearest 2x, which INT8 runtimes "
                    "keep in int8 (ONNX Runtime's CPU EP has no int8 ConvTranspose)",
    )

    @field_validator("input_hw")
    @classmethod
    def _divisible(cls, hw: tuple[int, int]) -> tuple[int, int]:
        if any(side % 16 or side < 32 for side in hw):
            raise ValueError(f"input_hw {hw} must be >= 32 and divisible by 16 (four 2x downsamplings)")
        return hw

    @model_validator(mode="after")
    def _heads(self) -> "YNetConfig":
        if not self.heads or len(set(self.heads)) != len(self.heads):
            raise ValueError(f"heads must be non-empty and unique, got {self.heads}")
        if ("log_var" in self.heads) != ("depth" in self.heads):
            raise ValueError("heads 'depth' and 'log_var' come together (App. B: depth + aleatoric uncertainty)")
        if self.dilated_width is None:
            self.dilated_width = max(2, self.base_width // 2)
        return self
