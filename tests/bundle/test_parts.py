"""Pure parts: ELF machine read from headers, member-name safety, library selection notes."""

from __future__ import annotations

import struct

import pytest

from edgeperc.bundle.elf import read_elf
from edgeperc.bundle.errors import ArchiveError
from edgeperc.bundle.libraries import collect_libraries, target_arch
from edgeperc.bundle.manifest import safe_member_path
from edgeperc.targets import load_target

from .conftest import BUILD


def _elf_header(machine: int) -> bytes:
    """A minimal 64-bit little-endian ELF header (no sections)."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, 0, 0, 64, 0, 0, 64, 0, 0)


@pytest.mark.parametrize("machine,name", [(183, "aarch64"), (62, "x86-64"), (40, "arm"), (999, "unknown (999)")])
def test_elf_machine_from_the_header(tmp_path, machine, name):
    path = tmp_path / "lib.so"
    path.write_bytes(_elf_header(machine))
    assert read_elf(path).machine == name


def test_not_an_elf_file(tmp_path):
    (tmp_path / "x.so").write_bytes(b"not elf at all")
    with pytest.raises(ValueError):
        read_elf(tmp_path / "x.so")


@pytest.mark.skipif(not (BUILD / "libedgeperc_kernels_cuda.so").is_file(), reason="CUDA kernel library not built (no nvcc)")
def test_built_cuda_library_carries_sm87_sass():
    info = read_elf(BUILD / "libedgeperc_kernels_cuda.so")
    assert 87 in info.sass_sm and info.machine in ("x86-64", "aarch64")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "/abs", "a//b", "./a", "a\\b", "a\x00b", "", "C:/x"])
def test_unsafe_member_names(name):
    with pytest.raises(ArchiveError):
        safe_member_path(name)


def test_safe_member_names():
    assert safe_member_path("models/ynet-barcode-w8.onnx") == "models/ynet-barcode-w8.onnx"


def test_target_arch_rule():
    assert target_arch(load_target("x86-scanner-host")) == "x86-64"
    assert {target_arch(load_target(n)) for n in ("orin-nx-16gb", "agx-orin-64gb", "orin-nano-8gb", "drone-orin-nx")} == {"aarch64"}


def test_wrong_arch_libraries_are_recorded_not_shipped(monkeypatch, tmp_path):
    """Only x86-64 libraries here and no cross compiler: nothing shipped to the aarch64 target, every
    candidate recorded with the machine its ELF header names and the reason."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no aarch64-linux-gnu-g++ on PATH
    libs, notes = collect_libraries(load_target("orin-nx-16gb"), BUILD)
    assert not any(lib.entry.included for lib in libs)
    assert any("aarch64-linux-gnu-g++ is not installed" in note for note in notes)
    for lib in libs:
        if lib.entry.source:
            assert lib.entry.elf_machine == "x86-64" and "the target runs aarch64" in lib.entry.note


def test_model_precision_choice(tmp_path):
    """INT8 targets take <stem>.int8.onnx when it is there, else the FP32 file with a note saying so;
    TensorRT fp16 targets ship the FP32 ONNX and build fp16 engines."""
    import shutil

    from edgeperc.bundle.create import choose_model

    from .conftest import WEIGHTS

    shutil.copy(WEIGHTS / "ynet-barcode-w8.onnx", tmp_path / "ynet-barcode-w8.onnx")
    host, nx = load_target("x86-scanner-host"), load_target("orin-nx-16gb")
    notes: list[str] = []
    path, onnx_precision, engine = choose_model("ynet-barcode-w8", tmp_path, host, "int8", notes)
    assert path.name == "ynet-barcode-w8.onnx" and (onnx_precision, engine) == ("fp32", "fp32")
    assert "no INT8 model ynet-barcode-w8.int8.onnx" in notes[0] and "edgeperc quantize" in notes[0]
    shutil.copy(WEIGHTS / "ynet-barcode-w8.onnx", tmp_path / "ynet-barcode-w8.int8.onnx")
    path, onnx_precision, _ = choose_model("ynet-barcode-w8", tmp_path, host, "int8", [])
    assert path.name == "ynet-barcode-w8.int8.onnx" and onnx_precision == "int8"
    assert choose_model("ynet-barcode-w8", tmp_path, nx, "fp16", [])[1:] == ("fp32", "fp16")
    notes = []  # not QDQ: TensorRT could not build INT8 from it, so FP32 + fp16 engine, and a note
    assert choose_model("ynet-barcode-w8", tmp_path, nx, "int8", notes)[1:] == ("fp32", "fp16") and "QDQ" in notes[0]
