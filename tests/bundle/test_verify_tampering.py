"""Every tampering the issue names is refused by verify with a named error, and staging a
refused bundle changes nothing under the rootfs (the tree is hashed before and after)."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from edgeperc.bundle import errors as E
from edgeperc.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME
from edgeperc.bundle.stage import stage_bundle
from edgeperc.bundle.verify import verify_bundle
from edgeperc.cli import main
from edgeperc.errors import BundleError

from .conftest import TINY, BUILD, read_members, regular, resign, special, tamper, tree_digest, write_members, write_target


def flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def cut_at(bundle: Path, out: Path, after_last_member: int) -> Path:
    """Copy ``bundle`` cut ``after_last_member`` bytes after (negative: before) the end of its last member's data."""
    data = bundle.read_bytes()
    with tarfile.open(bundle, "r|") as tar:
        for _ in tar:
            pass
        end = tar.offset
    out.write_bytes(data[: end + after_last_member])
    return out


def _replace(name: str, fn):
    return lambda members: [(info, fn(data) if info.name == name else data) for info, data in members]


CASES = {
    # case: (how the archive is changed, expected error class, words the message must contain)
    "signature-byte": (lambda b, o, k: tamper(b, o, _replace(SIGNATURE_NAME, flip)), E.SignatureError, "does not verify"),
    "signature-missing": (lambda b, o, k: tamper(b, o, lambda m: [x for x in m if x[0].name != SIGNATURE_NAME]),
                          E.SignatureError, "missing"),
    "manifest-edited": (lambda b, o, k: tamper(b, o, _replace(MANIFEST_NAME, lambda d: d.replace(b'"1.0.0"', b'"1.0.1"'))),
                        E.SignatureError, "does not verify"),
    "model-byte": (lambda b, o, k: tamper(b, o, _replace("models/ynet-barcode-w8.onnx", flip)), E.IntegrityError,
                   "ynet-barcode-w8.onnx"),
    "file-removed": (lambda b, o, k: tamper(b, o, lambda m: [x for x in m if x[0].name != "runtime.json"]), E.IntegrityError,
                     "missing"),
    "file-added": (lambda b, o, k: tamper(b, o, lambda m: m + [regular("models/extra.onnx", b"x" * 10)]), E.IntegrityError,
                   "not in the signed manifest"),
    "duplicate-member": (lambda b, o, k: tamper(b, o, lambda m: m + [regular("runtime.json", b"{}")]), E.ArchiveError,
                         "twice"),
    "traversal-dotdot": (lambda b, o, k: tamper(b, o, lambda m: m[:2] + [regular("../../etc/passwd", b"root::0:0")] + m[2:]),
                         E.ArchiveError, "traversal"),
    "traversal-inner": (lambda b, o, k: tamper(b, o, lambda m: m + [regular("models/../../x", b"x")]), E.ArchiveError,
                        "traversal"),
    "absolute-path": (lambda b, o, k: tamper(b, o, lambda m: m + [regular("/etc/passwd", b"root::0:0")]), E.ArchiveError,
                      "absolute"),
    "symlink-outside": (lambda b, o, k: tamper(b, o, lambda m: m + [special("models/evil", tarfile.SYMTYPE, "/etc/passwd")]),
                        E.ArchiveError, "symlink"),
    "symlink-replacing-model": (lambda b, o, k: tamper(b, o, lambda m: [
        special(i.name, tarfile.SYMTYPE, "../../../etc/shadow") if i.name == "models/barcode-rpn-w16.onnx" else (i, d)
        for i, d in m]), E.ArchiveError, "symlink"),
    "hardlink": (lambda b, o, k: tamper(b, o, lambda m: m + [special("models/hard", tarfile.LNKTYPE, "/etc/passwd")]),
                 E.ArchiveError, "hardlink"),
    "device-node": (lambda b, o, k: tamper(b, o, lambda m: m + [special("models/dev", tarfile.CHRTYPE)]), E.ArchiveError,
                    "device"),
    "fifo": (lambda b, o, k: tamper(b, o, lambda m: m + [special("models/fifo", tarfile.FIFOTYPE)]), E.ArchiveError, "FIFO"),
    "directory-member": (lambda b, o, k: tamper(b, o, lambda m: m + [special("models/sub", tarfile.DIRTYPE)]), E.ArchiveError,
                         "regular files only"),
    "truncated-half": (lambda b, o, k: o.write_bytes(b.read_bytes()[: b.stat().st_size // 2]) and o, E.ArchiveError,
                       "truncated"),
    "truncated-last-member": (lambda b, o, k: cut_at(b, o, -100), E.ArchiveError, "truncated"),
    "truncated-end-marker": (lambda b, o, k: cut_at(b, o, 512), E.ArchiveError, "end-of-archive marker"),
    "appended-archive": (lambda b, o, k: o.write_bytes(b.read_bytes() + write_members(o.with_suffix(".x"), [
        regular("../../etc/cron.d/x", b"* * * * * root sh")]).read_bytes()) and o, E.ArchiveError, "after the end"),
    "not-a-tar": (lambda b, o, k: o.write_bytes(b"hello" * 1000) and o, E.ArchiveError, "corrupt"),
    "runtime-version": (lambda b, o, k: resign(b, o, k, lambda m: m["runtime"].update(edgeperc="0.0.1")),
                        E.RuntimeMismatchError, "edgeperc 0.0.1"),
    "kernels-abi": (lambda b, o, k: resign(b, o, k, lambda m: m["runtime"].update(kernels_abi=99)), E.RuntimeMismatchError,
                    "ABI 99"),
    "signed-unsafe-path": (lambda b, o, k: resign(b, o, k, lambda m: m["files"].append(
        {"path": "../evil", "size": 1, "sha256": "0" * 64, "role": "model"})), E.ArchiveError, "traversal"),
}


@pytest.fixture(scope="module")
def tampered(work, bundle_v1, keys) -> dict[str, Path]:
    folder = work / "tampered"
    folder.mkdir(exist_ok=True)
    return {name: make(bundle_v1, folder / f"{name}.edgeperc", keys[0]) for name, (make, _, _) in CASES.items()}


def test_the_untouched_bundle_verifies(bundle_v1, keys, host_target):
    verified = verify_bundle(bundle_v1, keys[2], host_target)
    assert verified.manifest.version == "1.0.0"
    assert {e.path for e in verified.manifest.files} >= {"models/ynet-barcode-w8.onnx", "target/bundle-test-host.yaml",
                                                          "runtime.json", "baseline/latency.json"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampering_is_refused(case, tampered, keys):
    _, error, words = CASES[case]
    with pytest.raises(error) as info:
        verify_bundle(tampered[case], keys[2])
    assert words in str(info.value) and "\n" not in str(info.value)


def test_every_single_file_changed_by_one_byte_is_refused(work, bundle_v1, keys):
    names = [info.name for info, _ in read_members(bundle_v1) if info.name not in (MANIFEST_NAME, SIGNATURE_NAME)]
    assert len(names) >= 7
    for name in names:
        out = tamper(bundle_v1, work / "one-byte.edgeperc", _replace(name, lambda d: flip(d, 0)))
        with pytest.raises(E.IntegrityError, match=name.split("/")[-1]):
            verify_bundle(out, keys[2])


def test_wrong_key_is_named(bundle_v1, other_keys):
    with pytest.raises(E.WrongKeyError, match="signed by sha256:"):
        verify_bundle(bundle_v1, other_keys[2])


def test_bundle_for_another_target(bundle_v1, keys):
    with pytest.raises(E.TargetMismatchError, match="for target 'bundle-test-host', not 'orin-nx-16gb'"):
        verify_bundle(bundle_v1, keys[2], "orin-nx-16gb")


def test_bundle_over_the_storage_budget(work, bundle_v1, keys):
    (work / "small").mkdir(exist_ok=True)  # same target name, 1 MiB of storage
    small = write_target(work / "small", "x86-scanner-host", "bundle-test-host", storage_budget_mib=1)
    with pytest.raises(E.StorageBudgetError, match="storage_budget_mib 1"):
        verify_bundle(bundle_v1, keys[2], small)


def test_create_refuses_a_bundle_over_the_budget(work, keys):
    from edgeperc.bundle.create import create_bundle

    (work / "tiny-budget").mkdir(exist_ok=True)
    target = write_target(work / "tiny-budget", "x86-scanner-host", "bundle-test-host", storage_budget_mib=1)
    with pytest.raises(E.StorageBudgetError):
        create_bundle(target, ["barcode"], keys[0], work / "never.edgeperc", version="9", kernels_dir=BUILD,
                      settings=TINY, measure_baseline=False)
    assert not (work / "never.edgeperc").exists()


def test_a_gzip_bundle_verifies_and_a_truncated_one_does_not(work, bundle_v1, keys):
    gz = work / "v1.edgeperc.gz"
    gz.write_bytes(gzip.compress(bundle_v1.read_bytes()))
    assert verify_bundle(gz, keys[2]).manifest.version == "1.0.0"
    cut = work / "cut.edgeperc.gz"
    cut.write_bytes(gz.read_bytes()[: gz.stat().st_size * 2 // 3])
    with pytest.raises(E.ArchiveError, match="truncated"):
        verify_bundle(cut, keys[2])


def test_verify_cli_exit_code_and_one_line(tampered, keys, capsys):
    assert main(["bundle", "verify", str(tampered["model-byte"]), "--key", str(keys[1])]) == 10
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bundle refused (hash)") and len(err.splitlines()) == 1


@pytest.fixture()
def staged_rootfs(tmp_path, bundle_v1, keys) -> Path:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    stage_bundle(bundle_v1, keys[2], rootfs)
    return rootfs


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_bundle_changes_nothing_under_the_rootfs(case, tampered, keys, staged_rootfs, tmp_path):
    empty = tmp_path / "empty-rootfs"
    empty.mkdir()
    for rootfs in (staged_rootfs, empty):
        before = tree_digest(rootfs)
        with pytest.raises(BundleError):
            stage_bundle(tampered[case], keys[2], rootfs)
        assert tree_digest(rootfs) == before


def test_wrong_key_other_target_and_storage_change_nothing(work, bundle_v1, other_keys, keys, staged_rootfs):
    (work / "small-stage").mkdir(exist_ok=True)
    small = write_target(work / "small-stage", "x86-scanner-host", "bundle-test-host", storage_budget_mib=1)
    before = tree_digest(staged_rootfs)
    with pytest.raises(E.WrongKeyError):
        stage_bundle(bundle_v1, other_keys[2], staged_rootfs)
    with pytest.raises(E.TargetMismatchError):
        stage_bundle(bundle_v1, keys[2], staged_rootfs, target="orin-nx-16gb")
    with pytest.raises(E.StorageBudgetError):
        stage_bundle(bundle_v1, keys[2], staged_rootfs, target=small)
    assert tree_digest(staged_rootfs) == before


def test_reusing_a_version_for_other_content_is_refused(work, bundle_v1, keys, staged_rootfs):
    other = resign(bundle_v1, work / "same-version.edgeperc", keys[0], lambda m: m["notes"].append("rebuilt"))
    before = tree_digest(staged_rootfs)
    with pytest.raises(E.StageError, match="already staged with other content"):
        stage_bundle(other, keys[2], staged_rootfs)
    assert tree_digest(staged_rootfs) == before


def test_manifest_json_is_what_is_signed(bundle_v1):
    members = dict((i.name, d) for i, d in read_members(bundle_v1))
    manifest = json.loads(members[MANIFEST_NAME])
    assert manifest["schema"] == "edgeperc.bundle/1" and len(members[SIGNATURE_NAME]) == 64
    assert [i.name for i, _ in read_members(bundle_v1)][:2] == [MANIFEST_NAME, SIGNATURE_NAME]
