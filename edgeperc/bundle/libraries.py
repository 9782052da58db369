"""Which kernel and plugin libraries go into a bundle: the ones built for the target's machine,
known from their ELF headers. For an aarch64 (Jetson) target the host kernel library is
cross-compiled with CMake when Debian's ``aarch64-linux-gnu-g++`` is installed; the CUDA
library and the TensorRT plugin need aarch64 CUDA libraries to link and are not cross-built here.
Every candidate is recorded, included or not, with its machine and the reason."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeperc.bundle.elf import host_machine, read_elf
from edgeperc.bundle.manifest import LibraryEntry

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = REPO_ROOT / "kernels" / "cmake" / "aarch64-linux-gnu.cmake"
CROSS_CXX = "aarch64-linux-gnu-g++"
# name -> (kind, path relative to the CMake build folder)
CANDIDATES = {
    "libedgeperc_kernels_host.so": ("kernels-host", "libedgeperc_kernels_host.so"),
    "libedgeperc_kernels_cuda.so": ("kernels-cuda", "libedgeperc_kernels_cuda.so"),
    "libedgeperc_trt_plugin.so": ("trt-plugin", "kernels/plugin/libedgeperc_trt_plugin.so"),
}
DEVICE_BUILD = "cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=87 && cmake --build build -j$(nproc)"


@dataclass(frozen=True)
class CollectedLibrary:
    entry: LibraryEntry
    source: Path | None  # file to copy into the bundle when included


def target_arch(target) -> str:
    """aarch64 for Jetson targets (a JetPack version is set), x86-64 otherwise. TargetConfig has no
    arch field; every shipped target follows this rule."""
    return "aarch64" if target.jetpack else "x86-64"


def header_abi() -> int | None:
    header = REPO_ROOT / "kernels" / "include" / "edgeperc" / "kernels.h"
    if not header.is_file():
        return None
    match = re.search(r"#define\s+EP_ABI_VERSION\s+(\d+)", header.read_text())
    return int(match.group(1)) if match else None


def loaded_abi(path: Path) -> int | None:
    """ep_abi_version() of a library this machine can load, else None."""
    try:
        lib = ctypes.CDLL(str(path))
        lib.ep_abi_version.restype = ctypes.c_int32
        return int(lib.ep_abi_version())
    except (OSError, AttributeError):
        return None


def cross_compile_host(build_dir: Path, log: list[str]) -> Path | None:
    """Cross-compile libedgeperc_kernels_host.so for aarch64 into ``build_dir``; None (with the
    reason in ``log``) when the cross compiler or the toolchain file is missing or the build fails."""
    if shutil.which(CROSS_CXX) is None:
        log.append(f"{CROSS_CXX} is not installed here (Debian: apt-get install g++-aarch64-linux-gnu): "
                   "the aarch64 host kernel library was not cross-compiled")
        return None
    if not TOOLCHAIN.is_file() or not (REPO_ROOT / "CMakeLists.txt").is_file():
        log.append(f"toolchain file {TOOLCHAIN} or the CMake project is missing (not a source checkout)")
        return None
    configure = ["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir), f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                 "-DEDGEPERC_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    build = ["cmake", "--build", str(build_dir), "--target", "edgeperc_kernels_host", "-j2"]
    for command in (configure, build):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            first = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "?")
            log.append(f"cross-compiling the host kernel library failed ({' '.join(command[:2])}, exit {result.returncode}): "
                       f"{first[:200]}")
            return None
    built = build_dir / "libedgeperc_kernels_host.so"
    return built if built.is_file() else None


def collect_libraries(target, kernels_dir: Path, cross_compile: bool = True) -> tuple[list[CollectedLibrary], list[str]]:
    """Libraries for ``target``'s machine from ``kernels_dir`` (a CMake build folder), with notes."""
    arch, notes = target_arch(target), []
    sm = target.gpu.sm if target.gpu is not None else None
    here = host_machine()
    collected: list[CollectedLibrary] = []
    for name, (kind, relative) in CANDIDATES.items():
        path = kernels_dir / relative
        if kind != "kernels-host" and target.gpu is None:
            collected.append(CollectedLibrary(LibraryEntry(name=name, kind=kind, included=False,
                                                           note="target has no GPU: not needed"), None))
            continue
        found = read_elf(path) if path.is_file() else None
        if kind == "kernels-host" and arch != (found.machine if found else None) and arch != here and cross_compile:
            cross = cross_compile_host(kernels_dir.parent / f"{kernels_dir.name}-{arch}", notes)
            if cross is not None:
                path, found = cross, read_elf(cross)
        if found is None:
            collected.append(CollectedLibrary(LibraryEntry(name=name, kind=kind, included=False,
                                                           note=f"not built in {kernels_dir}"), None))
            continue
        problems = []
        if found.machine != arch:
            problems.append(f"built for {found.machine}, the target runs {arch}")
        if kind != "kernels-host" and sm is not None and sm not in found.sass_sm:
            problems.append(f"no sm_{sm} SASS (has {', '.join(f'sm_{s}' for s in found.sass_sm) or 'none'})")
        abi, abi_source = None, None
        if kind != "trt-plugin":
            if found.machine == here:
                abi, abi_source = loaded_abi(path), "ep_abi_version() of the library"
            if abi is None:
                abi, abi_source = header_abi(), "kernels.h it was built from"
        if problems:
            how = (f"cross-compile with {CROSS_CXX} or build on the device: {DEVICE_BUILD}" if kind == "kernels-host"
                   else f"needs aarch64 CUDA libraries to link: build on the device ({DEVICE_BUILD})")
            note = f"{'; '.join(problems)}; {how}"
            entry = LibraryEntry(name=name, kind=kind, included=False, source=str(path), elf_machine=found.machine,
                                 sass_sm=list(found.sass_sm), abi=abi, abi_source=abi_source, note=note)
            collected.append(CollectedLibrary(entry, None))
            continue
        entry = LibraryEntry(name=name, kind=kind, included=True, path=f"lib/{name}", source=str(path),
                             elf_machine=found.machine, sass_sm=list(found.sass_sm), abi=abi, abi_source=abi_source,
                             note="cross-compiled here" if path.parent != kernels_dir and kind == "kernels-host" else "")
        collected.append(CollectedLibrary(entry, path))
    if arch == "aarch64" and not any(c.entry.included and c.entry.kind == "kernels-host" for c in collected):
        notes.append("no aarch64 kernel library in the bundle: the pipelines fall back to OpenCV on the device until "
                     f"the kernels are built there ({DEVICE_BUILD})")
    return collected, notes
