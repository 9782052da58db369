"""Shared fixtures for the bundle tests: key pairs, test targets with generous budgets (written to
tmp), bundles made once per session with tiny latency settings, and helpers to tamper with an
archive (raw tarfile, so hostile members can be written) and to fingerprint a rootfs tree."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Callable

import pytest
import yaml

from edgeperc.bundle.create import create_bundle
from edgeperc.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, LatencySettings
from edgeperc.bundle.signing import generate_keypair, load_private_key, load_public_key, sign

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "edgeperc" / "models" / "weights"
BUILD = ROOT / "build"
HAS_DEPTH = (WEIGHTS / "ynet-depth-w8.onnx").is_file()
DEPTH_SKIP = "ynet-depth-w8.onnx is not in edgeperc/models/weights yet (being trained): depth pipeline skipped"
# Tiny latency runs: one 256 px frame, one iteration; a tolerance no noisy CI machine breaks.
TINY = LatencySettings(iterations=1, warmup=0, input_count=1, seed=0, frame_size={"barcode": 256, "depth": 128}, tolerance=50.0)
GENEROUS = {"p50": 10000, "p99": 10000}  # the schema maximum


def write_target(folder: Path, base: str, name: str, **changes) -> Path:
    """A copy of firmware_configs/<base>.yaml named ``name`` with generous budgets and ``changes``."""
    data = yaml.safe_load((ROOT / "firmware_configs" / f"{base}.yaml").read_text())
    data.update(name=name, latency_budgets_ms={"barcode": dict(GENEROUS), "depth": dict(GENEROUS)}, storage_budget_mib=64)
    data.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundle")


@pytest.fixture(scope="session")
def keys(work):
    private, public, fp = generate_keypair(work / "keys")
    return private, public, load_public_key(public)


@pytest.fixture(scope="session")
def other_keys(work):
    private, public, fp = generate_keypair(work / "other-keys")
    return private, public, load_public_key(public)


@pytest.fixture(scope="session")
def host_target(work) -> Path:
    return write_target(work, "x86-scanner-host", "bundle-test-host")


@pytest.fixture(scope="session")
def jetson_target(work) -> Path:
    return write_target(work, "orin-nx-16gb", "bundle-test-jetson")


def pipelines() -> list[str]:
    return ["barcode", "depth"] if HAS_DEPTH else ["barcode"]


@pytest.fixture(scope="session")
def bundle_v1(work, keys, host_target) -> Path:
    """Version 1.0.0, baseline measured here (tiny settings)."""
    out = work / "v1.edgeperc"
    create_bundle(host_target, pipelines(), keys[0], out, version="1.0.0", kernels_dir=BUILD, settings=TINY,
                  measure_baseline=True)
    return out


@pytest.fixture(scope="session")
def bundle_v2(work, keys, host_target) -> Path:
    """Version 2.0.0, baseline left to the first boot (no measurement at create)."""
    out = work / "v2.edgeperc"
    create_bundle(host_target, ["barcode"], keys[0], out, version="2.0.0", kernels_dir=BUILD, settings=TINY,
                  measure_baseline=False)
    return out


@pytest.fixture(scope="session")
def bundle_impossible(work, keys, host_target) -> Path:
    """Version 3.0.0 whose shipped baseline no machine meets (0.001 ms per stage)."""
    baseline = work / "impossible-baseline.json"
    tiny = {"p50": 0.001, "p99": 0.001}
    baseline.write_text(json.dumps({"schema": "edgeperc.latency-baseline/1", "target": "bundle-test-host", "machine": {},
                                    "pipelines": {"barcode": {"end_to_end": tiny, "stages": {"segmentation": tiny}}}}))
    out = work / "v3-impossible.edgeperc"
    create_bundle(host_target, ["barcode"], keys[0], out, version="3.0.0", kernels_dir=BUILD, settings=TINY,
                  baseline=baseline)
    return out


# --- tampering ---------------------------------------------------------------------------------------

Members = list[tuple[tarfile.TarInfo, bytes]]


def read_members(bundle: Path) -> Members:
    with tarfile.open(bundle, "r:*") as tar:
        return [(info, tar.extractfile(info).read() if info.isreg() else b"") for info in tar.getmembers()]


def write_members(out: Path, members: Members, gz: bool = False) -> Path:
    with tarfile.open(out, "w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info, b""


def tamper(bundle: Path, out: Path, change: Callable[[Members], Members]) -> Path:
    return write_members(out, change(read_members(bundle)))


def resign(bundle: Path, out: Path, private_key_path: Path, edit_manifest: Callable[[dict], None],
           replace: dict[str, bytes] | None = None) -> Path:
    """Rewrite the bundle with files replaced, the manifest edited and its entries re-hashed,
    signed again with the *trusted* key: a bundle that verifies but carries what the test wants."""
    members = read_members(bundle)
    replace = replace or {}
    files = {info.name: replace.get(info.name, data) for info, data in members}
    manifest = json.loads(files[MANIFEST_NAME])
    for entry in manifest["files"]:
        data = files[entry["path"]]
        entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    edit_manifest(manifest)
    manifest_bytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    files[MANIFEST_NAME] = manifest_bytes
    files[SIGNATURE_NAME] = sign(load_private_key(private_key_path), manifest_bytes)
    return write_members(out, [regular(info.name, files[info.name]) for info, _ in members])


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under ``root`` -> what it is (file hash + mode, symlink target, dir)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = f"file:{oct(path.stat().st_mode)}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out
