"""One loop for the per-image commands (scan, depth): progress bar, one record per image, a bad
image becomes an error line and the batch goes on; exit 5 only when every image failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeperc.errors import EdgepercError


def run_per_image(label: str, files: list[Path], as_json: bool, process: Callable[[Path], dict],
                  describe: Callable[[Path, dict], list[str]]) -> None:
    """``process(path)`` -> fields of the image's record; ``describe`` -> the lines printed without --json."""
    console = Console(stderr=as_json, soft_wrap=True)
    failures = 0
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  disable=len(files) < 2) as progress:
        task = progress.add_task(label, total=len(files))
        for path in files:
            record: dict = {"image": str(path)}
            try:
                record.update(process(path))
            except EdgepercError as exc:  # one bad image never stops the batch
                failures += 1
                record["error"] = str(exc)
            if as_json:
                typer.echo(json.dumps(record))
            elif "error" in record:
                console.print(f"[red]{path}[/red]: {record['error']}", highlight=False)
            else:
                for line in describe(path, record):
                    console.print(line, highlight=False)
            progress.advance(task)
    if failures == len(files):
        raise typer.Exit(5)
