"""What a shared library was built for, read from its ELF header (never guessed from its name):
the machine (x86-64, AArch64 ...) and, for CUDA libraries, the SM architectures whose SASS the
``.nv_fatbin`` section carries (each fatbin entry header records its SM number)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

# e_machine values (elf.h)
MACHINES = {3: "x86", 40: "arm", 62: "x86-64", 183: "aarch64", 243: "riscv"}
FATBIN_MAGIC = 0xBA55ED50


@dataclass(frozen=True)
class ElfInfo:
    machine: str  # "x86-64", "aarch64", ... or "unknown (N)"
    bits: int  # 32 | 64
    sass_sm: tuple[int, ...] = field(default=())  # SM numbers with SASS in .nv_fatbin (CUDA code)
    ptx_sm: tuple[int, ...] = field(default=())


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def _section(data: bytes, wanted: str) -> bytes | None:
    """Contents of one section of a 64-bit little-endian ELF image, or None."""
    if len(data) < 0x40 or data[4] != 2 or data[5] != 1:
        return None
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if not e_shoff or e_shstrndx >= e_shnum or e_shoff + e_shnum * e_shentsize > len(data):
        return None

    def header(i: int) -> tuple[int, int, int]:
        base = e_shoff + i * e_shentsize
        name, = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, str_off, _ = header(e_shstrndx)
    for i in range(e_shnum):
        name_off, offset, size = header(i)
        start = str_off + name_off
        end = data.find(b"\0", start)
        if end > start and data[start:end] == wanted.encode() and offset + size <= len(data):
            return data[offset:offset + size]
    return None


def _fatbin_archs(section: bytes) -> tuple[set[int], set[int]]:
    sass, ptx = set(), set()
    pos = 0
    while pos + 16 <= len(section):
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", section, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fatbins are 8-byte aligned; skip padding
            continue
        entry, end = pos + header_size, pos + header_size + fat_size
        while entry + 32 <= min(end, len(section)):
            kind, _unknown, entry_header, payload = struct.unpack_from("<HHIQ", section, entry)
            arch, = struct.unpack_from("<I", section, entry + 28)
            (sass if kind == 2 else ptx).add(arch)
            if entry_header == 0:
                break
            entry += entry_header + payload
        pos = max(end, pos + 8)
    return sass, ptx


def read_elf(path: str | Path) -> ElfInfo:
    """ELF machine and CUDA architectures of ``path``; ValueError when it is not an ELF file."""
    data = Path(path).read_bytes()
    if not is_elf(data) or len(data) < 0x14:
        raise ValueError(f"{path} is not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4], 0)
    order = "<" if data[5] == 1 else ">"
    machine_id, = struct.unpack_from(order + "H", data, 0x12)
    machine = MACHINES.get(machine_id, f"unknown ({machine_id})")
    section = _section(data, ".nv_fatbin")
    sass, ptx = _fatbin_archs(section) if section else (set(), set())
    return ElfInfo(machine, bits, tuple(sorted(sass)), tuple(sorted(ptx)))


def host_machine() -> str:
    """This machine's architecture in the ELF names above (platform.machine() spelled like ELF)."""
    import platform

    name = platform.machine().lower()
    return {"x86_64": "x86-64", "amd64": "x86-64", "arm64": "aarch64"}.get(name, name)
