"""`edgeperc bundle ...`: deployment bundles for flashing devices (keygen, create, verify, stage,
activate, inspect). The work is in edgeperc.bundle; this module parses options and prints."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from edgeperc.errors import ConfigError

bundle_app = typer.Typer(no_args_is_help=True, help="Signed deployment bundles: keygen, create, verify, stage, activate, inspect.")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def _progress(in_bytes: bool = True) -> Iterator:
    """A callback (label, done, total) drawing one bar per label on stderr."""
    columns = [TextColumn("{task.description}"), BarColumn()]
    columns += [DownloadColumn()] if in_bytes else [TextColumn("{task.completed:.0f}/{task.total:.0f}")]
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(label: str, done: float, total: float) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def _frame_sizes(text: Optional[str]) -> dict[str, int]:
    """'barcode=1024,depth=256' -> {'barcode': 1024, 'depth': 256}."""
    sizes = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigError(f"--frame-size {text!r}: expected PIPELINE=PIXELS[,PIPELINE=PIXELS], e.g. barcode=1024,depth=512")
        sizes[name.strip()] = int(value)
    return sizes


def _public_key(path: Path):
    from edgeperc.bundle.signing import load_public_key

    return load_public_key(path)


@bundle_app.command()
def keygen(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for edgeperc-bundle.key (0600) and edgeperc-bundle.pub."),
    name: str = typer.Option("edgeperc-bundle", help="File name stem of the key pair."),
) -> None:
    """Make an Ed25519 signing key pair; never overwrites an existing key."""
    from edgeperc.bundle.signing import generate_keypair

    private_path, public_path, fp = generate_keypair(out, name)
    console.print(f"[green]wrote[/green] {private_path} (private, mode 0600: keep it off devices) and {public_path}", highlight=False)
    console.print(f"fingerprint {fp}", highlight=False)


@bundle_app.command()
def create(
    target: str = typer.Option(..., help="Device target: firmware_configs/X.yaml or a shipped name."),
    pipelines: str = typer.Option(..., help="Comma-separated pipelines: barcode, depth."),
    key: Path = typer.Option(..., help="Ed25519 private key (from `edgeperc bundle keygen`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Bundle file to write, e.g. scanner-1.2.0.edgeperc."),
    version: Optional[str] = typer.Option(None, help="Release version (names the folder on the device); default <edgeperc version>-<UTC time>."),
    kernels_dir: Path = typer.Option(Path("build"), help="CMake build folder with the kernel and plugin libraries."),
    models_dir: Optional[Path] = typer.Option(None, help="Folder with the ONNX models (default: the shipped weights)."),
    precision: Optional[str] = typer.Option(None, help="Model precision (default: the target's default_precision)."),
    baseline: Optional[Path] = typer.Option(None, help="Ship this latency-test baseline JSON instead of measuring one."),
    measure_baseline: Optional[bool] = typer.Option(None, "--measure-baseline/--first-boot-baseline",
                                                   help="Measure the baseline here (default for x86 targets) or leave it to the first boot (default for Jetsons)."),
    iterations: int = typer.Option(10, min=1, help="Latency iterations per pipeline (baseline here and at first boot)."),
    warmup: int = typer.Option(2, min=0, help="Untimed iterations first."),
    input_count: int = typer.Option(2, min=1, help="Generated inputs per pipeline."),
    frame_size: Optional[str] = typer.Option(None, help="Generated input sizes, e.g. barcode=4096,depth=1024 (the defaults)."),
    tolerance: float = typer.Option(0.2, min=0.0, help="Regression over the baseline tolerated at first boot (0.2 = 20 %)."),
    gzip: bool = typer.Option(False, "--gzip/--no-gzip", help="Compress the tar (ONNX weights shrink little)."),
    cross_compile: bool = typer.Option(True, "--cross-compile/--no-cross-compile", help="Cross-compile the aarch64 host kernel library when aarch64-linux-gnu-g++ is installed."),
) -> None:
    """Build a signed bundle: models, target, libraries for the target's machine, runtime version, latency baseline."""
    from edgeperc.bundle.create import create_bundle
    from edgeperc.bundle.manifest import LatencySettings

    settings = LatencySettings(iterations=iterations, warmup=warmup, input_count=input_count, seed=0,
                               frame_size=_frame_sizes(frame_size), tolerance=tolerance)
    with _progress(in_bytes=False) as progress:
        result = create_bundle(target, pipelines.split(","), key, out, version=version, kernels_dir=kernels_dir,
                               models_dir=models_dir, precision=precision, baseline=baseline, measure_baseline=measure_baseline,
                               settings=settings, gzip=gzip, cross_compile=cross_compile, progress=progress)
    manifest = result.manifest
    for library in manifest.libraries:
        where = f"[green]included[/green] ({library.elf_machine})" if library.included else "[yellow]not included[/yellow]"
        console.print(f"  {library.name}: {where}" + (f" — {escape(library.note)}" if library.note else ""), highlight=False)
    console.print(f"  baseline: {manifest.baseline.status} — {escape(manifest.baseline.note)}", highlight=False)
    for note in manifest.notes:
        console.print(f"  [yellow]note[/yellow] {escape(note)}", highlight=False)
    console.print(f"[green]wrote[/green] {result.path}: {manifest.name} {manifest.version} for {manifest.target.name} "
                  f"({len(manifest.files)} files, {result.archive_bytes / 2**20:.2f} MiB), signed by {manifest.signer.fingerprint}",
                  highlight=False)


@bundle_app.command()
def verify(
    bundle: Path = typer.Argument(..., help="Bundle file (.edgeperc)."),
    key: Path = typer.Option(..., help="Trusted Ed25519 public key (.pub)."),
    target: Optional[str] = typer.Option(None, help="Refuse a bundle for another target (and use its storage budget)."),
) -> None:
    """Check signature, every file's sha256, no missing/extra/unsafe members, target, runtime, storage; writes nothing."""
    from edgeperc.bundle.verify import verify_bundle

    public_key = _public_key(key)
    with _progress() as progress:
        verified = verify_bundle(bundle, public_key, target, progress=progress)
    manifest = verified.manifest
    console.print(f"[green]verified[/green] {bundle}: {manifest.name} {manifest.version} for {manifest.target.name}, "
                  f"{len(manifest.files)} files ({manifest.total_bytes / 2**20:.2f} MiB), signed by {manifest.signer.fingerprint}, "
                  f"edgeperc {manifest.runtime.edgeperc}", highlight=False)


@bundle_app.command()
def stage(
    bundle: Path = typer.Argument(..., help="Bundle file (.edgeperc)."),
    key: Path = typer.Option(..., help="Trusted Ed25519 public key (.pub); copied into the rootfs for first boot."),
    rootfs: Path = typer.Option(..., help="Root filesystem tree (e.g. Linux_for_Tegra/rootfs, or / on a device)."),
    target: Optional[str] = typer.Option(None, help="Refuse a bundle for another target."),
    exec_path: str = typer.Option("/usr/bin/env edgeperc", help="How the first-boot unit starts edgeperc on the device."),
) -> None:
    """Verify, then install into ROOTFS/opt/edgeperc/releases/<version>, switch `current`, add the first-boot unit."""
    from edgeperc.bundle.stage import stage_bundle

    public_key = _public_key(key)
    with _progress() as progress:
        result = stage_bundle(bundle, public_key, rootfs, target, exec_path=exec_path, progress=progress)
    for name in result.cleaned:
        console.print(f"  removed {name} (left by an interrupted stage)", highlight=False)
    console.print(f"[green]staged[/green] {result.version} into {result.release}"
                  + (" (already there, intact: reused)" if result.reused else "")
                  + f"; current: {result.previous or 'none'} -> {result.version}; first boot runs `edgeperc bundle activate`",
                  highlight=False)


@bundle_app.command()
def activate(
    root: Path = typer.Option(Path("/"), help="Root of the device filesystem (a staged rootfs tree to try it here)."),
    key: Optional[Path] = typer.Option(None, help="Public key (default: the trusted keys stage put in ROOT/etc/edgeperc/bundle-keys)."),
    engine_cache: Optional[Path] = typer.Option(None, help="Engine cache (default ROOT/var/cache/edgeperc/engines)."),
    iterations: Optional[int] = typer.Option(None, min=1, help="Latency iterations (default: the bundle's)."),
    warmup: Optional[int] = typer.Option(None, min=0, help="Untimed iterations (default: the bundle's)."),
    tolerance: Optional[float] = typer.Option(None, min=0.0, help="Baseline tolerance (default: the bundle's)."),
    input_count: Optional[int] = typer.Option(None, min=1, help="Generated inputs (default: the bundle's)."),
    frame_size: Optional[str] = typer.Option(None, help="Generated input sizes, e.g. barcode=1024 (default: the bundle's)."),
    force: bool = typer.Option(False, help="Run engines and the latency test even when the release is already good."),
) -> None:
    """First boot: verify the current release, build engines, latency test, mark good — or roll back."""
    from edgeperc.bundle.activate import activate_release
    from edgeperc.bundle.errors import ActivationError

    public_key = _public_key(key) if key is not None else None
    with _progress(in_bytes=False) as progress:
        result = activate_release(root, public_key, engine_cache, iterations, warmup, tolerance, input_count,
                                  _frame_sizes(frame_size) or None, force, progress)
    if result.engine_path:
        console.print(f"  ran on: {escape(result.engine_path)}", highlight=False)
    for note in result.notes:
        console.print(f"  {escape(note)}", highlight=False)
    for check in result.checks:
        console.print(f"  [{'green' if check.passed else 'red'}]{'ok' if check.passed else 'FAIL'}[/] {escape(check.message())}", highlight=False)
    if result.ok:
        console.print(f"[green]{'already good' if result.status == 'already-good' else 'activated'}[/green] {result.version}", highlight=False)
        return
    where = f"rolled back to {result.rolled_back_to}" if result.rolled_back_to else "no previous good release to roll back to"
    raise ActivationError(f"activation of {result.version} failed: {result.reason}; {where} (recorded in {Path(root) / 'opt/edgeperc/state.json'})")


@bundle_app.command()
def inspect(
    bundle: Path = typer.Argument(..., help="Bundle file (.edgeperc)."),
    key: Optional[Path] = typer.Option(None, help="Also verify with this public key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Files, target, versions, signer fingerprint, sizes, library architectures."""
    from edgeperc.bundle.inspect import format_inspection, inspect_bundle

    data = inspect_bundle(bundle, _public_key(key) if key is not None else None)
    if as_json:
        print(json.dumps(data, indent=1))
        return
    for line in format_inspection(data):
        console.print(line, highlight=False, markup=False)
