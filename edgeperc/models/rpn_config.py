"""The modified RPN's typed config (torch-free): anchors shaped for barcodes on a 256x256 copy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BarcodeRPNConfig(BaseModel):
    """Objectness + box regression for each anchor of a stride-8 grid on the low-res copy."""

    model_config = ConfigDict(extra="forbid")

    in_channels: int = Field(1, ge=1, le=3)
    input_hw: tuple[int, int] = (256, 256)
    base_width: int = Field(16, ge=2, le=128)
    stride_px: int = 8
    anchor_sizes_px: tuple[float, ...] = (6.0, 12.0, 24.0, 48.0)
    anchor_ratios: tuple[float, ...] = (0.4, 1.0, 2.5)  # width / height

    @field_validator("input_hw")
    @classmethod
    def _divisible(cls, hw: tuple[int, int]) -> tuple[int, int]:
        if any(side % 8 or side < 32 for side in hw):
            raise ValueError(f"input_hw {hw} must be >= 32 and divisible by 8 (stride-8 grid)")
        return hw

    @property
    def anchors_per_cell(self) -> int:
        return len(self.anchor_sizes_px) * len(self.anchor_ratios)
