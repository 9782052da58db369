"""End to end through the CLI: shipped weights -> export -> quantize -> inspect -> build --dry-run,
and the bring-your-own-model path on ONNX files and modules edgeperc did not write."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.manifest import read_manifest
from edgeperc.onnx_io import load_onnx
from tests.conftest import WEIGHTS, make_foreign_onnx

pytest.importorskip("torch", reason="export needs the [export] extra (torch)")


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


def dry_run_key(capsys, *args) -> str:
    capsys.readouterr()
    assert run_cli("build", *args, "--dry-run") == 0
    text = capsys.readouterr().out
    return next(line.split()[-1] for line in text.splitlines() if line.strip().startswith("cache key"))


def test_console_script_help_lists_verbs():
    out = subprocess.run([sys.executable, "-m", "edgeperc.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in ("export", "quantize", "build", "inspect"):
        assert verb in out


@pytest.fixture(scope="module")
def exported_barcode(tmp_path_factory):
    checkpoint = WEIGHTS / "ynet-barcode-w8.safetensors"
    assert checkpoint.is_file(), "shipped weights missing: see edgeperc/models/weights/README.md"
    out = tmp_path_factory.mktemp("cli") / "ynet-barcode-w8.onnx"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    return out


def test_export_shipped_checkpoint_writes_manifest(exported_barcode, capsys):
    manifest = read_manifest(load_onnx(exported_barcode))
    assert manifest.family == "ynet-barcode" and manifest.family_config["base_width"] == 8
    assert manifest.parity.passed and manifest.checkpoint_sha256
    assert run_cli("inspect", exported_barcode, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["graph_sha256"] == manifest.graph_sha256 and printed["derived"] is False


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_quantize_cli_writes_report(exported_barcode, tmp_path, precision, capsys):
    out = tmp_path / f"m.{precision}.onnx"
    assert run_cli("quantize", exported_barcode, "--precision", precision, "--out", out,
                   "--calibration-samples", "8", "--held-out-samples", "4", "--latency-runs", "3") == 0
    assert "accuracy-drop report" in capsys.readouterr().out
    report = json.loads(out.with_suffix(".report.json").read_text())
    manifest = read_manifest(load_onnx(out))
    assert manifest.precision == precision and manifest.accuracy.metric == "mask_iou"
    assert report["quantized"] == pytest.approx(manifest.accuracy.quantized)


def test_build_dry_run_key_tracks_every_cli_field(exported_barcode, tmp_path, capsys):
    base = dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb")
    assert dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb") == base
    assert dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb", "--precision", "fp32") != base
    assert dry_run_key(capsys, exported_barcode, "--target", "agx-orin-64gb") != base
    assert dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb",
                       "--profile", "image:1x1x400x400,2x1x400x400,4x1x400x400") != base
    plugin = tmp_path / "libplugin.so"
    plugin.write_bytes(b"plugin v1")
    with_plugin = dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb", "--plugin", plugin)
    plugin.write_bytes(b"plugin v2")
    assert len({base, with_plugin, dry_run_key(capsys, exported_barcode, "--target", "orin-nx-16gb", "--plugin", plugin)}) == 3
    other = tmp_path / "other.onnx"
    other.write_bytes(exported_barcode.read_bytes()[:-1] + b"\x00")  # one byte of the file differs
    # a changed file is either refused as corrupt or keyed differently, never keyed the same
    code = run_cli("build", other, "--target", "orin-nx-16gb", "--dry-run")
    assert code != 0 or base not in capsys.readouterr().out


def test_build_without_tensorrt_is_one_line(exported_barcode, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed: the real build is tested in tests/tensorrt")
    except ImportError:
        pass
    capsys.readouterr()
    assert run_cli("build", exported_barcode, "--target", "orin-nx-16gb") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: TensorRT is not installed") and "edgeperc[tensorrt]" in err[-1]


@pytest.mark.parametrize("args, code, message", [
    (["inspect", "/nonexistent/model.onnx"], 4, "ONNX file not found"),
    (["export", "--family", "nope", "--out", "x.onnx", "--random-init"], 3, "unknown model family"),
    (["quantize", "MODEL", "--precision", "int3"], 3, "must be fp16 or int8"),
    (["build", "MODEL", "--target", "no-such-target", "--dry-run"], 3, "no-such-target"),
])
def test_user_mistakes_are_one_line_with_exit_code(exported_barcode, capsys, args, code, message):
    args = [str(exported_barcode) if a == "MODEL" else a for a in args]
    capsys.readouterr()
    assert run_cli(*args) == code
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and err.startswith("error:")


def test_bring_your_own_onnx(tmp_path, capsys):
    """inspect, quantize (npz calibration, drift report) and build --dry-run on a foreign ONNX."""
    model = make_foreign_onnx(tmp_path / "foreign.onnx")
    assert run_cli("inspect", model) == 0
    assert "derived from the graph" in capsys.readouterr().out
    np.savez(tmp_path / "calib.npz", pixels=np.random.default_rng(1).standard_normal((20, 3, 32, 32)).astype(np.float32))
    out = tmp_path / "foreign.int8.onnx"
    assert run_cli("quantize", model, "--precision", "int8", "--calibration", tmp_path / "calib.npz", "--out", out,
                   "--latency-runs", "3") == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["metric"] == "cosine_to_fp32" and "top1_agreement" in report["drift"]
    assert read_manifest(load_onnx(out)).precision == "int8"
    assert dry_run_key(capsys, model, "--target", "agx-orin-64gb", "--precision", "fp16")
    # The CPU INT8 model has asymmetric activations: TensorRT would reject it, so the plan does.
    assert run_cli("build", out, "--target", "agx-orin-64gb", "--precision", "int8", "--dry-run") == 3
    assert "only symmetric INT8" in capsys.readouterr().err
    trt_out = tmp_path / "foreign.trt-int8.onnx"
    assert run_cli("quantize", model, "--precision", "int8", "--calibration", tmp_path / "calib.npz", "--out", trt_out,
                   "--target", "agx-orin-64gb", "--method", "ort", "--latency-runs", "3") == 0
    assert read_manifest(load_onnx(trt_out)).calibration.method.endswith(":symmetric")
    assert dry_run_key(capsys, trt_out, "--target", "agx-orin-64gb", "--precision", "int8")


def test_bring_your_own_module(tmp_path, monkeypatch, capsys):
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(textwrap.dedent("""
        import torch
        class TwoHead(torch.nn.Module):
            def __init__(self, channels=4):
                super().__init__()
                self.body = torch.nn.Conv2d(3, channels, 3, padding=1)
                self.a = torch.nn.Conv2d(channels, 1, 1)
                self.b = torch.nn.Linear(channels, 2)
            def forward(self, x):
                h = torch.relu(self.body(x))
                return torch.sigmoid(self.a(h)), self.b(h.mean(dim=(2, 3)))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import torch
    from userpkg.nets import TwoHead

    torch.manual_seed(0)
    torch.save(TwoHead(channels=6).state_dict(), tmp_path / "user.pt")
    out = tmp_path / "user.onnx"
    assert run_cli("export", tmp_path / "user.pt", "--module", "userpkg.nets:TwoHead", "--kwargs", '{"channels": 6}',
                   "--input-shape", "1,3,24,24", "--input-names", "rgb", "--output-names", "mask,logits", "--out", out) == 0
    manifest = read_manifest(load_onnx(out))
    assert [s.name for s in manifest.outputs] == ["mask", "logits"] and manifest.inputs[0].shape == ["batch", 3, 24, 24]
    assert manifest.family_config["module"] == "userpkg.nets:TwoHead" and manifest.parity.passed
    capsys.readouterr()
    assert run_cli("export", tmp_path / "user.pt", "--module", "userpkg.nets:TwoHead", "--input-shape", "1,3,24,24", "--out", out) == 4
    assert "shape mismatch" in capsys.readouterr().err  # default channels=4 does not fit the checkpoint
