"""Where a release lives in a root filesystem (``/`` on the device, Linux_for_Tegra/rootfs on the
build host), the state file that says which releases are good, and the atomic file operations
every change goes through (temp name + fsync + rename; a reader sees the old or the new state)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator

from edgeperc.bundle.errors import StageError

STATE_SCHEMA = "edgeperc.bundle-state/1"
UNIT_NAME = "edgeperc-firstboot.service"
STAGING_PREFIX = ".staging-"


class Layout:
    """Paths of the edgeperc deployment under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.base = self.root / "opt" / "edgeperc"
        self.releases = self.base / "releases"
        self.current = self.base / "current"
        self.state_file = self.base / "state.json"
        self.baselines = self.base / "baselines"
        self.lock_file = self.base / ".lock"
        self.keys = self.root / "etc" / "edgeperc" / "bundle-keys"
        self.unit = self.root / "etc" / "systemd" / "system" / UNIT_NAME
        self.wants = self.root / "etc" / "systemd" / "system" / "multi-user.target.wants" / UNIT_NAME
        self.engine_cache = self.root / "var" / "cache" / "edgeperc" / "engines"

    def release(self, version: str) -> Path:
        return self.releases / version

    def current_version(self) -> str | None:
        """The version ``current`` points at (``releases/<version>``), None when there is none."""
        if not self.current.is_symlink():
            if self.current.exists():
                raise StageError(f"{self.current} is not a symlink: refusing to touch a layout edgeperc did not make")
            return None
        target = os.readlink(self.current)
        parts = Path(target).parts
        if len(parts) != 2 or parts[0] != "releases":
            raise StageError(f"{self.current} points at {target!r}, expected releases/<version>")
        return parts[1]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically: a new symlink under a temp name, then rename over."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-{secrets.token_hex(4)}")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    finally:
        if tmp.is_symlink():
            tmp.unlink()
    fsync_dir(link.parent)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One stage/activate at a time per rootfs (an advisory flock on opt/edgeperc/.lock)."""
    import fcntl

    layout.base.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StageError(f"another edgeperc bundle stage/activate holds {layout.lock_file}") from None
        yield
    finally:
        os.close(fd)


# --- state file -----------------------------------------------------------------------------------


def load_state(layout: Layout) -> dict[str, Any]:
    if not layout.state_file.is_file():
        return {"schema": STATE_SCHEMA, "target": None, "releases": {}, "history": []}
    try:
        state = json.loads(layout.state_file.read_text())
    except (ValueError, OSError) as exc:
        raise StageError(f"state file {layout.state_file} is unreadable: {exc}") from exc
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise StageError(f"state file {layout.state_file}: expected schema {STATE_SCHEMA!r}")
    return state


def save_state(layout: Layout, state: dict[str, Any]) -> None:
    write_atomic(layout.state_file, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def add_event(state: dict[str, Any], event: str, version: str | None, detail: str = "") -> None:
    state["history"].append({"utc": utc_now(), "event": event, "version": version, "detail": detail})


def good_releases(state: dict[str, Any], layout: Layout, exclude: str | None = None) -> list[str]:
    """Good releases still on disk, most recently activated first."""
    good = [(info.get("activated_utc") or "", version) for version, info in state["releases"].items()
            if info.get("status") == "good" and version != exclude and layout.release(version).is_dir()]
    return [version for _, version in sorted(good, reverse=True)]
