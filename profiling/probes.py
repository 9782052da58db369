"""Probes: process memory, CPU, temperature, GPU (NVML), Jetson power rails (jtop or sysfs) and
RAPL energy counters, each optional and detected at run time.

A probe that cannot run here says why (``ProbeUnavailable(reason)``) instead of failing, and
a probe that raises while sampling is marked unavailable with the reason while the others go
on: a profile never dies because a sensor did. ``ProbeSampler`` samples the open probes from a
background thread at a fixed interval (and synchronously at the edges of the timed loop, so
energy counters cover exactly that window).

Each ``sample()`` returns plain floats. Two names are special:
``energy_j`` (a cumulative counter, wrap-around already handled) and ``power_w`` (an
instantaneous reading); either makes the probe a power source for energy per inference.
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

PROBES_EXTRA = "pip install 'edgeperc[probes]'"


class ProbeUnavailable(Exception):
    """Raised by ``Probe.open`` with the reason the probe cannot run on this machine."""


class Probe(ABC):
    """``open()`` (raise ProbeUnavailable(reason)) -> ``sample()`` xN (from one thread) -> ``close()``."""

    name: str = "probe"
    source: str = ""  # what was actually read, set by open()

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def sample(self) -> dict[str, float]: ...

    def close(self) -> None:
        """Release handles; called once, also after a failure."""


def _read_text(path: str | Path) -> str:
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()


def _read_number(path: str | Path) -> float:
    return float(_read_text(path))


# --- process memory -----------------------------------------------------------------------------


def _proc_status_kib(field_name: str, path: str = "/proc/self/status") -> float | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


class ProcessMemoryProbe(Probe):
    """RSS and peak RSS of this process in MiB: psutil for RSS, /proc/self/status VmHWM (or
    getrusage ru_maxrss) for the peak; /proc alone when psutil is absent."""

    name = "memory"

    def open(self) -> None:
        try:
            import psutil

            self._process = psutil.Process()
            rss_source = "psutil"
        except ImportError:
            self._process = None
            if _proc_status_kib("VmRSS") is None:
                rss_source = None
            else:
                rss_source = "/proc/self/status VmRSS"
        if _proc_status_kib("VmHWM") is not None:
            self._peak = "proc"
            peak_source = "/proc/self/status VmHWM"
        else:
            try:
                import resource

                resource.getrusage(resource.RUSAGE_SELF)
                self._peak = "rusage"
                peak_source = "getrusage ru_maxrss"
            except (ImportError, OSError):
                self._peak = None
                peak_source = None
        if rss_source is None and peak_source is None:
            raise ProbeUnavailable("no psutil, no /proc/self/status and no getrusage")
        self.source = ", ".join(s for s in (rss_source, peak_source) if s)
        self._rss_source = rss_source

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self._process is not None:
            values["rss_mib"] = self._process.memory_info().rss / 2**20
        elif self._rss_source:
            values["rss_mib"] = (_proc_status_kib("VmRSS") or float("nan")) / 1024
        if self._peak == "proc":
            values["peak_rss_mib"] = (_proc_status_kib("VmHWM") or float("nan")) / 1024
        elif self._peak == "rusage":
            import resource
            import sys

            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            values["peak_rss_mib"] = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes vs KiB
        return values


# --- CPU --------------------------------------------------------------------------------------


def _cpuinfo_mhz(path: str = "/proc/cpuinfo") -> float | None:
    try:
        values = [float(line.split(":", 1)[1]) for line in Path(path).read_text().splitlines() if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        return None
    return float(np.mean(values)) if values else None


def _proc_stat_times(path: str = "/proc/stat") -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs."""
    try:
        first = Path(path).read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    numbers = [float(x) for x in first[1:]]
    idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0.0)
    return sum(numbers) - idle, sum(numbers)


class CpuProbe(Probe):
    """Process CPU (% of one core), system CPU (% of all cores) and mean core frequency (MHz).

    psutil when installed; otherwise os.times / /proc/stat / /proc/cpuinfo. In VMs and
    containers the frequency is often the nominal one, not the current one."""

    name = "cpu"

    def open(self) -> None:
        try:
            import psutil
        except ImportError:
            psutil = None
        self._psutil = psutil
        sources = []
        if psutil is not None:
            self._process = psutil.Process()
            self._process.cpu_percent(None)  # primes the counters: the first reading is 0
            psutil.cpu_percent(None)
            sources.append("psutil")
        else:
            self._last_times = (os.times(), time.monotonic(), _proc_stat_times())
            sources.append("os.times, /proc/stat")
        self._freq_source = None
        if psutil is not None:
            try:
                if psutil.cpu_freq() is not None:
                    self._freq_source = "psutil"
            except (OSError, NotImplementedError, AttributeError):
                pass
        if self._freq_source is None and _cpuinfo_mhz() is not None:
            self._freq_source = "/proc/cpuinfo"
        sources.append(f"frequency: {self._freq_source or 'unavailable'}")
        self.source = "; ".join(sources)

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self._psutil is not None:
            values["process_cpu_percent"] = self._process.cpu_percent(None)
            values["system_cpu_percent"] = self._psutil.cpu_percent(None)
        else:
            times, wall, stat = os.times(), time.monotonic(), _proc_stat_times()
            last_times, last_wall, last_stat = self._last_times
            if wall > last_wall:
                used = (times.user + times.system) - (last_times.user + last_times.system)
                values["process_cpu_percent"] = 100.0 * used / (wall - last_wall)
            if stat and last_stat and stat[1] > last_stat[1]:
                values["system_cpu_percent"] = 100.0 * (stat[0] - last_stat[0]) / (stat[1] - last_stat[1])
            self._last_times = (times, wall, stat)
        if self._freq_source == "psutil":
            freq = self._psutil.cpu_freq()
            if freq is not None:
                values["cpu_mhz"] = float(freq.current)
        elif self._freq_source == "/proc/cpuinfo":
            mhz = _cpuinfo_mhz()
            if mhz is not None:
                values["cpu_mhz"] = mhz
        return values


class ThermalProbe(Probe):
    """Hottest /sys/class/thermal zone in degrees C (shows thermal throttling next to latency)."""

    name = "thermal"

    def __init__(self, root: str | Path = "/sys/class/thermal") -> None:
        self.root = Path(root)

    def open(self) -> None:
        self._zones = sorted(self.root.glob("thermal_zone*/temp"))
        readable = []
        for zone in self._zones:
            try:
                _read_number(zone)
                readable.append(zone)
            except (OSError, ValueError):
                continue
        if not readable:
            raise ProbeUnavailable(f"no readable {self.root}/thermal_zone*/temp")
        self._zones = readable
        self.source = f"{self.root}/thermal_zone*/temp ({len(readable)} zones)"

    def sample(self) -> dict[str, float]:
        return {"max_temp_c": max(_read_number(zone) for zone in self._zones) / 1000.0}


# --- NVIDIA GPU (NVML) ------------------------------------------------------------------------


class NvmlProbe(Probe):
    """GPU memory used (device and this process), utilisation, power and the energy counter of
    one NVIDIA GPU through NVML (``nvidia-ml-py``, imported lazily). Discrete GPUs only: Jetsons
    have no NVML and use ``JetsonPowerProbe``."""

    name = "nvml"

    def __init__(self, device_index: int = 0) -> None:
        self.device_index = device_index
        self._nvml: Any = None

    def open(self) -> None:
        try:
            import pynvml  # the module of the nvidia-ml-py package
        except ImportError as exc:
            raise ProbeUnavailable(f"nvidia-ml-py is not installed ({PROBES_EXTRA})") from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded ...
            raise ProbeUnavailable(f"NVML cannot start: {exc} (no NVIDIA driver here?)") from exc
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            if count <= self.device_index:
                raise ProbeUnavailable(f"NVML sees {count} GPU(s); no device {self.device_index}")
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.device_index)
            name = pynvml.nvmlDeviceGetName(self._handle)
        except ProbeUnavailable:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise ProbeUnavailable(f"NVML device {self.device_index}: {exc}") from exc
        self._has_energy = self._supported(pynvml.nvmlDeviceGetTotalEnergyConsumption)
        self._has_power = self._supported(pynvml.nvmlDeviceGetPowerUsage)
        self._energy_start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) if self._has_energy else 0
        self.source = f"NVML {name if isinstance(name, str) else name.decode()} (device {self.device_index})"

    def _supported(self, call) -> bool:
        try:
            call(self._handle)
            return True
        except Exception:
            return False

    def sample(self) -> dict[str, float]:
        nvml, handle = self._nvml, self._handle
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        values = {"gpu_mem_used_mib": memory.used / 2**20,
                  "gpu_util_percent": float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)}
        try:
            pid = os.getpid()
            mine = [p.usedGpuMemory for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == pid and p.usedGpuMemory]
            if mine:
                values["gpu_mem_process_mib"] = sum(mine) / 2**20
        except Exception:  # not supported in containers without the host PID namespace
            pass
        if self._has_power:
            values["power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        if self._has_energy:
            values["energy_j"] = (nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - self._energy_start_mj) / 1000.0
        return values

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None


# --- Jetson power ------------------------------------------------------------------------------

TOTAL_RAIL_NAMES = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")  # the module's input rail (Orin, Xavier, Nano)


@dataclass
class Rail:
    name: str
    power_mw: Path | None = None  # iio: in_powerN_input (mW)
    voltage_mv: Path | None = None  # hwmon: inN_input (mV) x currN_input (mA)
    current_ma: Path | None = None

    def read_w(self) -> float:
        if self.power_mw is not None:
            return _read_number(self.power_mw) / 1000.0
        return _read_number(self.voltage_mv) * _read_number(self.current_ma) / 1e6


def find_ina3221_rails(root: str | Path = "/sys/bus/i2c/drivers") -> list[Rail]:
    """INA3221 power monitors of a Jetson: the hwmon layout of JetPack 5/6
    (``ina3221/<bus>/hwmon/hwmonK/inN_label, inN_input (mV), currN_input (mA)``) and the iio layout of
    JetPack 4 (``ina3221x/<bus>/iio:deviceK/rail_name_N, in_powerN_input (mW)``)."""
    root = Path(root)
    rails: list[Rail] = []
    for label in sorted(glob.glob(str(root / "ina3221*" / "*" / "hwmon" / "hwmon*" / "in*_label"))):
        match = re.search(r"in(\d+)_label$", label)
        folder = Path(label).parent
        voltage, current = folder / f"in{match.group(1)}_input", folder / f"curr{match.group(1)}_input"
        if voltage.exists() and current.exists():
            name = _read_text(label)
            if name and not name.lower().startswith("sum of"):  # JetPack 6 adds a "sum of shunt voltages" channel
                rails.append(Rail(name, voltage_mv=voltage, current_ma=current))
    for power in sorted(glob.glob(str(root / "ina3221*" / "*" / "iio:device*" / "in_power*_input"))):
        index = re.search(r"in_power(\d+)_input$", power).group(1)
        label = Path(power).parent / f"rail_name_{index}"
        name = _read_text(label) if label.exists() else f"rail{index}"
        rails.append(Rail(name, power_mw=Path(power)))
    return rails


class JetsonPowerProbe(Probe):
    """Board power on a Jetson: jtop (jetson-stats, its service must run) when installed, else the
    INA3221 rails in sysfs. ``power_w`` is the module input rail (VDD_IN) when there is one,
    otherwise the sum of the rails; each rail is reported as ``rail_<NAME>_w``."""

    name = "jetson-power"

    def __init__(self, sysfs_root: str | Path = "/sys/bus/i2c/drivers", use_jtop: bool = True) -> None:
        self.sysfs_root = Path(sysfs_root)
        self.use_jtop = use_jtop
        self._jtop: Any = None
        self._rails: list[Rail] = []

    def open(self) -> None:
        reasons = []
        if self.use_jtop:
            try:
                from jtop import jtop

                handle = jtop()
                handle.start()
                if not handle.ok():
                    handle.close()
                    raise RuntimeError("jtop service not answering")
                self._jtop = handle
                self.source = "jtop (jetson-stats)"
                return
            except ImportError:
                reasons.append(f"jetson-stats not installed ({PROBES_EXTRA})")
            except Exception as exc:
                reasons.append(f"jtop: {exc}")
        self._rails = find_ina3221_rails(self.sysfs_root)
        if not self._rails:
            reasons.append(f"no INA3221 rails under {self.sysfs_root}/ina3221*")
            raise ProbeUnavailable("; ".join(reasons) + " (not a Jetson)")
        for rail in self._rails:
            try:
                rail.read_w()
            except (OSError, ValueError) as exc:
                raise ProbeUnavailable(f"INA3221 rail {rail.name} not readable: {exc}") from exc
        self._total = next((r for r in self._rails if r.name in TOTAL_RAIL_NAMES), None)
        which = f"total = {self._total.name}" if self._total else "total = sum of rails"
        self.source = f"sysfs INA3221 ({', '.join(r.name for r in self._rails)}; {which})"

    def sample(self) -> dict[str, float]:
        if self._jtop is not None:
            power = self._jtop.power  # jetson-stats 4: {'rail': {name: {'power': mW, ...}}, 'tot': {'power': mW, ...}}
            values = {f"rail_{name}_w": rail["power"] / 1000.0 for name, rail in power.get("rail", {}).items() if "power" in rail}
            values["power_w"] = power["tot"]["power"] / 1000.0
            return values
        values = {f"rail_{rail.name}_w": rail.read_w() for rail in self._rails}
        values["power_w"] = values[f"rail_{self._total.name}_w"] if self._total else sum(values.values())
        return values

    def close(self) -> None:
        if self._jtop is not None:
            try:
                self._jtop.close()
            except Exception:
                pass
            self._jtop = None


# --- RAPL -----------------------------------------------------------------------------------


def counter_delta(previous: int, current: int, max_range: int) -> int:
    """Increase of a counter that wraps to 0 after ``max_range`` (RAPL energy_uj)."""
    if current >= previous:
        return current - previous
    return current + (max_range - previous)


@dataclass
class _RaplZone:
    name: str
    energy: Path
    max_range: int
    last: int = 0
    total_uj: int = 0


class RaplProbe(Probe):
    """x86 package energy from /sys/class/powercap/intel-rapl:N/energy_uj (top-level zones only,
    so cores and uncore are not counted twice), wrap-around handled with max_energy_range_uj.
    Since Linux 5.10 energy_uj is readable by root only."""

    name = "rapl"

    def __init__(self, root: str | Path = "/sys/class/powercap") -> None:
        self.root = Path(root)
        self._zones: list[_RaplZone] = []

    def open(self) -> None:
        folders = sorted(p for p in self.root.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        if not folders:
            raise ProbeUnavailable(f"no {self.root}/intel-rapl:* (no RAPL on this CPU, or not exposed to this container)")
        zones = []
        for folder in folders:
            try:
                name = _read_text(folder / "name") if (folder / "name").exists() else folder.name
                zone = _RaplZone(name, folder / "energy_uj", int(_read_number(folder / "max_energy_range_uj")))
                zone.last = int(_read_number(zone.energy))
            except PermissionError as exc:
                raise ProbeUnavailable(f"{folder}/energy_uj is not readable ({exc.strerror}; root only since Linux 5.10)") from exc
            except (OSError, ValueError) as exc:
                raise ProbeUnavailable(f"{folder}: {exc}") from exc
            zones.append(zone)
        self._zones = zones
        self.source = f"RAPL {', '.join(z.name for z in zones)}"

    def sample(self) -> dict[str, float]:
        for zone in self._zones:
            now = int(_read_number(zone.energy))
            zone.total_uj += counter_delta(zone.last, now, zone.max_range)
            zone.last = now
        return {"energy_j": sum(z.total_uj for z in self._zones) / 1e6}


def default_probes() -> list[Probe]:
    """Every probe edgeperc knows; those that cannot run here report why."""
    return [ProcessMemoryProbe(), CpuProbe(), ThermalProbe(), NvmlProbe(), JetsonPowerProbe(), RaplProbe()]


# --- sampling ----------------------------------------------------------------------------------


@dataclass
class ProbeRecord:
    """What one probe gave during a run."""

    name: str
    available: bool = False
    reason: str | None = None
    source: str = ""
    times_ns: list[int] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)

    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(times ns, values) of one metric over the samples that have it."""
        pairs = [(t, s[metric]) for t, s in zip(self.times_ns, self.samples) if metric in s]
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0)
        times, values = zip(*pairs)
        return np.asarray(times, np.int64), np.asarray(values, np.float64)

    def metrics(self) -> list[str]:
        names: dict[str, None] = {}
        for sample in self.samples:
            names.update(dict.fromkeys(sample))
        return list(names)


class ProbeSampler:
    """Samples probes every ``interval_s`` from a daemon thread (``start``/``stop``), and on demand
    with ``sample_now()``; a probe that raises is closed and marked unavailable with the reason."""

    def __init__(self, probes: Iterable[Probe], interval_s: float = 0.1, clock=time.perf_counter_ns) -> None:
        if interval_s <= 0:
            raise ValueError(f"probe interval must be > 0 s, got {interval_s}")
        self.probes = list(probes)
        names = [probe.name for probe in self.probes]
        if len(set(names)) != len(names):
            raise ValueError(f"probe names must be unique, got {names}")
        self.interval_s = interval_s
        self.records = {probe.name: ProbeRecord(probe.name) for probe in self.probes}
        self._active: list[Probe] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for probe in self.probes:
            record = self.records[probe.name]
            try:
                probe.open()
            except ProbeUnavailable as exc:
                record.reason = str(exc)
                continue
            except Exception as exc:  # a probe bug must not stop the profile either
                record.reason = f"failed to open: {type(exc).__name__}: {exc}"
                continue
            record.available, record.source = True, probe.source
            self._active.append(probe)
        self.sample_now()
        if self._active:
            self._thread = threading.Thread(target=self._loop, name="edgeperc-probes", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    def sample_now(self) -> None:
        with self._lock:
            for probe in list(self._active):
                record = self.records[probe.name]
                try:
                    values = probe.sample()
                except Exception as exc:
                    self._active.remove(probe)
                    record.available = False
                    record.reason = (f"failed mid-run after {len(record.samples)} sample(s): "
                                     f"{type(exc).__name__}: {exc}")
                    try:
                        probe.close()
                    except Exception:
                        pass
                    continue
                record.times_ns.append(self._clock())
                record.samples.append(values)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.interval_s))
        self.sample_now()
        with self._lock:
            for probe in self._active:
                try:
                    probe.close()
                except Exception:
                    pass
            self._active = []

    def __enter__(self) -> "ProbeSampler":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- summaries and energy ------------------------------------------------------------------------


def _window(times: np.ndarray, values: np.ndarray, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    keep = (times >= t0) & (times <= t1)
    return times[keep], values[keep]


def average_power_w(record: ProbeRecord, t0_ns: int, t1_ns: int) -> tuple[float, str] | None:
    """Mean power over [t0, t1] from the energy counter (preferred) or the integrated power
    readings; None when the window holds fewer than two readings."""
    if t1_ns <= t0_ns:
        return None
    times, energy = _window(*record.series("energy_j"), t0_ns, t1_ns)
    if times.size >= 2 and times[-1] > times[0]:
        return float((energy[-1] - energy[0]) / ((times[-1] - times[0]) / 1e9)), "energy counter"
    times, power = _window(*record.series("power_w"), t0_ns, t1_ns)
    if times.size >= 2 and times[-1] > times[0]:
        seconds = (times - times[0]) / 1e9
        integral = float(np.sum((power[1:] + power[:-1]) / 2 * np.diff(seconds)))  # trapezoid rule
        return integral / seconds[-1], "integrated power readings"
    return None


def summarise_probes(records: dict[str, ProbeRecord], t0_ns: int, t1_ns: int) -> dict[str, dict]:
    """{probe: {available, reason, source, samples, metrics: {metric: {mean, min, max, last}}}} over the
    timed window [t0, t1] (all samples when none fall inside it)."""
    out: dict[str, dict] = {}
    for name, record in records.items():
        entry: dict[str, Any] = {"available": record.available, "reason": record.reason, "source": record.source,
                                 "samples": len(record.samples), "metrics": {}}
        for metric in record.metrics():
            times, values = record.series(metric)
            inside = _window(times, values, t0_ns, t1_ns)[1]
            values = inside if inside.size else values
            entry["metrics"][metric] = {"mean": float(values.mean()), "min": float(values.min()),
                                        "max": float(values.max()), "last": float(values[-1])}
        out[name] = entry
    return out


def energy_per_inference(records: dict[str, ProbeRecord], t0_ns: int, t1_ns: int, mean_latency_ms: float) -> dict[str, Any]:
    """Energy per inference (mJ) for each power source = its mean power over the timed loop x the
    mean end-to-end latency. Whole-package/board power, not the marginal cost of one process.
    ``{"per_inference_mj": {source: mJ}, "mean_power_w": {...}, "reason": None | "n/a (...)"}``."""
    per_inference: dict[str, float] = {}
    power: dict[str, float] = {}
    method: dict[str, str] = {}
    reasons = []
    for name, record in records.items():
        has_power = any("energy_j" in s or "power_w" in s for s in record.samples)
        if not record.available and not has_power:
            if name in ("rapl", "nvml", "jetson-power"):
                reasons.append(f"{name}: {record.reason}")
            continue
        if not record.available:  # failed mid-run: a partial window would under-count
            reasons.append(f"{name}: {record.reason}")
            continue
        result = average_power_w(record, t0_ns, t1_ns)
        if result is None:
            if has_power:
                reasons.append(f"{name}: fewer than two readings in the timed loop (raise --iterations or lower the probe interval)")
            continue
        watts, how = result
        label = f"{name} ({record.source})"
        power[label], method[label] = watts, how
        per_inference[label] = watts * mean_latency_ms  # W x ms = mJ
    reason = None if per_inference else "n/a (" + ("; ".join(reasons) or "no power source") + ")"
    return {"per_inference_mj": per_inference, "mean_power_w": power, "method": method, "reason": reason}
