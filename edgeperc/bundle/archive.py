"""The bundle file: a tar (plain or gzip) of regular files only, written deterministically, and
read as a stream — each member is checked (name, type, size) and hashed as it passes, so a
hostile archive is refused before a single byte of it lands in a destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from edgeperc.bundle.errors import ArchiveError, StageError, StorageBudgetError
from edgeperc.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, safe_member_path

CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 4 << 20  # bundle.json and its signature are small; a huge one is hostile

Progress = Callable[[str, float, float], None]  # (label, done, total)
# A sink receives each verified-safe member: sink(name) -> writable binary handle or None (skip).
Sink = Callable[[str], "BinaryIO | None"]


@dataclass(frozen=True)
class Member:
    path: str
    size: int
    sha256: str


@dataclass
class ScanResult:
    members: dict[str, Member]
    kept: dict[str, bytes]  # bundle.json, bundle.json.sig and the small files the caller asked to keep
    archive_bytes: int
    archive_sha256: str
    compressed: bool

    @property
    def manifest_bytes(self) -> bytes | None:
        return self.kept.get(MANIFEST_NAME)

    @property
    def signature(self) -> bytes | None:
        return self.kept.get(SIGNATURE_NAME)


class _HashingReader:
    """The raw archive as it is read, hashed and counted on the way (one pass)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest, self.count = handle, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


class _TarStream:
    """The tar byte stream as tarfile reads it (decompressed when gzip), counted, with the last
    bytes kept so the end of the archive can be checked after tarfile has stopped reading."""

    TAIL = 1 << 20

    def __init__(self, source) -> None:
        self.source, self.count, self.tail, self.tail_start = source, 0, bytearray(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.count += len(data)
        self.tail += data
        if len(self.tail) > 2 * self.TAIL:
            cut = len(self.tail) - self.TAIL
            del self.tail[:cut]
            self.tail_start += cut
        return data

    def end_is_clean(self, last_member_end: int) -> bool:
        """Read to the end (a gzip stream checks its CRC and length here); True when what follows the
        last member is the end-of-archive marker (>= two 512-byte zero blocks) and zero padding only."""
        clean = True
        while chunk := self.source.read(CHUNK):
            self.count += len(chunk)
            clean = clean and not chunk.strip(b"\0")
        if last_member_end < self.tail_start:
            return False
        trailer_in_tail = bytes(self.tail[last_member_end - self.tail_start:])
        trailer = self.count - last_member_end
        return clean and trailer >= 1024 and not trailer_in_tail.strip(b"\0")


def write_archive(out: str | Path, files: Iterable[tuple[str, Path | bytes, int]], mtime: int, gzip_level: int | None = None,
                  progress: Progress | None = None) -> None:
    """``files``: (name in the bundle, source path or bytes, mode). Regular files only, uid/gid 0,
    fixed mtime: the same inputs give the same archive bytes (gzip header mtime fixed too)."""
    out = Path(out)
    items = list(files)
    total = sum(len(src) if isinstance(src, bytes) else src.stat().st_size for _, src, _ in items)
    done = 0
    raw = open(out, "wb")
    try:
        stream: BinaryIO = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=gzip_level, mtime=mtime) \
            if gzip_level is not None else raw
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name, src, mode in items:
                info = tarfile.TarInfo(safe_member_path(name))
                info.size = len(src) if isinstance(src, bytes) else src.stat().st_size
                info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = mtime, mode, 0, 0, "root", "root"
                if isinstance(src, bytes):
                    tar.addfile(info, io.BytesIO(src))
                else:
                    with open(src, "rb") as handle:
                        tar.addfile(info, handle)
                done += info.size
                if progress:
                    progress("write", done, total)
        if stream is not raw:
            stream.close()
    finally:
        raw.close()


def _member_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symlink -> {info.linkname}"
    if info.islnk():
        return f"hardlink -> {info.linkname}"
    if info.ischr() or info.isblk():
        return "device node"
    if info.isfifo():
        return "FIFO"
    if info.isdir():
        return "directory"
    if info.issparse():
        return "sparse file"
    return f"type {info.type!r}"


def _open_sink(sink: Sink | None, name: str):
    if sink is None:
        return None
    try:
        return sink(name)
    except OSError as exc:  # the destination's fault, not the archive's
        raise StageError(f"cannot write {name}: {exc}") from exc


def _write(dest: BinaryIO, chunk: bytes, name: str) -> None:
    try:
        dest.write(chunk)
    except OSError as exc:
        raise StageError(f"cannot write {name}: {exc}") from exc


def _close(dest: BinaryIO, name: str) -> None:
    try:
        dest.close()
    except OSError as exc:
        raise StageError(f"cannot write {name}: {exc}") from exc


def scan_archive(path: str | Path, sink: Sink | None = None, max_total_bytes: int | None = None,
                 budget_label: str = "", progress: Progress | None = None,
                 keep: Callable[[str], bool] | None = None) -> ScanResult:
    """Stream through the archive: every member must be a regular file with a safe, unique name;
    each is hashed (and handed to ``sink`` when given). ArchiveError for a truncated or corrupt
    archive or an unsafe member; StorageBudgetError as soon as the files exceed ``max_total_bytes``."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"bundle not found: {path}")
    archive_bytes = path.stat().st_size
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    members: dict[str, Member] = {}
    kept_files: dict[str, bytes] = {}
    total = 0
    try:
        with open(path, "rb") as handle:
            raw = _HashingReader(handle)
            # gzip.GzipFile (not tarfile's own "r|gz") checks the gzip CRC and length at the end.
            stream = _TarStream(gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw)
            tar = tarfile.open(fileobj=stream, mode="r|")
            for info in tar:
                name = safe_member_path(info.name)
                if not info.isreg() or info.issparse():
                    raise ArchiveError(f"bundle refused (archive): member {info.name!r} is a {_member_kind(info)}; "
                                       "a bundle holds regular files only")
                if name in members:
                    raise ArchiveError(f"bundle refused (archive): member {name!r} appears twice")
                total += info.size
                if max_total_bytes is not None and total > max_total_bytes:
                    raise StorageBudgetError(f"bundle refused (storage): its files exceed {budget_label} "
                                             f"({total / 2**20:.1f} MiB read so far)")
                source = tar.extractfile(info)
                digest, size = hashlib.sha256(), 0
                keep_it = name in (MANIFEST_NAME, SIGNATURE_NAME) or (keep is not None and keep(name))
                kept = bytearray()
                dest = _open_sink(sink, name)
                try:
                    while True:
                        chunk = source.read(CHUNK)
                        if not chunk:
                            break
                        digest.update(chunk)
                        size += len(chunk)
                        if keep_it:
                            if len(kept) + len(chunk) > MAX_MANIFEST_BYTES:
                                raise ArchiveError(f"bundle refused (archive): {name} is over {MAX_MANIFEST_BYTES >> 20} MiB")
                            kept += chunk
                        if dest is not None:
                            _write(dest, chunk, name)
                        if progress:
                            progress("read", raw.count, archive_bytes)
                finally:
                    if dest is not None:
                        _close(dest, name)
                if size != info.size:
                    raise ArchiveError(f"bundle refused (archive): member {name} is truncated ({size} of {info.size} bytes)")
                members[name] = Member(name, size, digest.hexdigest())
                if keep_it:
                    kept_files[name] = bytes(kept)
            # tarfile stops quietly at a cut header; the end-of-archive marker must be there, and
            # nothing but zeros after it (a second archive appended would be seen by other tools).
            last_end = tar.offset
            if not stream.end_is_clean(last_end):
                if stream.count - last_end < 1024:
                    raise ArchiveError(f"bundle refused (archive): {path.name} is truncated (no end-of-archive marker "
                                       f"after the last member, {stream.count - last_end} bytes follow it)")
                raise ArchiveError(f"bundle refused (archive): {path.name} has data after the end of the archive")
            while raw.read(CHUNK):  # hash the whole file (bytes after a gzip stream included)
                pass
            if compressed and raw.count != archive_bytes:
                raise ArchiveError(f"bundle refused (archive): {path.name} has data after the gzip stream")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise ArchiveError(f"bundle refused (archive): {path.name} is truncated or corrupt "
                           f"({type(exc).__name__}: {str(exc) or 'unexpected end of data'})") from exc
    if not members:
        raise ArchiveError(f"bundle refused (archive): {path.name} holds no files (empty or not a tar archive)")
    return ScanResult(members, kept_files, archive_bytes, raw.digest.hexdigest(), compressed)
