"""Install a verified bundle into a root filesystem tree (before flashing, or on a running device):
``opt/edgeperc/releases/<version>/`` written under a temp name, fsynced and renamed into place,
``opt/edgeperc/current`` switched atomically, a first-boot systemd unit that runs
``edgeperc bundle activate``. The whole archive is verified before anything under the rootfs is
touched; the files are hashed again as they are written (the archive could change in between)."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeperc.bundle.archive import Progress, scan_archive
from edgeperc.bundle.errors import IntegrityError, StageError, TargetMismatchError
from edgeperc.bundle.layout import (STAGING_PREFIX, Layout, add_event, fsync_dir, load_state, locked, remove_tree, save_state,
                                    switch_symlink, utc_now, write_atomic)
from edgeperc.bundle.manifest import MANIFEST_NAME, RESERVED
from edgeperc.bundle.signing import fingerprint, public_pem
from edgeperc.bundle.verify import VerifiedBundle, verify_bundle, verify_release, verify_scan
from edgeperc.errors import ConfigError
from edgeperc.targets import TargetConfig, load_target

# Test hook (tests/bundle): after this many files are written, write the marker file and sleep,
# so a test can SIGKILL a real stage process mid-copy.
PAUSE_AFTER_ENV = "EDGEPERC_BUNDLE_STAGE_PAUSE_AFTER"
PAUSE_MARKER_ENV = "EDGEPERC_BUNDLE_STAGE_PAUSE_MARKER"
DEFAULT_EXEC = "/usr/bin/env edgeperc"


@dataclass
class StageResult:
    version: str
    release: Path
    previous: str | None
    reused: bool
    cleaned: list[str] = field(default_factory=list)
    verified: VerifiedBundle | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def unit_text(exec_path: str = DEFAULT_EXEC) -> str:
    return f"""# Written by `edgeperc bundle stage`: activates the current edgeperc release at boot.
# Verifies it, builds TensorRT engines for the GPU present, runs the latency test, then marks it
# good; on failure it rolls /opt/edgeperc/current back to the previous good release.
[Unit]
Description=edgeperc release activation (verify, engines, latency test, mark good or roll back)
After=local-fs.target
ConditionPathIsSymbolicLink=/opt/edgeperc/current

[Service]
Type=oneshot
Environment=EDGEPERC_KERNELS_LIB=/opt/edgeperc/current/lib
Environment=EDGEPERC_ENGINE_CACHE=/var/cache/edgeperc/engines
ExecStart={exec_path} bundle activate --root /
RemainingAfterExit=yes
TimeoutStartSec=30min

[Install]
WantedBy=multi-user.target
"""


class _SyncedFile:
    """A new file written under the staging folder; fsynced on close; counts for the pause hook."""

    def __init__(self, path: Path, mode: int, on_closed) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self.handle = os.fdopen(os.open(path, flags, mode), "wb")
        self.path, self.mode, self.on_closed = path, mode, on_closed

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.path, self.mode)
        self.on_closed()


def _pause_hook() -> tuple[int | None, Path | None]:
    after = os.environ.get(PAUSE_AFTER_ENV)
    marker = os.environ.get(PAUSE_MARKER_ENV)
    return (int(after), Path(marker) if marker else None) if after else (None, None)


def _fsync_tree(folder: Path) -> None:
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda item: -len(item[0])):
        fsync_dir(Path(dirpath))


def _extract(bundle: Path, first: VerifiedBundle, public_key, target: TargetConfig | None, staging: Path,
             progress: Progress | None) -> None:
    """Second pass: write every member into ``staging`` while hashing it, then check everything again."""
    listed = {entry.path: entry for entry in first.manifest.files}
    pause_after, marker = _pause_hook()
    written = [0]

    def closed() -> None:
        written[0] += 1
        if pause_after is not None and written[0] == pause_after:
            if marker is not None:
                marker.write_text(f"{os.getpid()}\n")
            time.sleep(300)

    def sink(name: str):
        if name not in listed and name not in RESERVED:
            raise IntegrityError(f"bundle refused (files): {name} appeared in the archive after verification")
        mode = 0o755 if name in listed and listed[name].role == "library" else 0o644
        return _SyncedFile(staging / name, mode, closed)

    scan = scan_archive(bundle, sink=sink, progress=progress,
                        keep=lambda name: name.startswith("target/") and name.endswith((".yaml", ".yml")))
    second = verify_scan(scan, public_key, target, bundle.name)
    if second.manifest_bytes != first.manifest_bytes:
        raise IntegrityError("bundle refused (files): the archive changed while it was being staged")
    _fsync_tree(staging)


def stage_bundle(bundle: str | Path, public_key, rootfs: str | Path, target: str | Path | TargetConfig | None = None,
                 exec_path: str = DEFAULT_EXEC, progress: Progress | None = None) -> StageResult:
    """Verify ``bundle`` and install it as the current release under ``rootfs``. A refused bundle
    changes nothing under ``rootfs``; an interrupted stage leaves the previous release current."""
    bundle, rootfs = Path(bundle), Path(rootfs)
    seconds: dict[str, float] = {}
    if not rootfs.is_dir():
        raise ConfigError(f"--rootfs {rootfs}: not a folder (give the root filesystem tree, e.g. Linux_for_Tegra/rootfs)")
    layout = Layout(rootfs)
    expected = load_target(target) if target is not None and not isinstance(target, TargetConfig) else target
    previous = layout.current_version()  # a foreign `current` is refused before anything is written
    state = load_state(layout)
    started = time.perf_counter()
    verified = verify_bundle(bundle, public_key, expected, progress=progress)
    seconds["verify"] = time.perf_counter() - started
    manifest = verified.manifest
    if state.get("target") and state["target"] != manifest.target.name:
        raise TargetMismatchError(f"bundle refused (target): {rootfs} holds releases for target {state['target']!r}, "
                                  f"this bundle is for {manifest.target.name!r}")
    version = manifest.version
    release = layout.release(version)
    reused = False
    if release.exists() or release.is_symlink():
        if release.is_symlink() or not release.is_dir():
            raise StageError(f"{release} exists and is not a release folder")
        existing = release / MANIFEST_NAME
        if not existing.is_file() or hashlib.sha256(existing.read_bytes()).hexdigest() != verified.manifest_sha256:
            raise StageError(f"release {version} is already staged with other content: give the new bundle another "
                             "--version (a version names exactly one set of files)")
        verify_release(release, public_key)  # the same bundle again: reuse it if it is still intact
        reused = True

    started = time.perf_counter()
    with locked(layout):
        layout.releases.mkdir(parents=True, exist_ok=True)
        cleaned = []
        for leftover in sorted(layout.releases.glob(f"{STAGING_PREFIX}*")):
            remove_tree(leftover)  # an interrupted stage: never renamed, never current
            cleaned.append(leftover.name)
        if not reused:
            staging = layout.releases / f"{STAGING_PREFIX}{version}-{secrets.token_hex(4)}"
            staging.mkdir(mode=0o755)
            try:
                _extract(bundle, verified, public_key, expected, staging, progress)
                os.rename(staging, release)
            except BaseException:
                remove_tree(staging)
                raise
            fsync_dir(layout.releases)
        seconds["copy"] = time.perf_counter() - started

        key_hex = fingerprint(public_key).split(":", 1)[1]
        key_file = layout.keys / f"{key_hex}.pub"
        if not key_file.is_file():
            write_atomic(key_file, public_pem(public_key))
        write_atomic(layout.unit, unit_text(exec_path).encode())
        enabled = f"/etc/systemd/system/{layout.unit.name}"  # what `systemctl enable` writes (absolute, device path)
        if not layout.wants.is_symlink() or os.readlink(layout.wants) != enabled:
            switch_symlink(layout.wants, enabled)

        state["target"] = manifest.target.name
        info = state["releases"].get(version, {})
        info.update({"staged_utc": utc_now(), "bundle_sha256": verified.archive_sha256,
                     "manifest_sha256": verified.manifest_sha256, "target": manifest.target.name,
                     "signer": manifest.signer.fingerprint, "pipelines": manifest.pipelines})
        if info.get("status") != "good":
            info.update({"status": "staged", "reason": None})
        state["releases"][version] = info
        add_event(state, "staged", version, f"current was {previous or 'none'}" + ("; release folder reused" if reused else "")
                  + (f"; removed interrupted staging {', '.join(cleaned)}" if cleaned else ""))
        save_state(layout, state)
        switch_symlink(layout.current, f"releases/{version}")
    seconds["total"] = sum(seconds.values())
    return StageResult(version, release, previous, reused, cleaned, verified, seconds)

