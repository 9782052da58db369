"""CLI verb `edgeperc generate aerial`: GRES-like aerial scenes with reasoning queries and target masks."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeperc.cli_panoramas import image_seed
from edgeperc.errors import ConfigError

MAX_QUERIES_PER_IMAGE = 32


def check_aerial_options(count: int, seed: int, size: int, queries_per_image: int, preview: int) -> None:
    """ConfigError naming the option and its allowed range for any bad value."""
    from edgeperc.synth.aerial import MAX_SIDE_PX, MIN_SIDE_PX, SIDE_MULTIPLE

    if count < 1:
        raise ConfigError(f"--count {count} must be at least 1")
    if seed < 0:
        raise ConfigError(f"--seed {seed} must be >= 0")
    if size % SIDE_MULTIPLE or not MIN_SIDE_PX <= size <= MAX_SIDE_PX:
        raise ConfigError(f"--size {size} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE_PX} and {MAX_SIDE_PX} "
                          "(e.g. 512, GRES's chip size)")
    if not 1 <= queries_per_image <= MAX_QUERIES_PER_IMAGE:
        raise ConfigError(f"--queries-per-image {queries_per_image} must be between 1 and {MAX_QUERIES_PER_IMAGE}")
    if preview < 0:
        raise ConfigError(f"--preview {preview} must be >= 0")


def generate_aerial(
    out: Path = typer.Option(..., "--out", "-o",
                             help="Output folder (images/, masks/, instances/, annotations.jsonl, index.json, preview.png)."),
    count: int = typer.Option(8, help="Number of images."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same data set."),
    size: int = typer.Option(512, help="Side of the square images in px (a multiple of 16, >= 128); object sizes stay in px."),
    recipe_name: str = typer.Option("default", "--recipe",
                                    help="default, or shifted (arid, denser, low sun, hazier) for generalisation tests."),
    queries_per_image: int = typer.Option(3, "--queries-per-image", help="Queries per image, each on a different target."),
    preview: int = typer.Option(6, help="Images shown in preview.png, each with one of its queries and masks (0: no preview)."),
) -> None:
    """Aerial scenes with templated reasoning queries that each single out one object, its mask, and a LISA-style answer."""
    import cv2
    import numpy as np

    from edgeperc.synth.aerial import CATEGORIES, SMALL_AREA_PX, aerial_recipe, render_aerial, size_class
    from edgeperc.synth.aerial_preview import draw_query_tile, montage
    from edgeperc.synth.aerial_queries import SMALL_TARGET_FRACTION, generate_queries, scene_geometry

    check_aerial_options(count, seed, size, queries_per_image, preview)
    recipe = aerial_recipe(recipe_name, (size, size))
    for sub in ("images", "masks", "instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    records, images, tiles = [], [], []
    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress, \
            (out / "annotations.jsonl").open("w") as annotations:
        task = progress.add_task("generate", total=count)
        for index in range(count):
            this_seed = image_seed(seed, index)
            scene = render_aerial(np.random.default_rng(this_seed), recipe)
            geometry = scene_geometry(scene)
            queries = generate_queries(scene, np.random.default_rng([this_seed, 1]), queries_per_image, geometry=geometry)
            stem = f"aerial_{seed:04d}_{index:05d}"
            image_file, instances_file = f"images/{stem}.png", f"instances/{stem}.png"
            cv2.imwrite(str(out / image_file), scene.image[..., ::-1])
            cv2.imwrite(str(out / instances_file), scene.instance_map)
            for q_index, query in enumerate(queries):
                target = scene.objects[query.target_id - 1]
                mask_file = f"masks/{stem}_i{query.target_id:03d}.png"
                cv2.imwrite(str(out / mask_file), query.mask.astype(np.uint8) * 255)
                record = {
                    "image": image_file, "query": query.text, "phrase": query.phrase, "answer": query.answer,
                    "mask": mask_file, "instance_id": query.target_id, "target_area_px": target.area_px,
                    "category": target.category, "colour": target.colour, "size_class": size_class(target.area_px),
                    "is_small": target.is_small, "bbox_xyxy": list(target.bbox_xyxy),
                    "centroid_xy": [round(v, 2) for v in target.centroid_xy], "reference_id": query.reference_id,
                    "spec": query.spec.to_json(), "image_index": index, "query_index": q_index, "seed": this_seed,
                }
                annotations.write(json.dumps(record) + "\n")
                records.append(record)
            images.append({"index": index, "image": image_file, "instances": instances_file, "seed": this_seed,
                           "queries": len(queries), "metadata": scene.metadata,
                           "objects": [o.to_json() for o in scene.objects]})
            if len(tiles) < preview and queries:
                q = queries[index % len(queries)]  # vary the query shown across tiles
                lines = [q.text, f"-> {q.answer}  ({q.area_px} px^2, {size_class(q.area_px)})"]
                ref_mask = scene.mask(q.reference_id) if q.reference_id else None
                tiles.append(draw_query_tile(scene.image, q.mask, lines, ref_mask))
            progress.advance(task)
    small = sum(r["is_small"] for r in records)
    summary = {"images": count, "queries": len(records), "small_targets": small, "large_targets": len(records) - small,
               "small_fraction": round(small / max(len(records), 1), 4),
               "per_category": {c: sum(r["category"] == c for r in records) for c in CATEGORIES}}
    index_doc = {
        "description": "edgeperc synthetic GRES-like aerial scenes: one query singles out one object (verified over all instances)",
        "convention": "image RGB PNG; instances/ uint16 PNG, 0 = background, i = objects[i-1]; masks/ 0/255 PNG per target; "
                      "centroid = mean pixel index (x = column); bbox_xyxy with exclusive x1, y1",
        "small_area_px": SMALL_AREA_PX, "small_target_fraction_asked": round(SMALL_TARGET_FRACTION, 4),
        "seed": seed, "recipe": recipe_name, "recipe_fields": recipe.model_dump(mode="json"),
        "queries_per_image": queries_per_image, "summary": summary, "images": images,
    }
    (out / "index.json").write_text(json.dumps(index_doc, indent=1) + "\n")
    console = Console()
    if tiles:
        cv2.imwrite(str(out / "preview.png"), montage(tiles, columns=3)[..., ::-1])
    console.print(f"[green]wrote[/green] {count} images, {len(records)} queries ({small} Small < {SMALL_AREA_PX} px², "
                  f"{len(records) - small} Large; recipe '{recipe_name}', {size}x{size}) to {out}"
                  + (f"; preview {out / 'preview.png'}" if tiles else ""))
