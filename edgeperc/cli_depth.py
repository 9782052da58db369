"""`edgeperc depth` and `edgeperc eval depth`: panorama depth + aleatoric uncertainty (App. B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeperc.cli_barcode import eval_app, expand_images
from edgeperc.models.shipped import shipped_model
from edgeperc.cli_batch import run_per_image

DEFAULT_DEPTH_MODEL = "ynet-depth-w8.onnx"


def make_estimator(target: Optional[str], model: Optional[Path], resize: bool = False):
    """A DepthEstimator on the target's backend (ONNX Runtime CPU by default), shipped model by default."""
    from edgeperc.runtime.backends.factory import open_backend
    from edgeperc.runtime.pipelines.depth.pipeline import DepthConfig, DepthEstimator
    from edgeperc.targets import load_target

    target_config = load_target(target) if target else None
    backend = open_backend(model or shipped_model(DEFAULT_DEPTH_MODEL), target_config)
    return DepthEstimator(backend, DepthConfig(resize_any_aspect=resize))


def colourise(values, lo: float, hi: float, colormap: int):
    """(H, W) float -> (H, W, 3) BGR uint8 through an OpenCV colour map over [lo, hi]."""
    import cv2
    import numpy as np

    scaled = np.clip((values - lo) / max(hi - lo, 1e-6), 0, 1)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), colormap)


def side_by_side(rgb, depth, sigma):
    """RGB | depth colour map | sigma colour map, each labelled with its range, ~1024 px wide each."""
    import cv2
    import numpy as np

    scale = min(1.0, 1024 / rgb.shape[1])
    size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
    d_lo, d_hi = float(np.percentile(depth, 1)), float(np.percentile(depth, 99))
    s_lo, s_hi = float(np.percentile(sigma, 1)), float(np.percentile(sigma, 99))
    panels = [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
              colourise(depth, d_lo, d_hi, cv2.COLORMAP_TURBO),
              colourise(sigma, s_lo, s_hi, cv2.COLORMAP_INFERNO)]
    labels = ["RGB", f"depth {d_lo:.1f}-{d_hi:.1f} m", f"sigma {s_lo:.2f}-{s_hi:.2f} m"]
    out = []
    for panel, label in zip(panels, labels):
        panel = cv2.resize(panel, size, interpolation=cv2.INTER_AREA)
        cv2.putText(panel, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(panel)
    return np.vstack(out)


def write_depth_outputs(out: Path, stem: str, rgb, result) -> dict[str, str]:
    """Depth and sigma as 16-bit PNG (mm) and .npy (float32 m), the picture, the summary JSON.
    Each file is written under a temporary name and renamed, so a failure never leaves half a file."""
    import cv2
    import numpy as np

    def atomic(path: Path, write) -> str:
        tmp = path.with_name(path.name + ".tmp" + path.suffix)
        write(tmp)
        tmp.replace(path)
        return str(path)

    mm = lambda metres: np.clip(np.round(metres * 1000.0), 0, 65535).astype(np.uint16)  # noqa: E731
    files = {
        "depth_png": atomic(out / f"{stem}.depth.png", lambda p: cv2.imwrite(str(p), mm(result.depth_m))),
        "sigma_png": atomic(out / f"{stem}.sigma.png", lambda p: cv2.imwrite(str(p), mm(result.sigma_m))),
        "depth_npy": atomic(out / f"{stem}.depth.npy", lambda p: np.save(p, result.depth_m)),
        "sigma_npy": atomic(out / f"{stem}.sigma.npy", lambda p: np.save(p, result.sigma_m)),
        "picture": atomic(out / f"{stem}.vis.png", lambda p: cv2.imwrite(str(p), side_by_side(rgb, result.depth_m, result.sigma_m))),
    }
    summary = {"image": stem, "height": int(result.depth_m.shape[0]), "width": int(result.depth_m.shape[1]),
               "depth_m": {"min": round(float(result.depth_m.min()), 3), "median": round(float(np.median(result.depth_m)), 3),
                           "max": round(float(result.depth_m.max()), 3)},
               "sigma_m_median": round(float(np.median(result.sigma_m)), 4),
               "latency_ms": {k: round(v, 2) for k, v in result.latency_ms.items()},
               "kernels": result.kernels, "sectors": result.sectors}
    files["summary"] = atomic(out / f"{stem}.summary.json", lambda p: p.write_text(json.dumps(summary, indent=1) + "\n"))
    return files


def depth(
    panoramas: list[Path] = typer.Argument(..., help="Equirectangular RGB panoramas (2:1) and/or folders of them."),
    out: Path = typer.Option(Path("out/depth"), "--out", "-o", help="Output folder."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML); default: ONNX Runtime on the CPU."),
    model: Optional[Path] = typer.Option(None, help="Depth ONNX (default: the shipped ynet-depth)."),
    resize: bool = typer.Option(False, help="Accept panoramas that are not 2:1 (stretched to the model's input)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per panorama on stdout."),
    max_pixels: int = typer.Option(400_000_000, help="Refuse images with more pixels than this."),
) -> None:
    """Depth (16-bit PNG in mm and .npy), sigma, a side-by-side picture and a per-sector summary."""
    import time

    from edgeperc.runtime.imageio import read_rgb

    estimator = make_estimator(target, model, resize)
    files = expand_images(panoramas)
    out.mkdir(parents=True, exist_ok=True)

    def process(path: Path) -> dict:
        start = time.perf_counter()
        rgb = read_rgb(path, max_pixels)
        load_ms = (time.perf_counter() - start) * 1e3
        result = estimator.estimate(rgb)
        result.latency_ms = {"load": load_ms, **result.latency_ms}
        result.latency_ms["total"] = sum(result.latency_ms.values())
        nearest = min((s for s in result.sectors if s["nearest_m"] is not None), key=lambda s: s["nearest_m"], default=None)
        return {"files": write_depth_outputs(out, path.stem, rgb, result),
                "latency_ms": {k: round(v, 2) for k, v in result.latency_ms.items()}, "nearest": nearest}

    def describe(path: Path, record: dict) -> list[str]:
        n = record["nearest"]
        near = f"nearest {n['nearest_m']:.2f} m ± {n['sigma_m']:.2f} at azimuth {n['at_deg'][0]:.0f}°" if n else "no obstacle"
        return [f"{path}: {near}, {record['latency_ms']['total']:.0f} ms -> {record['files']['picture']}"]

    run_per_image("depth", files, as_json, process, describe)


@eval_app.command("depth")
def eval_depth(
    count: int = typer.Option(48, help="Held-out panoramas to generate (coverage varies by room: 48 keeps its standard error near 0.02)."),
    seed: int = typer.Option(4242, help="Held-out seed (training used 0)."),
    recipe: str = typer.Option("default", help="Generator setting: default, or shifted (other rooms, lighting, density)."),
    model: Optional[Path] = typer.Option(None, help="FP32 depth ONNX (default: the shipped ynet-depth)."),
    int8_model: Optional[Path] = typer.Option(None, "--int8", help="INT8 ONNX beside it (default: the shipped one, if any)."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML)."),
    plots: Optional[Path] = typer.Option(None, help="Folder for the sparsification and reliability plots."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """AbsRel, SqRel, RMSE, RMSE-log, delta1-3; AUSE/AURG, NLL, 1/2-sigma coverage; FP32 and INT8 side by side."""
    from rich.table import Table

    from edgeperc.errors import ConfigError, ModelFileError
    from edgeperc.evaluation.depth import HOHONET_STANFORD2D3D, evaluate_estimators, plot_report

    if count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    estimators = {"fp32": make_estimator(target, model)}
    int8_path = int8_model
    if int8_path is None and model is None:
        try:
            int8_path = shipped_model(DEFAULT_DEPTH_MODEL.replace(".onnx", ".int8.onnx"))
        except ModelFileError:
            int8_path = None
    if int8_path is not None:
        estimators["int8"] = make_estimator(target, int8_path)
    console = Console(stderr=as_json)
    with Progress(TextColumn("eval depth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("eval", total=count)
        report = evaluate_estimators(estimators, recipe, count, seed, progress=lambda: progress.advance(task))
    if plots is not None:
        report["plots"] = [str(p) for p in plot_report(report, plots)]
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "curves"}))
        return
    table = Table("metric", *report["models"], "HoHoNet, Stanford2D3D (real data; ours is synthetic)")
    for key in next(iter(report["models"].values())):
        ref = HOHONET_STANFORD2D3D.get(key)
        table.add_row(key, *(f"{row[key]:.4f}" for row in report["models"].values()), "" if ref is None else f"{ref:g}")
    console.print(table)


calibrate_app = typer.Typer(no_args_is_help=True, help="Post-hoc calibration of a model's uncertainty.")


@calibrate_app.command("depth")
def calibrate_depth(
    checkpoint: Path = typer.Argument(..., help="ynet-depth .safetensors checkpoint."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Calibrated checkpoint (default: CHECKPOINT, replaced atomically)."),
    count: int = typer.Option(48, help="Calibration panoramas to generate."),
    seed: int = typer.Option(77, help="Calibration seed (training used 0, eval uses 4242)."),
    recipe: str = typer.Option("default", help="Generator setting the scale is fitted on."),
    as_json: bool = typer.Option(False, "--json", help="Print the calibration record as JSON."),
) -> None:
    """Fit one sigma scale so interval coverage matches the Gaussian ideal; fold it into the log-variance head."""
    from edgeperc.errors import ConfigError
    from edgeperc.evaluation.sigma_calibration import calibrate_depth_checkpoint

    if count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    console = Console(stderr=as_json)
    with Progress(TextColumn("calibrate sigma"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("calibrate", total=count)
        record = calibrate_depth_checkpoint(checkpoint, out or checkpoint, count, seed, recipe, lambda: progress.advance(task))
    if as_json:
        typer.echo(json.dumps(record))
        return
    before, after = record["coverage_before"], record["coverage_after"]
    console.print(f"sigma x {record['scale']:.3f}: coverage 1-sigma {before['1sigma']:.3f} -> {after['1sigma']:.3f} (ideal 0.683), "
                  f"2-sigma {before['2sigma']:.3f} -> {after['2sigma']:.3f} (ideal 0.954) -> {out or checkpoint}")
