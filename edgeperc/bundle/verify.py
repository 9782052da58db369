"""Verify a bundle (archive) or a staged release (folder) against a trusted Ed25519 public key:
signature first, then every file's size and sha256 against the signed manifest (none missing,
none extra), then the target, the runtime version and the storage budget. Reading an archive
writes nothing anywhere."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from edgeperc.bundle.archive import Progress, ScanResult, scan_archive
from edgeperc.bundle.errors import (IntegrityError, RuntimeMismatchError, StorageBudgetError, TargetMismatchError)
from edgeperc.bundle.manifest import MANIFEST_NAME, RESERVED, SIGNATURE_NAME, BundleManifest, parse_manifest
from edgeperc.bundle.signing import check_signature
from edgeperc.errors import ConfigError
from edgeperc.targets import TargetConfig, load_target, parse_target


@dataclass(frozen=True)
class VerifiedBundle:
    manifest: BundleManifest
    manifest_bytes: bytes
    signature: bytes
    target: TargetConfig  # the bundled target YAML, validated
    archive_bytes: int = 0
    archive_sha256: str = ""

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest_bytes).hexdigest()


def installed_runtime() -> tuple[str, int]:
    """(edgeperc version, kernel ABI) of this installation."""
    from edgeperc import __version__
    from edgeperc.kernels.library import ABI_VERSION

    return __version__, ABI_VERSION


def _signed_manifest(manifest_bytes: bytes | None, signature: bytes | None, public_key) -> BundleManifest:
    if manifest_bytes is None:
        raise IntegrityError(f"bundle refused (manifest): {MANIFEST_NAME} is missing")
    # The signer's fingerprint is read before the signature is checked only to tell a wrong key
    # from a bad signature in the message; nothing else of the manifest is trusted until it verifies.
    signer = None
    try:
        import json

        signer = json.loads(manifest_bytes).get("signer", {}).get("fingerprint")
    except (ValueError, AttributeError):
        pass
    check_signature(public_key, manifest_bytes, signature, signer if isinstance(signer, str) else None)
    return parse_manifest(manifest_bytes)


def check_files(manifest: BundleManifest, found: dict[str, tuple[int, str]], where: str) -> None:
    """``found``: {path: (size, sha256)} of everything present besides bundle.json(.sig)."""
    listed = {entry.path: entry for entry in manifest.files}
    missing = sorted(set(listed) - set(found))
    extra = sorted(set(found) - set(listed))
    if missing:
        raise IntegrityError(f"bundle refused (files): {len(missing)} file(s) listed in the manifest are missing from "
                             f"{where}: {', '.join(missing[:5])}")
    if extra:
        raise IntegrityError(f"bundle refused (files): {len(extra)} file(s) in {where} are not in the signed manifest: "
                             f"{', '.join(extra[:5])}")
    for path, entry in listed.items():
        size, sha = found[path]
        if size != entry.size:
            raise IntegrityError(f"bundle refused (hash): {path} is {size} bytes, the manifest says {entry.size}")
        if sha != entry.sha256:
            raise IntegrityError(f"bundle refused (hash): sha256 of {path} is {sha[:12]}…, the manifest says "
                                 f"{entry.sha256[:12]}… (changed or corrupt)")


def check_runtime(manifest: BundleManifest) -> None:
    version, abi = installed_runtime()
    if manifest.runtime.edgeperc != version:
        raise RuntimeMismatchError(f"bundle refused (runtime): made for edgeperc {manifest.runtime.edgeperc}, "
                                   f"this runtime is edgeperc {version}")
    if manifest.runtime.kernels_abi != abi:
        raise RuntimeMismatchError(f"bundle refused (runtime): its kernels use ABI {manifest.runtime.kernels_abi}, "
                                   f"this runtime loads ABI {abi}")


def bundled_target(manifest: BundleManifest, text: bytes | None) -> TargetConfig:
    if text is None:
        raise IntegrityError(f"bundle refused (files): the target file {manifest.target.path} is missing")
    try:
        config = parse_target(text.decode("utf-8"), f"{manifest.target.path} (in the bundle)")
    except (ConfigError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"bundle refused (target): {exc}") from exc
    if config.name != manifest.target.name:
        raise IntegrityError(f"bundle refused (target): {manifest.target.path} is target {config.name!r}, "
                             f"the manifest says {manifest.target.name!r}")
    return config


def check_target(manifest: BundleManifest, expected: TargetConfig | None) -> None:
    if expected is not None and expected.name != manifest.target.name:
        raise TargetMismatchError(f"bundle refused (target): it is for target {manifest.target.name!r}, "
                                  f"not {expected.name!r}")


def check_storage(manifest: BundleManifest, budget_target: TargetConfig) -> None:
    budget = budget_target.storage_budget_mib << 20
    if manifest.total_bytes > budget:
        raise StorageBudgetError(f"bundle refused (storage): its files take {manifest.total_bytes / 2**20:.1f} MiB, "
                                 f"target {budget_target.name} allows storage_budget_mib {budget_target.storage_budget_mib}")


def _resolve_target(target: str | Path | TargetConfig | None) -> TargetConfig | None:
    if target is None or isinstance(target, TargetConfig):
        return target
    return load_target(target)


def verify_scan(scan: ScanResult, public_key, target: TargetConfig | None, where: str) -> VerifiedBundle:
    """All checks on an archive already streamed through ``scan_archive``."""
    manifest = _signed_manifest(scan.manifest_bytes, scan.signature, public_key)
    found = {name: (m.size, m.sha256) for name, m in scan.members.items() if name not in RESERVED}
    check_files(manifest, found, where)
    config = bundled_target(manifest, scan.kept.get(manifest.target.path))
    check_target(manifest, target)
    check_runtime(manifest)
    check_storage(manifest, target or config)
    return VerifiedBundle(manifest, scan.manifest_bytes, scan.signature, config, scan.archive_bytes, scan.archive_sha256)


def verify_bundle(path: str | Path, public_key, target: str | Path | TargetConfig | None = None,
                  progress: Progress | None = None) -> VerifiedBundle:
    """Verify the archive at ``path``; BundleError subclasses name the first failure. Writes nothing."""
    expected = _resolve_target(target)
    budget = expected.storage_budget_mib << 20 if expected is not None else None
    scan = scan_archive(path, max_total_bytes=budget, progress=progress,
                        budget_label=f"target {expected.name}'s storage_budget_mib {expected.storage_budget_mib}" if expected else "",
                        keep=lambda name: name.startswith("target/") and name.endswith((".yaml", ".yml")))
    return verify_scan(scan, public_key, expected, Path(path).name)


def hash_tree(folder: Path) -> dict[str, tuple[int, str]]:
    """{relative POSIX path: (size, sha256)} of every regular file; IntegrityError on a symlink or
    anything that is neither a file nor a folder (a release tree holds plain files only)."""
    found: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix()
            if full.is_symlink():
                raise IntegrityError(f"release refused (files): {rel} is a symlink")
            if name in filenames:
                if not full.is_file():
                    raise IntegrityError(f"release refused (files): {rel} is not a regular file")
                digest = hashlib.sha256()
                with open(full, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                found[rel] = (full.stat().st_size, digest.hexdigest())
    return found


def verify_release(folder: str | Path, public_key, target: TargetConfig | None = None) -> VerifiedBundle:
    """Verify a staged release folder exactly like an archive (used at first boot)."""
    folder = Path(folder)
    manifest_path, signature_path = folder / MANIFEST_NAME, folder / SIGNATURE_NAME
    found = hash_tree(folder)
    manifest_bytes = manifest_path.read_bytes() if manifest_path.is_file() else None
    signature = signature_path.read_bytes() if signature_path.is_file() else None
    manifest = _signed_manifest(manifest_bytes, signature, public_key)
    check_files(manifest, {k: v for k, v in found.items() if k not in RESERVED}, f"release {folder.name}")
    target_file = folder / manifest.target.path
    config = bundled_target(manifest, target_file.read_bytes() if target_file.is_file() else None)
    check_target(manifest, target)
    check_runtime(manifest)
    check_storage(manifest, target or config)
    return VerifiedBundle(manifest, manifest_bytes, signature, config)
