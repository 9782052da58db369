"""Probes degrade instead of failing: unavailable ones say why, one that breaks mid-run is marked
unavailable with the reason while the profile completes; energy per inference from a power source
(a fake Jetson sysfs tree, a fake RAPL tree with wrap-around), "n/a (reason)" without one."""

import sys

import numpy as np
import pytest

from edgeperc.profiling.probes import (
    CpuProbe,
    JetsonPowerProbe,
    NvmlProbe,
    ProbeSampler,
    ProbeUnavailable,
    ProcessMemoryProbe,
    RaplProbe,
    ThermalProbe,
    counter_delta,
    find_ina3221_rails,
)
from edgeperc.profiling.profiler import run_profile
from tests.profiling.conftest import make_jetson_sysfs


def test_memory_and_cpu_probes_read_this_process():
    for probe in (ProcessMemoryProbe(), CpuProbe()):
        probe.open()
        values = probe.sample()
        assert values and all(np.isfinite(v) for v in values.values()), values
        assert probe.source
    memory = ProcessMemoryProbe()
    memory.open()
    reading = memory.sample()
    assert reading["peak_rss_mib"] >= reading["rss_mib"] * 0.99 > 10


@pytest.mark.parametrize("probe", [RaplProbe(root="/nonexistent/powercap"), ThermalProbe(root="/nonexistent/thermal"),
                                   JetsonPowerProbe(sysfs_root="/nonexistent/i2c", use_jtop=False)])
def test_absent_hardware_is_reported_with_a_reason(probe):
    with pytest.raises(ProbeUnavailable) as info:
        probe.open()
    assert "/nonexistent" in str(info.value)


def test_nvml_without_library_or_gpu_says_why():
    try:
        NvmlProbe().open()
    except ProbeUnavailable as exc:
        assert "nvidia-ml-py" in str(exc) or "NVML" in str(exc)
    else:  # a machine with an NVIDIA GPU and nvidia-ml-py
        pytest.skip("NVML is available here")


def test_ina3221_discovery_and_total_rail(tmp_path):
    make_jetson_sysfs(tmp_path, {"VDD_IN": (5000, 1200), "VDD_CPU_GPU_CV": (5000, 400), "VDD_SOC": (5000, 300)})
    rails = find_ina3221_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]  # not the "sum of" channel
    probe = JetsonPowerProbe(sysfs_root=tmp_path, use_jtop=False)
    probe.open()
    values = probe.sample()
    assert values["power_w"] == pytest.approx(6.0)  # VDD_IN, not the sum (which would double count)
    assert values["rail_VDD_SOC_w"] == pytest.approx(1.5)
    assert "VDD_IN" in probe.source


def test_iio_layout_of_older_jetpacks(tmp_path):
    folder = tmp_path / "ina3221x" / "0-0040" / "iio:device0"
    folder.mkdir(parents=True)
    (folder / "rail_name_0").write_text("VDD_CPU\n")
    (folder / "in_power0_input").write_text("2500\n")
    (folder / "rail_name_1").write_text("VDD_GPU\n")
    (folder / "in_power1_input").write_text("500\n")
    probe = JetsonPowerProbe(sysfs_root=tmp_path, use_jtop=False)
    probe.open()
    assert probe.sample()["power_w"] == pytest.approx(3.0)  # no VDD_IN: the sum of rails


def test_counter_delta_wraps():
    assert counter_delta(100, 250, 1000) == 150
    assert counter_delta(900, 100, 1000) == 200


def _rapl_tree(root, energy_uj: int, max_range: int = 1_000_000):
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    sub = root / "intel-rapl:0:0"  # a sub-zone (cores): must not be counted again
    sub.mkdir(exist_ok=True)
    return zone / "energy_uj"


def test_rapl_counter_accumulates_across_wrap(tmp_path):
    energy = _rapl_tree(tmp_path, 900_000)
    probe = RaplProbe(root=tmp_path)
    probe.open()
    assert probe.source == "RAPL package-0"
    energy.write_text("950000\n")
    assert probe.sample()["energy_j"] == pytest.approx(0.05)
    energy.write_text("50000\n")  # wrapped at 1 J
    assert probe.sample()["energy_j"] == pytest.approx(0.15)


def test_energy_per_inference_from_jetson_rails(tmp_path, spin_runner):
    make_jetson_sysfs(tmp_path, {"VDD_IN": (5000, 1200)})  # constant 6 W
    run = run_profile("spin", spin_runner, iterations=12, warmup=1,
                      probes=[JetsonPowerProbe(sysfs_root=tmp_path, use_jtop=False)], probe_interval_s=0.005)
    energy = run.energy()
    assert energy["reason"] is None
    [(source, mj)] = energy["per_inference_mj"].items()
    assert source.startswith("jetson-power")
    assert mj == pytest.approx(6.0 * run.total_ms.mean(), rel=1e-6)  # W x ms = mJ


def test_energy_from_a_rapl_counter(tmp_path, spin_runner):
    energy_file = _rapl_tree(tmp_path, 0, max_range=10_000_000)
    state = {"uj": 0}

    def burn(index):  # the counter moves 20 mJ per iteration, wrapping at 10 J
        state["uj"] = (state["uj"] + 20_000) % 10_000_000
        energy_file.write_text(f"{state['uj']}\n")

    run = run_profile("spin", spin_runner, iterations=10, warmup=0, probes=[RaplProbe(root=tmp_path)],
                      probe_interval_s=1.0, on_iteration=burn)
    energy = run.energy()
    [(source, mj)] = energy["per_inference_mj"].items()
    assert "rapl" in source and energy["method"][source] == "energy counter"
    assert mj > 0 and np.isfinite(mj)


def test_no_power_source_gives_na_with_reasons(spin_runner):
    run = run_profile("spin", spin_runner, iterations=3, warmup=0,
                      probes=[ProcessMemoryProbe(), RaplProbe(root="/nonexistent/powercap")], probe_interval_s=0.01)
    energy = run.energy()
    assert energy["per_inference_mj"] == {}
    assert energy["reason"].startswith("n/a (") and "rapl" in energy["reason"] and "/nonexistent/powercap" in energy["reason"]


def test_probe_failing_mid_run_is_marked_unavailable_and_profile_completes(tmp_path, spin_runner):
    folder = make_jetson_sysfs(tmp_path, {"VDD_IN": (5000, 1000)})
    probe = JetsonPowerProbe(sysfs_root=tmp_path, use_jtop=False)  # a real probe whose sensor disappears

    def unplug(index):
        if index == 2:
            (folder / "curr1_input").unlink()

    run = run_profile("spin", spin_runner, iterations=8, warmup=0,
                      probes=[probe, ProcessMemoryProbe()], probe_interval_s=0.002, on_iteration=unplug)
    assert run.total_ms.shape == (8,)  # the profile completed
    probes = run.probes()
    assert probes["jetson-power"]["available"] is False
    assert "failed mid-run" in probes["jetson-power"]["reason"] and "FileNotFoundError" in probes["jetson-power"]["reason"]
    assert probes["jetson-power"]["samples"] >= 1  # it worked before the sensor went away
    assert probes["memory"]["available"] is True  # the others went on
    assert "jetson-power" in run.energy()["reason"]  # a partial window is not turned into an energy figure


def test_probe_names_must_be_unique():
    with pytest.raises(ValueError):
        ProbeSampler([CpuProbe(), CpuProbe()])


def test_memory_and_cpu_fall_back_to_proc_without_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` now raises ImportError
    memory, cpu = ProcessMemoryProbe(), CpuProbe()
    memory.open()
    cpu.open()
    assert "psutil" not in memory.source and "VmRSS" in memory.source
    assert memory.sample()["rss_mib"] > 10
    sum(i * i for i in range(200_000))  # some CPU time between the two readings
    assert "process_cpu_percent" in cpu.sample()
