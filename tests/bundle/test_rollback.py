"""A failing activation (a latency baseline the machine cannot meet, a corrupt model) leaves the
previous good release current and says why in the state file; an interrupted stage (a real
process killed mid-copy) leaves the previous release intact and `current` unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeperc.bundle.activate import activate_release
from edgeperc.bundle.stage import PAUSE_AFTER_ENV, PAUSE_MARKER_ENV, stage_bundle
from edgeperc.cli import main

from .conftest import ROOT, resign, tree_digest


def _state(rootfs: Path) -> dict:
    return json.loads((rootfs / "opt" / "edgeperc" / "state.json").read_text())


def _current(rootfs: Path) -> str:
    return os.readlink(rootfs / "opt" / "edgeperc" / "current")


@pytest.fixture()
def good_rootfs(tmp_path, bundle_v1, keys) -> Path:
    """A rootfs whose release 1.0.0 is staged and activated (good)."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    stage_bundle(bundle_v1, keys[2], rootfs)
    assert activate_release(rootfs).status == "good"
    return rootfs


def test_impossible_latency_baseline_rolls_back(good_rootfs, bundle_impossible, keys, capsys):
    release_v1 = tree_digest(good_rootfs / "opt" / "edgeperc" / "releases" / "1.0.0")
    stage_bundle(bundle_impossible, keys[2], good_rootfs)
    assert _current(good_rootfs) == "releases/3.0.0"
    assert main(["bundle", "activate", "--root", str(good_rootfs)]) == 10
    err = capsys.readouterr().err
    assert "activation of 3.0.0 failed: latency test failed" in err and "rolled back to 1.0.0" in err
    assert _current(good_rootfs) == "releases/1.0.0"
    state = _state(good_rootfs)
    assert state["releases"]["3.0.0"]["status"] == "failed"
    assert "baseline" in state["releases"]["3.0.0"]["reason"]
    assert state["releases"]["1.0.0"]["status"] == "good"
    assert [e["event"] for e in state["history"]][-2:] == ["activation-failed", "rolled-back"]
    assert tree_digest(good_rootfs / "opt" / "edgeperc" / "releases" / "1.0.0") == release_v1
    # The previous release still runs: a re-boot re-verifies it and keeps it.
    assert activate_release(good_rootfs).status == "already-good"


def test_model_corrupted_after_staging_rolls_back(good_rootfs, bundle_v2, keys):
    stage_bundle(bundle_v2, keys[2], good_rootfs)
    model = good_rootfs / "opt" / "edgeperc" / "releases" / "2.0.0" / "models" / "ynet-barcode-w8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit on the device's flash
    model.write_bytes(bytes(data))
    result = activate_release(good_rootfs)
    assert result.status == "rolled-back" and result.rolled_back_to == "1.0.0"
    assert "ynet-barcode-w8.onnx" in result.reason and "sha256" in result.reason
    assert _current(good_rootfs) == "releases/1.0.0"
    assert _state(good_rootfs)["releases"]["2.0.0"]["status"] == "failed"


def test_signed_but_broken_model_rolls_back(work, good_rootfs, bundle_v2, keys):
    """The signature and hashes are right, the ONNX is not loadable: ONNX Runtime refuses it at first boot."""
    from .conftest import read_members

    onnx = dict((i.name, d) for i, d in read_members(bundle_v2))["models/ynet-barcode-w8.onnx"]
    broken = resign(bundle_v2, work / "v4-broken.edgeperc", keys[0], lambda m: m.update(version="4.0.0"),
                    replace={"models/ynet-barcode-w8.onnx": onnx[: len(onnx) // 3]})
    stage_bundle(broken, keys[2], good_rootfs)
    result = activate_release(good_rootfs)
    assert result.status == "rolled-back" and result.rolled_back_to == "1.0.0"
    assert "ynet-barcode-w8.onnx" in result.reason
    assert _current(good_rootfs) == "releases/1.0.0"


def test_failure_without_a_previous_good_release_is_recorded(tmp_path, bundle_impossible, keys):
    rootfs = tmp_path / "fresh"
    rootfs.mkdir()
    stage_bundle(bundle_impossible, keys[2], rootfs)
    result = activate_release(rootfs)
    assert result.status == "failed" and result.rolled_back_to is None
    state = _state(rootfs)
    assert state["releases"]["3.0.0"]["status"] == "failed" and state["history"][-1]["event"] == "no-rollback"


def test_a_good_release_that_goes_bad_rolls_back_at_the_next_boot(good_rootfs, bundle_v2, keys):
    stage_bundle(bundle_v2, keys[2], good_rootfs)
    assert activate_release(good_rootfs).status == "good"  # first-boot baseline measured here
    assert (good_rootfs / "opt" / "edgeperc" / "baselines" / "2.0.0.json").is_file()
    (good_rootfs / "opt" / "edgeperc" / "releases" / "2.0.0" / "runtime.json").unlink()
    result = activate_release(good_rootfs)
    assert result.status == "rolled-back" and result.rolled_back_to == "1.0.0" and "missing" in result.reason


def test_interrupted_stage_leaves_the_previous_release_current(good_rootfs, bundle_v2, keys, tmp_path):
    base = good_rootfs / "opt" / "edgeperc"
    before_release = tree_digest(base / "releases" / "1.0.0")
    before_state = (base / "state.json").read_bytes()
    marker = tmp_path / "paused"
    env = dict(os.environ, **{PAUSE_AFTER_ENV: "3", PAUSE_MARKER_ENV: str(marker)})
    process = subprocess.Popen([sys.executable, "-m", "edgeperc.cli", "bundle", "stage", str(bundle_v2), "--key", str(keys[1]),
                                "--rootfs", str(good_rootfs)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "stage never reached the pause point"
            time.sleep(0.05)
        staging = [p for p in (base / "releases").iterdir() if p.name.startswith(".staging-")]
        assert len(staging) == 1 and sum(1 for p in staging[0].rglob("*") if p.is_file()) == 3  # mid-copy
        os.kill(process.pid, signal.SIGKILL)  # a real kill, as a power cut would
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert _current(good_rootfs) == "releases/1.0.0"
    assert tree_digest(base / "releases" / "1.0.0") == before_release
    assert (base / "state.json").read_bytes() == before_state
    assert not (base / "releases" / "2.0.0").exists()
    assert activate_release(good_rootfs).status == "already-good"  # the device still boots the old release
    # The next stage cleans up what the killed one left and completes.
    result = stage_bundle(bundle_v2, keys[2], good_rootfs)
    assert result.cleaned == [staging[0].name] and _current(good_rootfs) == "releases/2.0.0"
    assert not any(p.name.startswith(".staging-") for p in (base / "releases").iterdir())
