"""create -> verify -> inspect -> stage into a temporary rootfs -> activate (ONNX Runtime path
here) -> the pipelines run from the staged tree. Through the CLI, as a user would."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from edgeperc.cli import main

from .conftest import BUILD, DEPTH_SKIP, HAS_DEPTH, ROOT, pipelines, tree_digest

TINY_OPTIONS = ["--iterations", "1", "--warmup", "1", "--input-count", "1", "--frame-size", "barcode=256,depth=128",
                "--tolerance", "50"]


def test_keygen_writes_0600_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["bundle", "keygen", "--out", str(tmp_path / "k")]) == 0
    private, public = tmp_path / "k" / "edgeperc-bundle.key", tmp_path / "k" / "edgeperc-bundle.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    assert "fingerprint sha256:" in capsys.readouterr().out
    before = private.read_bytes()
    assert main(["bundle", "keygen", "--out", str(tmp_path / "k")]) == 3
    assert "refusing to overwrite" in capsys.readouterr().err and private.read_bytes() == before


def test_create_verify_stage_activate_and_run_from_the_staged_tree(tmp_path, host_target, capsys):
    keys = tmp_path / "keys"
    assert main(["bundle", "keygen", "--out", str(keys)]) == 0
    private, public = keys / "edgeperc-bundle.key", keys / "edgeperc-bundle.pub"
    bundle = tmp_path / "scanner-1.0.0.edgeperc"
    assert main(["bundle", "create", "--target", str(host_target), "--pipelines", ",".join(pipelines()),
                 "--key", str(private), "--out", str(bundle), "--version", "1.0.0", "--kernels-dir", str(BUILD),
                 *TINY_OPTIONS]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "baseline: measured" in out
    assert main(["bundle", "verify", str(bundle), "--key", str(public), "--target", str(host_target)]) == 0
    assert "verified" in capsys.readouterr().out

    assert main(["bundle", "inspect", str(bundle), "--key", str(public), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verification"] == {"checked": True, "ok": True}
    assert data["target"]["name"] == "bundle-test-host" and data["target"]["arch"] == "x86-64"
    assert data["runtime"]["edgeperc"] and data["runtime"]["kernels_abi"] == 1
    assert data["signer"]["fingerprint"].startswith("sha256:")
    libraries = {lib["name"]: lib for lib in data["libraries"]}
    if (BUILD / "libedgeperc_kernels_host.so").is_file():
        assert libraries["libedgeperc_kernels_host.so"]["included"]
        assert libraries["libedgeperc_kernels_host.so"]["elf_machine"] == "x86-64"  # read from the ELF header
    assert not libraries["libedgeperc_kernels_cuda.so"]["included"]  # the target has no GPU
    assert main(["bundle", "inspect", str(bundle)]) == 0
    assert "signature   not checked" in capsys.readouterr().out

    rootfs = tmp_path / "Linux_for_Tegra" / "rootfs"
    rootfs.mkdir(parents=True)
    assert main(["bundle", "stage", str(bundle), "--key", str(public), "--rootfs", str(rootfs)]) == 0
    base = rootfs / "opt" / "edgeperc"
    assert os.readlink(base / "current") == "releases/1.0.0"
    unit = rootfs / "etc" / "systemd" / "system" / "edgeperc-firstboot.service"
    assert "ExecStart=/usr/bin/env edgeperc bundle activate --root /" in unit.read_text()
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants" / "edgeperc-firstboot.service"
    assert os.readlink(wants) == "/etc/systemd/system/edgeperc-firstboot.service"
    state = json.loads((base / "state.json").read_text())
    assert state["releases"]["1.0.0"]["status"] == "staged"
    lib = base / "current" / "lib" / "libedgeperc_kernels_host.so"
    if lib.exists():
        assert stat.S_IMODE(lib.stat().st_mode) == 0o755
    capsys.readouterr()

    assert main(["bundle", "activate", "--root", str(rootfs)]) == 0
    out = capsys.readouterr().out
    assert "ran on: ONNX Runtime" in out and "activated 1.0.0" in out
    state = json.loads((base / "state.json").read_text())
    assert state["releases"]["1.0.0"]["status"] == "good"
    assert [e["event"] for e in state["history"]] == ["staged", "activated"]
    # A second boot: already good, re-verified only, nothing changes.
    before = tree_digest(rootfs)
    assert main(["bundle", "activate", "--root", str(rootfs)]) == 0
    assert "already good" in capsys.readouterr().out and tree_digest(rootfs) == before

    # The pipelines run from the staged tree: `edgeperc scan` with the staged models and target.
    current = base / "current"
    assert main(["scan", str(ROOT / "tests" / "data" / "barcode_crop.png"), "--json",
                 "--rpn-model", str(current / "models" / "barcode-rpn-w16.onnx"),
                 "--ynet-model", str(current / "models" / "ynet-barcode-w8.onnx"),
                 "--target", str(current / "target" / "bundle-test-host.yaml")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert result["barcodes"], result  # the crop holds one code; the staged models find it


@pytest.mark.skipif(not HAS_DEPTH, reason=DEPTH_SKIP)
def test_depth_runs_from_the_staged_tree(tmp_path, bundle_v1, keys, capsys):
    import cv2

    from edgeperc.bundle.stage import stage_bundle
    from edgeperc.synth.panoramas import panorama_recipe, render_panorama

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    stage_bundle(bundle_v1, keys[2], rootfs)
    panorama = render_panorama(np.random.default_rng(0), panorama_recipe("default", (64, 128))).rgb
    image = tmp_path / "pano.png"
    cv2.imwrite(str(image), panorama[:, :, ::-1])
    current = rootfs / "opt" / "edgeperc" / "current"
    assert main(["depth", str(image), "--json", "--out", str(tmp_path / "depth"),
                 "--model", str(current / "models" / "ynet-depth-w8.onnx")]) == 0


def test_jetson_bundle_records_arch_and_first_boot_baseline(tmp_path, keys, jetson_target, capsys):
    """A Jetson target: libraries recorded with the machine read from their ELF headers (x86-64 ones
    are not shipped to an aarch64 device), engines to be built as fp16 at first boot, baseline measured
    there. Activated here, TensorRT is absent: the ONNX Runtime path runs and says so."""
    from edgeperc.bundle.activate import activate_release
    from edgeperc.bundle.create import create_bundle
    from edgeperc.bundle.inspect import format_inspection, inspect_bundle
    from edgeperc.bundle.stage import stage_bundle

    from .conftest import TINY

    bundle = tmp_path / "nx.edgeperc"
    result = create_bundle(jetson_target, ["barcode"], keys[0], bundle, version="5.0.0", kernels_dir=BUILD, settings=TINY,
                           gzip=True, cross_compile=False)
    manifest = result.manifest
    assert manifest.target.arch == "aarch64" and manifest.target.gpu_sm == 87
    assert manifest.baseline.status == "first-boot"
    assert {m.engine_precision for m in manifest.models} == {"fp16"} and {m.onnx_precision for m in manifest.models} == {"fp32"}
    for lib in manifest.libraries:
        if lib.source:  # built here, so x86-64: recorded, not shipped
            assert lib.elf_machine == "x86-64" and not lib.included and "aarch64" in lib.note
    if (BUILD / "libedgeperc_kernels_cuda.so").is_file():
        cuda = next(lib for lib in manifest.libraries if lib.kind == "kernels-cuda")
        assert 87 in cuda.sass_sm
    assert any("no aarch64 kernel library" in note for note in manifest.notes)
    text = "\n".join(format_inspection(inspect_bundle(bundle, keys[2])))
    assert "arch aarch64, sm_87" in text and "NOT included" in text and "verified" in text

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    stage_bundle(bundle, keys[2], rootfs)
    activation = activate_release(rootfs)
    assert activation.status == "good", activation.reason
    assert "TensorRT absent here" in activation.engine_path and "ONNX Runtime path" in activation.engine_path
    assert (rootfs / "opt" / "edgeperc" / "baselines" / "5.0.0.json").is_file()
