"""Read what `trtexec --exportTimes=F.json` and `--exportProfile=F.json` write, to show the
network-only figures trtexec measures beside the whole-pipeline figures we measure.

--exportTimes (TensorRT 8.x-10.x, samples/common/sampleReporting.cpp exportJSONTrace): a list with
one record per timed inference (warm-ups excluded), times in ms::

    [ { "startEnqMs": .., "endEnqMs": .., "startH2dMs": .., "endH2dMs": .., "startComputeMs": ..,
        "endComputeMs": .., "startD2hMs": .., "endD2hMs": .., "h2dMs": .., "computeMs": ..,
        "d2hMs": .., "latencyMs": .. }, ... ]

``latencyMs`` is h2d + compute + d2h. Older releases (TensorRT 7) wrote ``startInMs/endInMs/
startOutMs/endOutMs/inMs/outMs`` and ``endToEndMs``; both spellings are read.

--exportProfile (per-layer, averaged over the profiling iterations)::

    [ { "count": N }, { "name": "layer", "timeMs": total, "averageMs": .., "medianMs": .., "percentage": .. }, ... ]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.errors import ConfigError
from edgeperc.profiling.files import read_json_file
from edgeperc.profiling.latency import summarise_latency

LEGACY_KEYS = {"startInMs": "startH2dMs", "endInMs": "endH2dMs", "startOutMs": "startD2hMs", "endOutMs": "endD2hMs",
               "inMs": "h2dMs", "outMs": "d2hMs"}
INTERVALS = {"h2d": "h2dMs", "compute": "computeMs", "d2h": "d2hMs", "latency": "latencyMs"}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigError(f"{where}: expected a number of ms, got {value!r}")
    return float(value)


def parse_times(records: list, label: str) -> dict[str, Any]:
    """exportTimes records -> {'kind': 'times', 'count', 'summaries': {interval: LatencySummary dict},
    'enqueue', 'end_to_end' (startH2d -> endD2h), 'throughput_per_s' (from the compute span)}."""
    series: dict[str, list[float]] = {name: [] for name in INTERVALS}
    extra: dict[str, list[float]] = {"enqueue": [], "end_to_end": []}
    compute_spans = []
    for index, raw in enumerate(records):
        if not isinstance(raw, dict):
            raise ConfigError(f"{label}: record {index} is {type(raw).__name__}, expected an object of times")
        record = {LEGACY_KEYS.get(key, key): value for key, value in raw.items()}
        where = f"{label}: record {index}"
        if "computeMs" not in record:
            if "startComputeMs" in record and "endComputeMs" in record:
                record["computeMs"] = _number(record["endComputeMs"], where) - _number(record["startComputeMs"], where)
            else:
                raise ConfigError(f"{where} has no computeMs (keys: {', '.join(sorted(raw)) or 'none'}); "
                                  "is this a trtexec --exportTimes file?")
        for name, key in INTERVALS.items():
            if key in record:
                series[name].append(_number(record[key], f"{where} {key}"))
        if "latencyMs" not in record and all(k in record for k in ("h2dMs", "computeMs", "d2hMs")):
            series["latency"].append(sum(_number(record[k], where) for k in ("h2dMs", "computeMs", "d2hMs")))
        if "startEnqMs" in record and "endEnqMs" in record:
            extra["enqueue"].append(_number(record["endEnqMs"], where) - _number(record["startEnqMs"], where))
        if "startH2dMs" in record and "endD2hMs" in record:
            extra["end_to_end"].append(_number(record["endD2hMs"], where) - _number(record["startH2dMs"], where))
        elif "endToEndMs" in record:
            extra["end_to_end"].append(_number(record["endToEndMs"], where))
        if "startComputeMs" in record and "endComputeMs" in record:
            compute_spans.append((_number(record["startComputeMs"], where), _number(record["endComputeMs"], where)))
    summaries = {name: summarise_latency(values).as_dict() for name, values in {**series, **extra}.items()
                 if len(values) == len(records)}
    throughput = None
    if len(compute_spans) >= 2:
        span_ms = compute_spans[-1][1] - compute_spans[0][0]
        throughput = len(compute_spans) / (span_ms / 1e3) if span_ms > 0 else None
    return {"kind": "times", "count": len(records), "summaries": summaries, "throughput_per_s": throughput}


def parse_profile(records: list, label: str) -> dict[str, Any]:
    """exportProfile records -> {'kind': 'profile', 'count', 'layers': [{name, averageMs, medianMs, percentage}],
    'total_average_ms'} with layers sorted slowest first."""
    head = records[0]
    count = head.get("count") if isinstance(head, dict) else None
    if not isinstance(count, (int, float)) or isinstance(count, bool):
        raise ConfigError(f"{label}: the first record must be {{\"count\": N}} in a trtexec --exportProfile file")
    layers = []
    for index, raw in enumerate(records[1:], start=1):
        where = f"{label}: record {index}"
        if not isinstance(raw, dict) or "name" not in raw or "averageMs" not in raw:
            raise ConfigError(f"{where}: expected {{name, timeMs, averageMs, ...}} (got {str(raw)[:80]})")
        layers.append({"name": str(raw["name"]), "averageMs": _number(raw["averageMs"], where),
                       "medianMs": _number(raw["medianMs"], where) if "medianMs" in raw else None,
                       "percentage": _number(raw["percentage"], where) if "percentage" in raw else None})
    if not layers:
        raise ConfigError(f"{label}: no layers after the count record")
    layers.sort(key=lambda layer: layer["averageMs"], reverse=True)
    return {"kind": "profile", "count": int(count), "layers": layers,
            "total_average_ms": float(sum(layer["averageMs"] for layer in layers))}


def read_trtexec_json(path: str | Path) -> dict[str, Any]:
    """Parse an --exportTimes or --exportProfile file (told apart by the leading count record);
    every problem is a ConfigError naming the file."""
    path = Path(path)
    label = f"trtexec JSON {path}"
    data = read_json_file(path, label, "write it with trtexec --exportTimes=FILE or --exportProfile=FILE")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{label}: expected a non-empty JSON list of records (got {type(data).__name__})")
    if isinstance(data[0], dict) and set(data[0]) == {"count"}:
        parsed = parse_profile(data, label)
    else:
        parsed = parse_times(data, label)
    parsed["path"] = str(path)
    return parsed
