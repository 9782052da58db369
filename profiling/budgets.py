"""Latency test: measured p50/p99 per stage and end to end against a target's budgets and,
optionally, a stored baseline; JUnit XML for CI.

Baseline file (written by ``edgeperc latency-test --write-baseline FILE``)::

    {"schema": "edgeperc.latency-baseline/1", "target": "x86-scanner-host", "machine": {...},
     "pipelines": {"barcode": {"end_to_end": {"p50": 410.2, "p99": 702.9},
                               "stages": {"segmentation": {"p50": 300.1, "p99": 580.0}, ...}}}}

A measured statistic fails the baseline when it exceeds baseline x (1 + tolerance).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.errors import ConfigError
from edgeperc.profiling.files import read_json_file
from edgeperc.profiling.latency import LatencySummary
from edgeperc.profiling.profiler import END_TO_END

BASELINE_SCHEMA = "edgeperc.latency-baseline/1"
STATISTICS = ("p50", "p99")


@dataclass(frozen=True)
class Check:
    """One pipeline x stage x statistic against one limit (a budget or a baseline)."""

    pipeline: str
    stage: str  # a stage name or "end_to_end"
    statistic: str  # "p50" | "p99"
    kind: str  # "budget" | "baseline"
    measured_ms: float
    limit_ms: float  # the budget, or baseline x (1 + tolerance)
    reference_ms: float  # the budget, or the baseline value

    @property
    def passed(self) -> bool:
        return self.measured_ms <= self.limit_ms

    @property
    def name(self) -> str:
        return f"{self.stage}.{self.statistic} ({self.kind})"

    def message(self) -> str:
        relation = "<=" if self.passed else ">"
        if self.kind == "budget":
            return (f"{self.pipeline} {self.stage} {self.statistic} {self.measured_ms:.1f} ms {relation} "
                    f"budget {self.limit_ms:g} ms")
        return (f"{self.pipeline} {self.stage} {self.statistic} {self.measured_ms:.1f} ms {relation} baseline "
                f"{self.reference_ms:.1f} ms + tolerance = {self.limit_ms:.1f} ms")


@dataclass(frozen=True)
class Skipped:
    pipeline: str
    reason: str


def check_budget_stages(pipeline: str, budget, stages) -> None:
    """A budget for a stage the pipeline does not have is a ConfigError (a typo would otherwise pass forever)."""
    unknown = sorted(set(budget.stages) - set(stages))
    if unknown:
        raise ConfigError(f"latency_budgets_ms.{pipeline}.stages: unknown stage(s) {', '.join(unknown)}; "
                          f"the {pipeline} pipeline has: {', '.join(stages)}")


def budget_checks(pipeline: str, budget, end_to_end: LatencySummary, stages: dict[str, LatencySummary]) -> list[Check]:
    """Checks of one PipelineBudget (edgeperc.targets) against measured summaries."""
    check_budget_stages(pipeline, budget, stages)
    checks = [Check(pipeline, END_TO_END, stat, "budget", end_to_end.statistic(stat), limit, limit)
              for stat, limit in budget.limits().items()]
    for stage, stage_budget in budget.stages.items():
        checks += [Check(pipeline, stage, stat, "budget", stages[stage].statistic(stat), limit, limit)
                   for stat, limit in stage_budget.limits().items()]
    return checks


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: expected a positive number of ms, got {value!r}")
    return float(value)


def load_baseline(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    """{pipeline: {stage or 'end_to_end': {'p50': ms, 'p99': ms}}}; ConfigError naming the file and
    the bad entry for anything malformed."""
    path = Path(path)
    label = f"baseline {path}"
    data = read_json_file(path, label, "write one with --write-baseline FILE")
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{label}: expected an object with schema {BASELINE_SCHEMA!r} (got {got!r})")
    pipelines = data.get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        raise ConfigError(f"{label}: 'pipelines' must be a non-empty object of pipeline -> figures")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for pipeline, entry in pipelines.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("end_to_end"), dict):
            raise ConfigError(f"{label}: pipelines.{pipeline} needs an 'end_to_end' object of p50/p99 ms")
        stages = entry.get("stages", {})
        if not isinstance(stages, dict):
            raise ConfigError(f"{label}: pipelines.{pipeline}.stages must be an object of stage -> p50/p99 ms")
        figures = {END_TO_END: entry["end_to_end"], **stages}
        out[pipeline] = {}
        for stage, stats in figures.items():
            where = f"{label}: pipelines.{pipeline}.{'end_to_end' if stage == END_TO_END else 'stages.' + stage}"
            if not isinstance(stats, dict) or not set(stats) & set(STATISTICS):
                raise ConfigError(f"{where}: expected {{p50: ms, p99: ms}}, got {stats!r}")
            out[pipeline][stage] = {stat: _positive(stats[stat], f"{where}.{stat}") for stat in STATISTICS if stat in stats}
    return out


# A relative tolerance means nothing for a stage that takes microseconds (the scanner's proposals on
# a frame small enough to skip the RPN): a baseline limit is never tighter than this above it.
BASELINE_SLACK_MS = 2.0


def baseline_checks(pipeline: str, baseline: dict[str, dict[str, float]], tolerance: float,
                    end_to_end: LatencySummary, stages: dict[str, LatencySummary]) -> list[Check]:
    """Regression checks against one pipeline's baseline figures (stages absent from this run are ignored)."""
    measured = {END_TO_END: end_to_end, **stages}
    checks = []
    for stage, stats in baseline.items():
        if stage not in measured:
            continue
        for stat, reference in stats.items():
            limit = max(reference * (1 + tolerance), reference + BASELINE_SLACK_MS)
            checks.append(Check(pipeline, stage, stat, "baseline", measured[stage].statistic(stat), limit, reference))
    return checks


def baseline_record(target: str, machine: dict, results: dict[str, tuple[LatencySummary, dict[str, LatencySummary]]]) -> dict:
    """The baseline file's content for this run's measurements."""
    return {
        "schema": BASELINE_SCHEMA, "target": target, "machine": machine,
        "pipelines": {
            pipeline: {"end_to_end": {s: round(total.statistic(s), 3) for s in STATISTICS},
                       "stages": {name: {s: round(summary.statistic(s), 3) for s in STATISTICS} for name, summary in stages.items()}}
            for pipeline, (total, stages) in results.items()
        },
    }


def junit_xml(suite: str, checks: list[Check], skipped: list[Skipped], properties: dict[str, str],
              seconds: dict[str, float] | None = None) -> str:
    """JUnit XML (the subset Jenkins, GitLab and GitHub reporters read): one testcase per pipeline x
    stage x statistic x (budget | baseline); a failure carries measured vs limit; skipped pipelines
    are skipped testcases with the reason."""
    seconds = seconds or {}
    failures = sum(not c.passed for c in checks)
    root = ET.Element("testsuites", name="edgeperc latency-test", tests=str(len(checks) + len(skipped)),
                      failures=str(failures), errors="0", skipped=str(len(skipped)))
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks) + len(skipped)),
                            failures=str(failures), errors="0", skipped=str(len(skipped)),
                            time=f"{sum(seconds.values()):.3f}")
    props = ET.SubElement(element, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=str(value))
    for check in checks:
        case = ET.SubElement(element, "testcase", classname=f"{suite}.{check.pipeline}", name=check.name, time="0")
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message(), type=f"{check.kind}_exceeded")
            failure.text = (f"measured {check.statistic} = {check.measured_ms:.3f} ms; limit = {check.limit_ms:.3f} ms"
                            + (f" (baseline {check.reference_ms:.3f} ms)" if check.kind == "baseline" else ""))
        else:
            ET.SubElement(case, "system-out").text = check.message()
    for skip in skipped:
        case = ET.SubElement(element, "testcase", classname=f"{suite}.{skip.pipeline}", name="pipeline", time="0")
        ET.SubElement(case, "skipped", message=skip.reason)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
