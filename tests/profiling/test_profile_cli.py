"""`edgeperc profile` and `edgeperc latency-test` end to end through edgeperc.cli.main: reports and
plots written, budgets passed and breached, and every bad input a one-line error with its exit code."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeperc.cli import main
from edgeperc.profiling import pipelines
from edgeperc.profiling.pipelines import register_pipeline
from tests.conftest import WEIGHTS
from tests.profiling.conftest import SpinRunner

CONFIG_DIR = Path(__file__).resolve().parents[2] / "firmware_configs"
SMALL = ["--frame-size", "2048", "--input-count", "1"]  # one 2048 px frame: a few hundred ms per scan here
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5000, path


@pytest.fixture()
def spin_pipeline():
    """A registered pipeline without models: how `depth` will be added."""
    register_pipeline("spin-test", lambda target, inputs, options: SpinRunner(with_peer=options.peers),
                      description="test pipeline")
    yield "spin-test"
    pipelines._REGISTRY.pop("spin-test")


def test_profile_registered_pipeline_writes_json_report_and_plots(spin_pipeline, tmp_path, capsys):
    out = tmp_path / "prof"
    assert run_cli("profile", spin_pipeline, "--iterations", 8, "--warmup", 1, "--out", out,
                   "--probe-interval-ms", 5) == 0
    data = json.loads((out / "profile.json").read_text())
    assert {"schema", "pipeline", "machine", "stages", "end_to_end_ms", "stage_ms", "peers", "probes", "energy",
            "samples_ms", "plots", "throughput_per_s"} <= set(data)
    assert data["stages"] == ["prepare", "compute"] and len(data["samples_ms"]["end_to_end"]) == 8
    assert {"p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms", "mean_ms", "std_ms", "jitter_ms"} <= set(data["end_to_end_ms"])
    assert data["stage_ms"]["prepare"]["p50_ms"] >= 1.5  # it sleeps 2 ms
    assert "plain numpy" in data["peers"]
    assert data["probes"]["memory"]["available"] and data["probes"]["rapl"]["reason"]
    report = (out / "report.md").read_text()
    assert "| **end to end** |" in report and "## Probes" in report and "Energy per inference" in report
    for name in ("latency_hist_cdf.png", "stages.png", "latency_over_time.png"):
        assert name in data["plots"].values()
        assert_png(out / name)


def test_profile_barcode(tmp_path, capsys):
    out = tmp_path / "barcode"
    assert run_cli("profile", "barcode", "--iterations", 3, "--warmup", 0, "--out", out, *SMALL) == 0
    data = json.loads((out / "profile.json").read_text())
    assert data["stages"] == ["proposals", "segmentation", "boxes", "decode"]
    assert data["end_to_end_ms"]["count"] == 3
    assert data["end_to_end_ms"]["p50_ms"] >= data["stage_ms"]["segmentation"]["p50_ms"] > 0
    assert "zxing-cpp (whole frame)" in data["peers"]  # the peer, on the same frame, interleaved
    assert "decoded per input (edgeperc)" in data["outputs"]
    assert "zxing-cpp" in (out / "report.md").read_text()
    for name in data["plots"].values():
        assert_png(out / name)
    assert "end to end" in capsys.readouterr().out


def test_profile_model_beside_trtexec(tmp_path, capsys):
    times = tmp_path / "times.json"
    times.write_text(json.dumps([{"startH2dMs": i, "endH2dMs": i + 0.1, "startComputeMs": i + 0.1, "endComputeMs": i + 1.1,
                                  "startD2hMs": i + 1.1, "endD2hMs": i + 1.2, "h2dMs": 0.1, "computeMs": 1.0, "d2hMs": 0.1,
                                  "latencyMs": 1.2} for i in range(5)]))
    out = tmp_path / "model"
    assert run_cli("profile", "model", WEIGHTS / "ynet-barcode-w8.onnx", "--iterations", 5, "--out", out,
                   "--trtexec-times", times, "--no-plots", "--no-probes") == 0
    data = json.loads((out / "profile.json").read_text())
    assert data["stages"] == ["input_checks", "network"] and data["info"]["backend"] == "onnxruntime"
    assert any(note.startswith("TensorRT absent") for note in data["notes"])  # no TensorRT on this machine
    assert data["trtexec"][0]["summaries"]["compute"]["p50_ms"] == pytest.approx(1.0)
    report = (out / "report.md").read_text()
    assert "trtexec (network only)" in report and "edgeperc network stage" in report


@pytest.mark.parametrize("args, code, words", [
    (["profile", "nonsense"], 3, ["unknown pipeline 'nonsense'", "available:", "barcode", "model"]),
    (["profile", "lisat", "--inputs", "."], 3, ["--inputs", "generates its aerial scenes"]),
    (["profile", "policy", "--inputs", "."], 3, ["--inputs", "generates its observations"]),
    (["profile", "model"], 3, ["needs the model path"]),
    (["profile", "model", "absent.onnx"], 4, ["model not found"]),
    (["profile", "barcode", "extra.onnx"], 3, ["only taken by `profile model`"]),
    (["profile", "model", str(WEIGHTS / "ynet-barcode-w8.onnx"), "--trtexec-times", "missing-times.json"], 3,
     ["missing-times.json", "not found"]),
    (["profile", "barcode", "--inputs", "no-such-folder"], 3, ["--inputs", "no-such-folder"]),
])
def test_profile_bad_input(args, code, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)


# --- latency-test ----------------------------------------------------------------------------


def target_yaml(tmp_path, budgets, name="budgeted.yaml") -> Path:
    data = yaml.safe_load((CONFIG_DIR / "x86-scanner-host.yaml").read_text())
    data["latency_budgets_ms"] = budgets
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


GENEROUS = {"barcode": {"p50": 9000, "p99": 10000, "stages": {s: {"p50": 9000, "p99": 10000} for s in
                                                              ("proposals", "segmentation", "boxes", "decode")}},
            "policy": 5000, "lisat": 5000}


def test_latency_test_passes_writes_junit_and_baseline(tmp_path, capsys):
    junit, base = tmp_path / "junit.xml", tmp_path / "baseline.json"
    code = run_cli("latency-test", "--target", target_yaml(tmp_path, GENEROUS), "--iterations", 2, "--warmup", 0,
                   "--junit", junit, "--write-baseline", base, *SMALL)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "latency-test passed" in out and "skipped" not in out
    suite = ET.fromstring(junit.read_text().split("\n", 1)[1]).find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("failures") == "0" and suite.get("skipped") == "0"
    # barcode: (end to end + 4 stages) x (p50, p99); policy and lisat: their end-to-end p99
    assert len([c for c in cases if c.find("skipped") is None]) == 12
    assert {c.get("name") for c in cases} >= {"end_to_end.p99 (budget)", "segmentation.p50 (budget)"}
    baseline = json.loads(base.read_text())
    assert baseline["schema"] == "edgeperc.latency-baseline/1"
    assert set(baseline["pipelines"]["barcode"]["stages"]) == {"proposals", "segmentation", "boxes", "decode"}


def test_shipped_scanner_target_passes_its_budgets(capsys):
    """The shipped x86 scanner target as a CI gate runs it: its own inputs (4096 px frames,
    512x1024 panoramas), few iterations; the budgets are for this class of machine (see the YAML)."""
    code = run_cli("latency-test", "--target", "firmware_configs/x86-scanner-host.yaml", "--iterations", 3, "--warmup", 1,
                   "--input-count", 1)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "barcode" in out and "depth" in out and "policy" in out and "latency-test passed" in out


def test_latency_test_fails_naming_the_breached_stage(tmp_path, capsys):
    budgets = {"barcode": {"p99": 10000, "stages": {"segmentation": {"p99": 0.5}, "decode": {"p50": 10000}}}}
    junit = tmp_path / "junit.xml"
    code = run_cli("latency-test", "--target", target_yaml(tmp_path, budgets), "--iterations", 2, "--warmup", 0,
                   "--junit", junit, *SMALL)
    captured = capsys.readouterr()
    assert code == 1
    assert "segmentation" in captured.err and "budget 0.5 ms" in captured.err and "decode" not in captured.err
    failures = [c for c in ET.fromstring(junit.read_text().split("\n", 1)[1]).iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["segmentation.p99 (budget)"]
    assert "> budget 0.5 ms" in failures[0].find("failure").get("message")


def test_latency_test_fails_on_regression_against_baseline(tmp_path, capsys):
    baseline = tmp_path / "old.json"
    baseline.write_text(json.dumps({"schema": "edgeperc.latency-baseline/1", "pipelines": {
        "barcode": {"end_to_end": {"p50": 1.0, "p99": 2.0}, "stages": {"boxes": {"p50": 0.001}}}}}))
    code = run_cli("latency-test", "--target", target_yaml(tmp_path, GENEROUS), "--iterations", 2, "--warmup", 0,
                   "--baseline", baseline, "--tolerance", 0.2, *SMALL)
    err = capsys.readouterr().err
    assert code == 1
    assert "end_to_end p50" in err and "baseline 1.0 ms + tolerance = 3.0 ms" in err and "boxes p50" in err


@pytest.mark.parametrize("budgets, extra, words", [
    ({}, [], ["has no latency budgets"]),
    (GENEROUS, ["--baseline", "BAD"], ["baseline", "not valid JSON"]),
    (GENEROUS, ["--baseline", "absent.json"], ["absent.json", "not found"]),
])
def test_latency_test_bad_input(tmp_path, capsys, budgets, extra, words):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    extra = [str(bad) if x == "BAD" else str(tmp_path / x) if x.endswith(".json") else x for x in extra]
    assert run_cli("latency-test", "--target", target_yaml(tmp_path, budgets), *extra) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)


def test_shipped_scanner_host_budgets_cover_the_barcode_stages():
    from edgeperc.targets import load_target

    budget = load_target("x86-scanner-host").latency_budgets_ms["barcode"]
    assert set(budget.stages) == set(pipelines.BARCODE_STAGES) and budget.p99 is not None
    assert np.isfinite(float(budget)) and float(budget) >= 500  # realistic for a CPU-only host, not 30 ms


def test_latency_test_budget_for_unknown_stage_fails_before_timing(tmp_path, capsys):
    budgets = {"barcode": {"p99": 10000, "stages": {"segmentaton": 100}}}
    assert run_cli("latency-test", "--target", target_yaml(tmp_path, budgets), "--iterations", 50, *SMALL) == 3
    err = capsys.readouterr().err
    assert "unknown stage(s) segmentaton" in err and "segmentation" in err


def test_profile_policy_times_its_stages(tmp_path, capsys):
    out = tmp_path / "prof"
    assert run_cli("profile", "policy", "--iterations", 3, "--warmup", 1, "--out", out) == 0, capsys.readouterr()
    data = json.loads((out / "profile.json").read_text())
    stages = data["stages"] if "stages" in data else data["pipelines"]["policy"]["stages"]
    assert {"preprocess", "network", "guard"} <= set(stages)


def test_profile_lisat_times_its_graphs_beside_the_compressed_peer(tmp_path, capsys):
    """The shipped tiny LISAt, exported (and compressed, for the peer) into the session's cache."""
    out = tmp_path / "prof"
    assert run_cli("profile", "lisat", "--iterations", 3, "--warmup", 1, "--input-count", 2, "--out", out) == 0, capsys.readouterr()
    data = json.loads((out / "profile.json").read_text())
    stages = data["stages"] if "stages" in data else data["pipelines"]["lisat"]["stages"]
    assert {"vision", "mask_encoder", "language", "mask"} <= set(stages)
    assert "compressed" in json.dumps(data.get("peers", data))
