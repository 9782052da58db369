"""trtexec JSON readers, baseline files, budgets in target YAML, JUnit XML: every malformed file is
a ConfigError naming the file and the problem."""

import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from edgeperc.errors import ConfigError
from edgeperc.profiling.budgets import Check, Skipped, baseline_checks, budget_checks, junit_xml, load_baseline
from edgeperc.profiling.latency import summarise_latency
from edgeperc.profiling.trtexec import read_trtexec_json
from edgeperc.targets import PipelineBudget, load_target, parse_target


def trtexec_times(n: int = 20) -> list[dict]:
    """What `trtexec --exportTimes` writes (TensorRT 10: sampleReporting.cpp exportJSONTrace)."""
    records, t = [], 0.0
    for i in range(n):
        h2d, compute, d2h = 0.05, 1.0 + 0.01 * i, 0.02
        records.append({"startEnqMs": t, "endEnqMs": t + 0.1, "startH2dMs": t + 0.1, "endH2dMs": t + 0.1 + h2d,
                        "startComputeMs": t + 0.1 + h2d, "endComputeMs": t + 0.1 + h2d + compute,
                        "startD2hMs": t + 0.1 + h2d + compute, "endD2hMs": t + 0.1 + h2d + compute + d2h,
                        "h2dMs": h2d, "computeMs": compute, "d2hMs": d2h, "latencyMs": h2d + compute + d2h})
        t += 2.0
    return records


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_export_times_are_summarised(tmp_path):
    parsed = read_trtexec_json(write(tmp_path, "times.json", trtexec_times()))
    assert parsed["kind"] == "times" and parsed["count"] == 20
    s = parsed["summaries"]
    assert s["compute"]["p50_ms"] == pytest.approx(1.095)
    assert s["latency"]["max_ms"] == pytest.approx(0.05 + 1.19 + 0.02)
    assert set(s) >= {"h2d", "compute", "d2h", "latency", "enqueue", "end_to_end"}
    assert parsed["throughput_per_s"] == pytest.approx(20 / (39.19 / 1e3), rel=1e-6)  # first compute start -> last compute end


def test_legacy_trtexec_names_are_read(tmp_path):
    legacy = [{"startInMs": 0, "endInMs": 0.1, "startComputeMs": 0.1, "endComputeMs": 1.1, "startOutMs": 1.1,
               "endOutMs": 1.2, "inMs": 0.1, "computeMs": 1.0, "outMs": 0.1, "latencyMs": 1.2, "endToEndMs": 1.2}] * 3
    parsed = read_trtexec_json(write(tmp_path, "old.json", legacy))
    assert parsed["summaries"]["h2d"]["p50_ms"] == pytest.approx(0.1)
    assert parsed["summaries"]["end_to_end"]["p50_ms"] == pytest.approx(1.2)


def test_export_profile_is_ranked(tmp_path):
    profile = [{"count": 50}, {"name": "conv1", "timeMs": 10, "averageMs": 0.2, "medianMs": 0.19, "percentage": 20},
               {"name": "conv2", "timeMs": 40, "averageMs": 0.8, "medianMs": 0.79, "percentage": 80}]
    parsed = read_trtexec_json(write(tmp_path, "profile.json", profile))
    assert parsed["kind"] == "profile" and parsed["count"] == 50
    assert [layer["name"] for layer in parsed["layers"]] == ["conv2", "conv1"]
    assert parsed["total_average_ms"] == pytest.approx(1.0)


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ({"latencyMs": 1}, "non-empty JSON list"),
    ([], "non-empty JSON list"),
    ([{"foo": 1}], "no computeMs"),
    ([{"computeMs": "fast"}], "expected a number"),
    ([3], "record 0"),
    ([{"count": 5}], "no layers"),
    ([{"count": 5}, {"timeMs": 1}], "record 1"),
])
def test_malformed_trtexec_files(tmp_path, content, words):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(ConfigError) as info:
        read_trtexec_json(path)
    assert "bad.json" in str(info.value) and words in str(info.value)


def test_missing_trtexec_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_trtexec_json(tmp_path / "absent.json")


GOOD_BASELINE = {"schema": "edgeperc.latency-baseline/1", "pipelines": {
    "barcode": {"end_to_end": {"p50": 400, "p99": 800}, "stages": {"decode": {"p50": 60, "p99": 100}}}}}


def test_baseline_loads_and_flags_regressions(tmp_path):
    baseline = load_baseline(write(tmp_path, "base.json", GOOD_BASELINE))
    total = summarise_latency([450.0, 470.0, 500.0])  # p50 470 <= 400 * 1.2 = 480
    stages = {"decode": summarise_latency([100.0, 110.0, 120.0])}  # p50 110 > 72: a regression
    checks = {c.name: c for c in baseline_checks("barcode", baseline["barcode"], 0.2, total, stages)}
    assert checks["end_to_end.p50 (baseline)"].passed
    assert not checks["decode.p50 (baseline)"].passed
    assert "baseline 60.0 ms" in checks["decode.p50 (baseline)"].message()


def test_a_microsecond_baseline_gets_an_absolute_slack():
    """20 % of 0.02 ms is timer noise: the limit is never tighter than BASELINE_SLACK_MS above it."""
    from edgeperc.profiling.budgets import BASELINE_SLACK_MS

    baseline = {"end_to_end": {"p50": 0.02}}
    ok = baseline_checks("barcode", baseline, 0.2, summarise_latency([0.02 + BASELINE_SLACK_MS * 0.9] * 3), {})
    slow = baseline_checks("barcode", baseline, 0.2, summarise_latency([0.02 + BASELINE_SLACK_MS * 1.1] * 3), {})
    assert ok[0].passed and not slow[0].passed
    assert ok[0].limit_ms == pytest.approx(0.02 + BASELINE_SLACK_MS)


@pytest.mark.parametrize("content, words", [
    ("[1, 2", "not valid JSON"),
    ({"pipelines": {}}, "schema"),
    ({"schema": "edgeperc.latency-baseline/1", "pipelines": {}}, "non-empty"),
    ({"schema": "edgeperc.latency-baseline/1", "pipelines": {"barcode": {"stages": {}}}}, "end_to_end"),
    ({"schema": "edgeperc.latency-baseline/1", "pipelines": {"barcode": {"end_to_end": {"p50": -3}}}}, "positive number"),
    ({"schema": "edgeperc.latency-baseline/1", "pipelines": {"barcode": {"end_to_end": {"p50": 1}, "stages": {"x": 5}}}}, "stages.x"),
])
def test_malformed_baseline(tmp_path, content, words):
    with pytest.raises(ConfigError) as info:
        load_baseline(write(tmp_path, "base.json", content))
    assert "base.json" in str(info.value) and words in str(info.value)


def test_budget_values_number_or_mapping():
    host = load_target("x86-scanner-host")
    barcode = host.latency_budgets_ms["barcode"]
    assert barcode.limits() == {"p50": 1500, "p99": 3000}
    assert set(barcode.stages) == {"proposals", "segmentation", "boxes", "decode"}
    policy = host.latency_budgets_ms["policy"]  # a plain number stays the end-to-end p99
    assert policy.limits() == {"p99": 50} and float(policy) == 50 and f"{policy:g}" == "50"
    assert PipelineBudget.model_validate({"stages": {"decode": 5}}).stages["decode"].p99 == 5


@pytest.mark.parametrize("budget, words", [
    ({"p50": 10, "p99": 5}, "p50 must not exceed p99"),
    ({"stages": {"decode": {"p90": 3}}}, "latency_budgets_ms.barcode.stages.decode.p90: unknown field"),
    ({}, "needs p50, p99 and/or stages"),
    (-1, "latency_budgets_ms.barcode.p99"),
])
def test_bad_budgets_name_the_field(budget, words):
    text = yaml.safe_dump({"name": "t", "device": "d", "backend": "onnxruntime", "precisions": ["fp32"],
                           "default_precision": "fp32", "workspace_mib": 64, "memory_budget_mib": 128,
                           "latency_budgets_ms": {"barcode": budget}})
    with pytest.raises(ConfigError) as info:
        parse_target(text, "t.yaml")
    assert words in str(info.value)


def test_budget_for_unknown_stage_is_a_config_error():
    budget = PipelineBudget.model_validate({"stages": {"decoding": 10}})
    with pytest.raises(ConfigError, match="unknown stage.*decoding.*proposals"):
        budget_checks("barcode", budget, summarise_latency([1.0]), {"proposals": summarise_latency([1.0])})


def test_junit_has_one_case_per_check_and_failures_carry_figures():
    checks = [Check("barcode", "end_to_end", "p99", "budget", 120.0, 100.0, 100.0),
              Check("barcode", "decode", "p50", "budget", 10.0, 50.0, 50.0)]
    text = junit_xml("edgeperc.latency.host", checks, [Skipped("policy", "not available yet")], {"target": "host"})
    root = ET.fromstring(text.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["end_to_end.p99 (budget)", "decode.p50 (budget)", "pipeline"]
    failure = cases[0].find("failure")
    assert "120.0 ms > budget 100 ms" in failure.get("message") and "end_to_end" in failure.get("message")
    assert cases[2].find("skipped").get("message") == "not available yet"
