"""CLI verbs of the barcode scanner: `edgeperc scan` and `edgeperc generate barcodes`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeperc.cli_batch import run_per_image
from edgeperc.errors import ConfigError
from edgeperc.models.shipped import shipped_model
from edgeperc.runtime.imageio import IMAGE_SUFFIXES

generate_app = typer.Typer(no_args_is_help=True, help="Generate synthetic data sets (deterministic per seed).")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate pipelines on generated held-out sets.")


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the images inside them (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    if not files:
        raise ConfigError("no images to scan (folders are searched for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    return files


def make_scanner(target: Optional[str], rpn_model: Optional[Path], ynet_model: Optional[Path], decode: bool = True):
    """A BarcodeScanner on the target's backend (ONNX Runtime CPU by default) with shipped models."""
    from edgeperc.runtime.backends.factory import open_backend
    from edgeperc.runtime.pipelines.barcode.pipeline import BarcodeScanner, ScanConfig
    from edgeperc.targets import load_target

    target_config = load_target(target) if target else None
    return BarcodeScanner(open_backend(rpn_model or shipped_model("barcode-rpn-w16.onnx"), target_config),
                          open_backend(ynet_model or shipped_model("ynet-barcode-w8.onnx"), target_config),
                          ScanConfig(decode=decode))


def scan(
    images: list[Path] = typer.Argument(..., help="Image files and/or folders of images."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML); default: ONNX Runtime on the CPU."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image on stdout."),
    save_vis: Optional[Path] = typer.Option(None, help="Folder for overlay PNGs (masks, proposals, boxes, text)."),
    rpn_model: Optional[Path] = typer.Option(None, help="RPN ONNX (default: the shipped barcode-rpn)."),
    ynet_model: Optional[Path] = typer.Option(None, help="Y-Net ONNX (default: the shipped ynet-barcode)."),
    max_pixels: int = typer.Option(1_000_000_000, help="Refuse images with more pixels than this."),
    no_decode: bool = typer.Option(False, help="Detect only; skip zxing-cpp decoding."),
) -> None:
    """Find and decode barcodes: proposals on a 256 px copy, Y-Net on 400 px crops, zxing-cpp."""
    from edgeperc.runtime.imageio import read_gray
    from edgeperc.runtime.pipelines.barcode.overlay import draw_overlay

    scanner = make_scanner(target, rpn_model, ynet_model, decode=not no_decode)
    files = expand_images(images)
    if save_vis:
        save_vis.mkdir(parents=True, exist_ok=True)

    def process(path: Path) -> dict:
        start = time.perf_counter()
        frame = read_gray(path, max_pixels)
        load_ms = (time.perf_counter() - start) * 1e3
        result = scanner.scan(frame)
        latency = {"load": load_ms, **result.latency_ms}
        latency["total"] = sum(latency.values())
        if save_vis:
            import cv2

            cv2.imwrite(str(save_vis / f"{path.stem}.overlay.png"), draw_overlay(frame, result))
        return {"width": result.width, "height": result.height, "latency_ms": {k: round(v, 2) for k, v in latency.items()},
                "barcodes": [b.as_json() for b in result.barcodes], "kernels": result.kernels}

    def describe(path: Path, record: dict) -> list[str]:
        decoded = [b for b in record["barcodes"] if b["text"]]
        lines = [f"{path}: {record['width']}x{record['height']}, {len(record['barcodes'])} barcode(s), "
                 f"{len(decoded)} decoded, {record['latency_ms']['total']:.0f} ms"]
        return lines + [f"  {b['format'] or '?':12s} {b['text'] if b['text'] else '(not decoded)'}  box {b['box']} score {b['score']:.2f}"
                        for b in record["barcodes"]]

    run_per_image("scan", files, as_json, process, describe)


@generate_app.command("barcodes")
def generate_barcodes(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (images/, low_res/, annotations.json)."),
    count: int = typer.Option(8, help="Number of scenes."),
    size: int = typer.Option(4096, help="Side of the square UHR canvas in pixels (e.g. 4096-16384)."),
    lr_size: int = typer.Option(256, help="Side of the low-resolution copy."),
    mean_count: float = typer.Option(4.0, help="Poisson mean of barcodes per scene."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same data set."),
    image_format: str = typer.Option("png", help="png or jpg for the UHR images."),
    recipe_name: str = typer.Option("default", "--recipe", help="Scene recipe, as in `eval barcode --recipe` (rotated-90, phone-photo...)."),
) -> None:
    """UHR barcode scenes with their 256 px copies and COCO ground truth (boxes, polygons, text)."""
    import cv2
    import numpy as np

    from edgeperc.synth.barcode_scenes import generate_scene, low_res_copy, stress_recipe
    from edgeperc.synth.coco import CocoWriter

    if image_format not in ("png", "jpg"):
        raise ConfigError(f"--image-format '{image_format}' must be png or jpg")
    recipe = stress_recipe(recipe_name, size, mean_count)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "low_res").mkdir(parents=True, exist_ok=True)
    writer = CocoWriter(description=f"edgeperc synthetic barcodes, seed {seed}, recipe '{recipe_name}' {recipe.model_dump_json()}")
    rng = np.random.default_rng(seed)
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("generate", total=count)
        for index in range(count):
            scene = generate_scene(rng, recipe)
            name = f"scene_{seed:04d}_{index:05d}.{image_format}"
            cv2.imwrite(str(out / "images" / name), scene.image)
            cv2.imwrite(str(out / "low_res" / name.replace(f".{image_format}", ".png")), low_res_copy(scene.image, lr_size))
            writer.add_image(name, scene.image.shape, scene.barcodes)
            progress.advance(task)
    writer.write(out / "annotations.json")
    Console().print(f"[green]wrote[/green] {count} scenes, {writer.annotation_count} barcodes to {out}")


@eval_app.command("barcode")
def eval_barcode(
    count: int = typer.Option(20, help="Held-out scenes to generate."),
    size: int = typer.Option(4096, help="Side of the square scenes in pixels."),
    seed: int = typer.Option(2024, help="Held-out seed (training used 0)."),
    mean_count: float = typer.Option(4.0, help="Poisson mean of barcodes per scene."),
    recipe: str = typer.Option("default", help="default, heavy-blur-noise, strong-perspective, low-contrast, tiny-codes, huge-codes, no-codes, other-renderer, rotated-90, phone-photo (480 px, one code)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML)."),
    rpn_model: Optional[Path] = typer.Option(None, help="RPN ONNX (default: shipped)."),
    ynet_model: Optional[Path] = typer.Option(None, help="Y-Net ONNX (default: shipped)."),
) -> None:
    """COCO AP/AR, pixel metrics, RPN recall and decode rate (the dissertation's Tables 3.1-3.3)."""
    from rich.table import Table

    from edgeperc.evaluation.barcode import PAPER_TABLE_3_1, evaluate_scanner
    from edgeperc.synth.barcode_scenes import stress_recipe

    scene_recipe = stress_recipe(recipe, size, mean_count)
    scanner = make_scanner(target, rpn_model, ynet_model)
    console = Console(stderr=as_json)
    with Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("eval", total=count)
        report = evaluate_scanner(scanner, scene_recipe, count, seed, progress=lambda: progress.advance(task))
    report["recipe"] = recipe
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table("metric", "edgeperc (this run)", "dissertation Table 3.1-3.3")
    for key, value in report.items():
        if isinstance(value, float):
            paper = PAPER_TABLE_3_1.get(key)
            table.add_row(key, f"{value:.4f}", "" if paper is None else f"{paper:g}")
    console.print(table)
