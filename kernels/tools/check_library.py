#!/usr/bin/env python3
"""Check a built library (kernels or TensorRT plugin): exported entry points, undefined symbols,
embedded GPU code (which SM architectures carry SASS).

    check_library.py --library libedgeperc_trt_plugin.so --export getCreators \
        --export setLoggerFinder --arch 87 --arch 90 --no-tensorrt-undefined

GPU code is listed with ``cuobjdump --list-elf`` when cuobjdump is found (PATH, $CUDA_PATH/bin,
the directory of nvcc, or the ``nvidia-cuda-cuobjdump`` wheel); otherwise the ``.nv_fatbin``
section is read directly (fatbin entry headers carry the SM number), and the report says which.
Exit status 0 when every check passes, 1 otherwise; one line per finding.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
TENSORRT_SYMBOL = re.compile(r"(^_ZN8nvinfer1|^_ZNK8nvinfer1|^getPluginRegistry$|^getInferLib|^createInfer|^getBuilderPluginRegistry$)")


def dynamic_symbols(library: Path) -> tuple[set[str], dict[str, str]]:
    """(defined dynamic symbols, {undefined symbol: nm type letter}) via ``nm -D``."""
    nm = shutil.which("nm")
    if nm is None:
        raise SystemExit("nm not found (binutils)")
    defined = subprocess.run([nm, "-D", "--defined-only", str(library)], check=True, capture_output=True, text=True).stdout
    undefined = subprocess.run([nm, "-D", "--undefined-only", str(library)], check=True, capture_output=True, text=True).stdout
    names = {line.split()[-1].split("@")[0] for line in defined.splitlines() if line.strip()}
    missing = {}
    for line in undefined.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            missing[parts[-1].split("@")[0]] = parts[-2]
    return names, missing


def find_cuobjdump(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).is_file() else None
    found = shutil.which("cuobjdump")
    if found:
        return found
    candidates = []
    for env in ("CUDA_PATH", "CUDA_HOME", "CUDAToolkit_ROOT"):
        if os.environ.get(env):
            candidates.append(Path(os.environ[env]) / "bin" / "cuobjdump")
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent / "cuobjdump")
    candidates.append(Path("/usr/local/cuda/bin/cuobjdump"))
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        candidates += [Path(p) for p in glob.glob(os.path.join(site, "nvidia", "*", "bin", "cuobjdump"))]
        candidates += [Path(p) for p in glob.glob(os.path.join(site, "nvidia", "cuda_cuobjdump", "bin", "cuobjdump"))]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def archs_from_cuobjdump(cuobjdump: str, library: Path) -> set[int]:
    out = subprocess.run([cuobjdump, "--list-elf", str(library)], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cuobjdump --list-elf failed: {out.stderr.strip()}")
    return {int(m) for m in re.findall(r"\.sm_(\d+)[a-z]?\.cubin", out.stdout)}


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """Contents of one section of a 64-bit little-endian ELF file (what nvcc produces here)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit("not a 64-bit little-endian ELF file")
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        base = e_shoff + i * e_shentsize
        name, = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, str_off, _ = header(e_shstrndx)
    for i in range(e_shnum):
        name_off, offset, size = header(i)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end].decode() == wanted:
            return data[offset:offset + size]
    return None


def archs_from_fatbin(library: Path) -> tuple[set[int], set[int]]:
    """({SM of each ELF (SASS) entry}, {SM of each PTX entry}) read from ``.nv_fatbin``."""
    section = elf_section(library.read_bytes(), ".nv_fatbin")
    if section is None:
        return set(), set()
    sass, ptx = set(), set()
    pos = 0
    while pos + 16 <= len(section):
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", section, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fatbins are 8-byte aligned; skip padding
            continue
        entry = pos + header_size
        end = entry + fat_size
        while entry + 32 <= end:
            kind, _unknown, entry_header, payload = struct.unpack_from("<HHIQ", section, entry)
            arch, = struct.unpack_from("<I", section, entry + 28)
            (sass if kind == 2 else ptx).add(arch)
            if entry_header == 0:
                break
            entry += entry_header + payload
        pos = end
    return sass, ptx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", required=True, type=Path)
    parser.add_argument("--export", action="append", default=[], help="symbol that must be exported")
    parser.add_argument("--arch", action="append", type=int, default=[], help="SM number that must have SASS (87, 90)")
    parser.add_argument("--no-tensorrt-undefined", action="store_true", help="fail on any undefined TensorRT symbol")
    parser.add_argument("--cuobjdump", help="path of cuobjdump (default: searched)")
    args = parser.parse_args(argv)

    failures: list[str] = []
    exported, undefined = dynamic_symbols(args.library)
    for name in args.export:
        print(f"export {name}: {'yes' if name in exported else 'MISSING'}")
        if name not in exported:
            failures.append(f"{name} is not exported")
    tensorrt_undefined = sorted(n for n in undefined if TENSORRT_SYMBOL.search(n))
    print(f"undefined symbols: {len(undefined)} (TensorRT: {', '.join(tensorrt_undefined) or 'none'})")
    if args.no_tensorrt_undefined and tensorrt_undefined:
        failures.append("undefined TensorRT symbols: " + ", ".join(tensorrt_undefined))

    if args.arch:
        cuobjdump = find_cuobjdump(args.cuobjdump)
        if cuobjdump:
            sass = archs_from_cuobjdump(cuobjdump, args.library)
            print(f"SASS (cuobjdump --list-elf, {cuobjdump}): {', '.join(f'sm_{a}' for a in sorted(sass)) or 'none'}")
        else:
            sass, ptx = archs_from_fatbin(args.library)
            print(f"SASS (.nv_fatbin headers; no cuobjdump found): {', '.join(f'sm_{a}' for a in sorted(sass)) or 'none'}"
                  f"; PTX: {', '.join(f'compute_{a}' for a in sorted(ptx)) or 'none'}")
        for arch in args.arch:
            if arch not in sass:
                failures.append(f"no sm_{arch} code in the library")

    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
