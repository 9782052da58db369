"""Shared helpers of the profiler tests: a cheap runner (no models) and a fake Jetson sysfs tree."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgeperc.profiling.pipelines import PipelineRunner


class SpinRunner(PipelineRunner):
    """Two stages of known, small cost: 'prepare' sleeps, 'compute' does a numpy reduction."""

    stages = ("prepare", "compute")

    def __init__(self, sleep_s: float = 0.002, with_peer: bool = False) -> None:
        super().__init__()
        self.sleep_s = sleep_s
        self.data = np.random.default_rng(0).standard_normal(50_000)
        self.with_peer = with_peer
        self.info["inputs"] = "one synthetic vector"

    @property
    def input_count(self) -> int:
        return 1

    def run(self, index, timer):
        with timer.stage("prepare"):
            time.sleep(self.sleep_s)
        with timer.stage("compute"):
            return float(np.sort(self.data)[index % 10])

    def peers(self):
        return {"plain numpy": lambda index: float(np.sort(self.data)[0])} if self.with_peer else {}


@pytest.fixture()
def spin_runner() -> SpinRunner:
    return SpinRunner()


def make_jetson_sysfs(root: Path, rails: dict[str, tuple[float, float]]) -> Path:
    """JetPack 5/6 hwmon layout: ina3221/1-0040/hwmon/hwmon3/in{N}_label, in{N}_input (mV), curr{N}_input (mA)."""
    folder = root / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    folder.mkdir(parents=True)
    for index, (name, (millivolt, milliamp)) in enumerate(rails.items(), start=1):
        (folder / f"in{index}_label").write_text(name + "\n")
        (folder / f"in{index}_input").write_text(f"{millivolt:g}\n")
        (folder / f"curr{index}_input").write_text(f"{milliamp:g}\n")
    (folder / "in7_label").write_text("sum of shunt voltages\n")  # JetPack 6 adds it; not a rail
    return folder
