"""CLI verb `edgeperc generate panoramas`: equirectangular RGB + metric depth + valid masks."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeperc.errors import ConfigError


def parse_size_hw(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512); ConfigError unless it is HxW with W = 2 H."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size '{text}' must be HxW, e.g. 256x512") from None
    if height < 8 or width != 2 * height:
        raise ConfigError(f"--size {height}x{width} is not 1:2: equirectangular panoramas need W = 2 H (e.g. 256x512, 512x1024)")
    return height, width


def image_seed(seed: int, index: int) -> int:
    """Seed of panorama ``index`` in a set drawn with ``seed``: image i is the same whatever --count."""
    return seed * 1_000_003 + index


def generate_panoramas(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (rgb/, depth/, valid/, labels/, index.json)."),
    count: int = typer.Option(8, help="Number of panoramas."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same data set."),
    size: str = typer.Option("256x512", help="HxW, with W = 2 H (equirectangular)."),
    recipe_name: str = typer.Option("default", "--recipe", help="default, or shifted (other room sizes, lighting, density) for generalisation tests."),
) -> None:
    """Equirectangular RGB with sensor-like metric depth (16-bit PNG in mm and .npy in m), valid masks and surface labels."""
    import cv2
    import numpy as np

    from edgeperc.synth.panoramas import LABEL_NAMES, depth_to_mm, panorama_recipe, render_panorama

    if count < 1:
        raise ConfigError(f"--count {count} must be at least 1")
    recipe = panorama_recipe(recipe_name, parse_size_hw(size))
    for sub in ("rgb", "depth", "valid", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    records = []
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("generate", total=count)
        for index in range(count):
            this_seed = image_seed(seed, index)
            pano = render_panorama(np.random.default_rng(this_seed), recipe)
            stem = f"pano_{seed:04d}_{index:05d}"
            files = {"rgb": f"rgb/{stem}.png", "depth_png_mm": f"depth/{stem}.png", "depth_npy_m": f"depth/{stem}.npy",
                     "valid": f"valid/{stem}.png", "labels": f"labels/{stem}.png"}
            cv2.imwrite(str(out / files["rgb"]), pano.rgb[..., ::-1])
            cv2.imwrite(str(out / files["depth_png_mm"]), depth_to_mm(pano.depth))
            np.save(out / files["depth_npy_m"], pano.depth)
            cv2.imwrite(str(out / files["valid"]), pano.valid.astype(np.uint8) * 255)
            cv2.imwrite(str(out / files["labels"]), pano.labels)
            records.append({"index": index, "files": files, "seed": this_seed, "recipe": recipe_name, "metadata": pano.metadata})
            progress.advance(task)
    index_doc = {
        "description": "edgeperc synthetic equirectangular panoramas (sphere-traced SDF rooms)",
        "convention": "longitude along W from -pi to pi, latitude along H from +pi/2 (top) to -pi/2, z up, pixel centres at +0.5",
        "depth": "sensor reading in metres: clean ray length + N(0, sigma^2), sigma = a + b d^2, flying pixels at edges; 0 where invalid; PNG in mm (uint16)",
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "seed": seed, "recipe": recipe_name, "recipe_fields": recipe.model_dump(mode="json"),
        "images": records,
    }
    (out / "index.json").write_text(json.dumps(index_doc, indent=1) + "\n")
    Console().print(f"[green]wrote[/green] {count} panoramas ({recipe.size_hw[0]}x{recipe.size_hw[1]}, recipe '{recipe_name}') to {out}")
