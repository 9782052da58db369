"""`edgeperc` command line: export, quantize, build, inspect, train, targets, families.

Every user mistake surfaces as one line on stderr and the exit code of its error class
(see edgeperc.errors); tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from edgeperc.errors import ConfigError, EdgepercError
from edgeperc.json_files import parse_json_option

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Deploy PyTorch perception and policy models to edge devices.")
console = Console(soft_wrap=True)


def _csv(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _print_export(result) -> None:
    for note in result.notes:
        console.print(f"  {note}")
    for line in result.lint.lines():
        console.print(f"  {line}", style=None if result.lint.clean else "yellow")
    manifest = result.manifest
    console.print(f"  inputs: {', '.join(f'{s.name} {s.shape} {s.dtype}' for s in manifest.inputs)}")
    console.print(f"  outputs: {', '.join(f'{s.name} {s.shape} {s.dtype}' for s in manifest.outputs)}")
    console.print(f"[green]wrote[/green] {result.path} (manifest: family={manifest.family}, precision={manifest.precision}, graph sha256 {manifest.graph_sha256[:12]}…)")


@app.command()
def export(
    checkpoint: Optional[Path] = typer.Argument(None, help="Checkpoint (.safetensors, .pt, .pth) from a local path."),
    out: Path = typer.Option(..., "--out", "-o", help="Output ONNX path."),
    family: Optional[str] = typer.Option(None, help="Registered family (read from the checkpoint if it was saved by edgeperc)."),
    width: Optional[int] = typer.Option(None, help="Family base width (Y-Net: 64 = paper, 8 = small)."),
    config: Optional[str] = typer.Option(None, help="Family config overrides as JSON."),
    module: Optional[str] = typer.Option(None, help="Your own nn.Module as 'package.module:Class'."),
    kwargs: Optional[str] = typer.Option(None, help="JSON kwargs for --module's constructor."),
    input_shape: Optional[list[str]] = typer.Option(None, help="Input shape for --module, e.g. 1,3,224,224 (repeat per input)."),
    input_names: Optional[str] = typer.Option(None, help="Comma-separated input names for --module."),
    output_names: Optional[str] = typer.Option(None, help="Comma-separated output names for --module."),
    static_batch: bool = typer.Option(False, help="Do not declare a dynamic batch axis."),
    opset: int = typer.Option(17, help="ONNX opset (>= 17)."),
    atol: float = typer.Option(1e-4, help="Parity tolerance for --module (families use their own)."),
    tensorrt_version: str = typer.Option("10.3", help="TensorRT release to lint operators against."),
    random_init: bool = typer.Option(False, help="Export a family with random weights (smoke tests only)."),
) -> None:
    """Checkpoint -> ONNX with manifest, parity vs PyTorch, and TensorRT operator lint."""
    from edgeperc.export import onnx_export

    if module:
        if not input_shape:
            raise ConfigError("--module needs --input-shape (one per input)")
        result = onnx_export.export_user_module(
            module, out, [onnx_export.parse_shape(s) for s in input_shape], checkpoint=checkpoint,
            kwargs=parse_json_option(kwargs, "--kwargs"), input_names=_csv(input_names), output_names=_csv(output_names),
            dynamic_batch=not static_batch, opset=opset, atol=atol, tensorrt_version=tensorrt_version,
        )
    else:
        if family is None and checkpoint is not None:
            from edgeperc.models.checkpoints import checkpoint_config, read_state

            family, _ = checkpoint_config(read_state(checkpoint)[1])
        if family is None:
            raise ConfigError("pass --family NAME (see `edgeperc families`) or --module pkg.mod:Class")
        overrides = parse_json_option(config, "--config")
        if width is not None:
            overrides["base_width"] = width
        result = onnx_export.export_family(family, out, checkpoint=checkpoint, config_overrides=overrides, opset=opset,
                                           tensorrt_version=tensorrt_version, allow_random_init=random_init)
    _print_export(result)


def _report_table(report) -> Table:
    table = Table(title="accuracy-drop report (held-out set)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(f"{report.metric} reference (FP32)", f"{report.reference:.4f}")
    table.add_row(f"{report.metric} quantized", f"{report.quantized:.4f}")
    table.add_row("drop", f"{report.drop:+.4f}")
    for key, value in report.drift.items():
        table.add_row(key, f"{value:.4g}")
    table.add_row("size ratio (quantized / FP32)", f"{report.size_ratio:.3f}")
    table.add_row("CPU latency ratio (median, same run)", f"{report.cpu_latency_ratio:.3f}")
    table.add_row("CPU latency FP32 / quantized (ms)", f"{report.reference_latency_ms:.1f} / {report.quantized_latency_ms:.1f}")
    table.add_row("held-out", f"{report.held_out}")
    return table


@app.command()
def quantize(
    model: Path = typer.Argument(..., help="FP32 ONNX (from `edgeperc export` or your own)."),
    precision: str = typer.Option(..., help="fp16 or int8."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output path (default: MODEL.<precision>.onnx)."),
    calibration: Optional[str] = typer.Option(None, help="Folder of images, FILE.npz, or 'family' (default for family models)."),
    calibration_samples: int = typer.Option(64, help="Calibration samples (generated or read)."),
    held_out: Optional[str] = typer.Option(None, help="Held-out set (same kinds); default: family generator on another seed, or the tail of the calibration set."),
    held_out_samples: int = typer.Option(16, help="Held-out samples for the accuracy report."),
    keep_fp32: Optional[str] = typer.Option(None, help="Comma-separated op types or node names kept FP32 (default: Sigmoid, Softmax, Softplus, normalisation layers)."),
    method: str = typer.Option("auto", help="auto | ort | modelopt (auto: ort for CPU targets; for TensorRT targets modelopt if installed, else ort with symmetric activations)."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML) deciding the method under auto."),
    calibrate_method: str = typer.Option("minmax", help="ORT calibration: minmax | entropy | percentile."),
    seed: int = typer.Option(0, help="Seed of generated calibration data (held-out uses seed + 1000)."),
    latency_runs: int = typer.Option(20, help="Interleaved CPU timing runs for the latency ratio."),
) -> None:
    """FP16 or INT8 (QDQ) quantization with an accuracy-drop report stored in the manifest."""
    from edgeperc.export.calibration import load_samples
    from edgeperc.export.quantize import quantize_model
    from edgeperc.manifest import manifest_of
    from edgeperc.onnx_io import load_onnx, save_onnx

    if precision not in ("fp16", "int8"):
        raise ConfigError(f"--precision '{precision}' must be fp16 or int8 (INT4 weight-only is for LLM MatMuls)")
    if method not in ("auto", "ort", "modelopt"):
        raise ConfigError(f"--method '{method}' must be auto, ort or modelopt")
    backend = "onnxruntime"
    if target:
        from edgeperc.targets import load_target

        backend = load_target(target).backend
    if method == "auto":
        import importlib.util

        has_modelopt = importlib.util.find_spec("modelopt") is not None
        method = "modelopt" if backend == "tensorrt" and has_modelopt else "ort"
    onnx_model = load_onnx(model)
    manifest = manifest_of(onnx_model)
    calib = None
    if precision == "int8" or calibration is not None:
        calib = load_samples(calibration, manifest, calibration_samples, seed)
    if held_out is not None:
        held = load_samples(held_out, manifest, held_out_samples, seed + 1000)
    elif manifest.family:
        held = load_samples(None, manifest, held_out_samples, seed + 1000)
    elif calib is not None:
        calib, held = calib.split(0.2)
    else:
        raise ConfigError("pass --held-out FOLDER or FILE.npz to measure the accuracy drop of this model")
    with console.status(f"quantizing {model.name} to {precision} ({method})…"):
        result = quantize_model(onnx_model, precision, calib, held, keep_fp32=_csv(keep_fp32), method=method,
                                calibrate_method=calibrate_method, latency_runs=latency_runs,
                                for_tensorrt=backend == "tensorrt")
    destination = out or model.with_name(f"{model.stem}.{precision}.onnx")
    save_onnx(result.model, destination)
    report_path = destination.with_suffix(".report.json")
    report_path.write_text(result.report.model_dump_json(indent=2) + "\n")
    console.print(_report_table(result.report))
    console.print(f"[green]wrote[/green] {destination} and {report_path}")


@app.command()
def inspect(
    model: Path = typer.Argument(..., help="ONNX model (edgeperc's or any other)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    tensorrt_version: str = typer.Option("10.3", help="TensorRT release to lint operators against."),
) -> None:
    """Print the model manifest (derived from the graph for ONNX files edgeperc did not write)."""
    from edgeperc.export.oplint import lint_model
    from edgeperc.manifest import manifest_of
    from edgeperc.onnx_io import load_onnx

    onnx_model = load_onnx(model)
    manifest = manifest_of(onnx_model)
    if as_json:
        typer.echo(manifest.model_dump_json(indent=2))
        return
    table = Table(title=f"{model} — {'derived from the graph' if manifest.derived else 'edgeperc manifest'}", show_header=False)
    for key, value in manifest.model_dump(mode="json").items():
        if value in (None, {}, []):
            continue
        if key in ("inputs", "outputs"):
            value = "\n".join(f"{v['name']} {v['shape']} {v['dtype']}" for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, indent=1)
        table.add_row(key, str(value))
    console.print(table)
    for line in lint_model(onnx_model, tensorrt_version).lines():
        console.print(line)


@app.command()
def build(
    model: Path = typer.Argument(..., help="ONNX model (FP32, or INT8 QDQ for int8 engines)."),
    target: str = typer.Option(..., help="Device target: a name (see `edgeperc targets`) or a YAML path."),
    precision: Optional[str] = typer.Option(None, help="Engine precision (default: the target's default_precision)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cache key and build plan; needs no TensorRT."),
    cache_dir: Optional[Path] = typer.Option(None, help="Engine cache folder (default: $EDGEPERC_ENGINE_CACHE or ~/.cache/edgeperc/engines)."),
    plugin: Optional[Path] = typer.Option(None, help="TensorRT plugin library (.so) to load; its sha256 joins the key."),
    profile: Optional[list[str]] = typer.Option(None, help="Optimisation profile override NAME:MIN,OPT,MAX, e.g. image:1x1x400x400,4x1x400x400,8x1x400x400 (repeatable)."),
) -> None:
    """Build (or fetch from the cache) a TensorRT engine for a device target."""
    from edgeperc.export.engine_build import build_engine, parse_profile_override, plan_build
    from edgeperc.targets import load_target

    target_config = load_target(target)
    overrides = dict(parse_profile_override(p) for p in profile or [])
    plan = plan_build(model, target_config, precision=precision, cache_dir=cache_dir, plugin_library=plugin,
                      profile_overrides=overrides or None)
    typer.echo(plan.describe())
    if dry_run:
        return
    path = build_engine(plan)
    console.print(f"[green]engine[/green] {path}")


@app.command()
def infer(
    model: Path = typer.Argument(..., help="ONNX model (any precision)."),
    images: Optional[list[Path]] = typer.Option(None, "--image", help="Image file(s), normalised with the manifest (repeatable)."),
    npz: Optional[Path] = typer.Option(None, help="Inputs as an .npz keyed by input name (already normalised)."),
    out: Path = typer.Option(Path("out/infer"), "--out", "-o", help="Folder for outputs.npz and PNG previews."),
    providers: str = typer.Option("CPUExecutionProvider", help="ONNX Runtime providers, comma-separated, or 'auto'."),
    runs: int = typer.Option(1, help="Repeat the call to report median/p99 latency."),
) -> None:
    """Run a model on the embedded default backend (ONNX Runtime, CPU) and save its outputs."""
    from edgeperc.export.calibration import from_npz, read_image
    from edgeperc.preprocess import normalise_images
    from edgeperc.profiling.latency import summarise_ms, time_calls
    from edgeperc.runtime.backends import OnnxRuntimeBackend
    from edgeperc.runtime.preview import save_previews

    backend = OnnxRuntimeBackend(model, providers=_csv(providers))
    manifest = backend.manifest
    if npz is not None:
        samples = from_npz(npz, manifest)
        feeds = {name: np.concatenate([f[name] for f in samples.feeds]) for name in samples.feeds[0]}
    elif images:
        spec = manifest.inputs[0]
        if manifest.normalisation is None or len(spec.shape) != 4 or not all(isinstance(d, int) for d in spec.shape[1:]):
            raise ConfigError(f"{model} has no normalisation or static (C, H, W) input in its manifest: pass --npz instead")
        channels, height, width = spec.shape[1:]
        import cv2

        pixels = np.stack([cv2.resize(read_image(p, channels), (width, height), interpolation=cv2.INTER_AREA) for p in images])
        feeds = {spec.name: normalise_images(pixels, manifest.normalisation)}
    else:
        raise ConfigError("pass --image FILE (repeatable) or --npz FILE")
    outputs = backend.infer(feeds)
    samples_ms = [backend.last_latency_ms]
    if runs > 1:
        samples_ms = list(time_calls(lambda: backend.infer(feeds), runs, warmup=0))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "outputs.npz", **outputs)
    previews = save_previews(outputs, out)
    stats = summarise_ms(samples_ms)
    for name, value in outputs.items():
        console.print(f"  {name}: {value.shape} {value.dtype} min {value.min():.4g} max {value.max():.4g}")
    console.print(f"  {backend.name} {','.join(backend.providers)}: median {stats.median_ms:.1f} ms, p99 {stats.p99_ms:.1f} ms over {stats.runs} run(s)")
    console.print(f"[green]wrote[/green] {out / 'outputs.npz'}" + (f" and {len(previews)} preview(s)" if previews else ""))


@app.command()
def train(
    family: str = typer.Argument(..., help="Registered family, or lisat."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .safetensors (a .json record is written beside it)."),
    width: Optional[int] = typer.Option(None, help="Base width (default 8; rpt-policy: its config's 16)."),
    steps: Optional[int] = typer.Option(None, help="Optimiser steps (default 600; rpt-policy 3000; lisat 300)."),
    batch: Optional[int] = typer.Option(None, help="Batch size (default 8; rpt-policy 64; lisat 4)."),
    pool: int = typer.Option(192, help="Generated training samples."),
    seed: int = typer.Option(0, help="Seed of data, init and sampling."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate (default 4e-3, App. B; rpt-policy 5e-4; lisat AdamW 1e-3)."),
    crop: Optional[str] = typer.Option(None, help="Train on random HxW crops, e.g. 192x192."),
    demos: Optional[Path] = typer.Option(None, help="rpt-policy: expert demos .npz (python -m edgeperc.sim.demos); default: generate."),
    episodes: int = typer.Option(50, help="rpt-policy: pick demos to generate when --demos is not given."),
    eval_episodes: int = typer.Option(0, help="rpt-policy: closed-loop episodes on unseen seeds after training."),
    config: Optional[str] = typer.Option(None, help="Config overrides as JSON: Y-Net/RPN e.g. '{\"upsample\": \"nearest\"}'; rpt-policy: PolicyConfig, e.g. '{\"layers\": 4}'; lisat: LisatConfig overrides, e.g. '{\"sam\": {\"patch_size\": 8}}'."),
    init: Optional[Path] = typer.Option(None, help="rpt-policy: fine-tune from this checkpoint (keeps its config and statistics)."),
    scenes: int = typer.Option(16, help="lisat: generated aerial scenes (a fifth held out, at least one)."),
    queries_per_image: int = typer.Option(3, "--queries-per-image", help="lisat: queries per scene, each on another target."),
    size: int = typer.Option(256, help="lisat: side of the generated scenes in px (a multiple of 16, >= 128)."),
    threads: int = typer.Option(1, help="lisat: torch CPU threads while training."),
    sam_pretrain_steps: int = typer.Option(0, help="lisat: pre-train SAM with point/box prompts for this many steps first (LISA starts from a prompted SAM)."),
    freeze_sam_encoder: bool = typer.Option(False, help="lisat: keep the SAM image encoder fixed in the end-to-end stage (as LISA)."),
    answers: str = typer.Option("fixed", help="lisat: answer text - fixed (LISA's 'Sure, it is <SEG>.') or generator (the query's own answer naming the target, then <SEG>)."),
    batching: str = typer.Option("random", help="lisat: training batches - random queries, or scene (the queries of one scene, then the next: a query-independent mask cannot fit them)."),
    aux_weight: float = typer.Option(0.0, help="lisat: weight of a training-only head reading the target's box, category and colour off the <SEG> prompt (not saved)."),
    negative_weight: float = typer.Option(0.0, help="lisat: weight of each mask's mean probability on the other same-scene targets of its batch."),
) -> None:
    """Reference training on the family's synthetic data (CPU; not part of CI)."""
    from edgeperc.models.registry import get_family
    from edgeperc.models.training import train_family

    if family == "lisat":  # not a registered family: tiny LISAt on generated aerial data, its own trainer
        from edgeperc.models.lisat_training import LisatTrainConfig, train_lisat

        given = {"seed": seed, "steps": steps, "batch": batch, "lr": lr}
        lisat = LisatTrainConfig(scenes=scenes, queries_per_image=queries_per_image, size=size, threads=threads, answers=answers,
                                 sam_pretrain_steps=sam_pretrain_steps, freeze_sam_encoder=freeze_sam_encoder,
                                 batching=batching, aux_weight=aux_weight, negative_weight=negative_weight,
                                 **{k: v for k, v in given.items() if v is not None})
        overrides = parse_json_option(config, "--config") or None
        record = train_lisat(out, lisat, overrides, command=" ".join(["edgeperc", *sys.argv[1:]]))
        held = record["held_out_metrics"]
        console.print(f"[green]wrote[/green] {out}; " + (f"held-out gIoU {held['greedy']['all']['giou']:.3f}, <SEG> in "
                      f"{held['seg_answer_fraction']:.2f} of the answers" if held else "no held-out queries"))
        return
    if get_family(family).name == "rpt-policy":  # behaviour cloning on demos: its own trainer
        from edgeperc.models.policy_config import make_bc_config
        from edgeperc.models.policy_training import train_policy

        given = {"seed": seed, "steps": steps, "batch": batch, "lr": lr}
        bc = make_bc_config({k: v for k, v in given.items() if v is not None})
        overrides = {**parse_json_option(config, "--config"), **({"base_width": width} if width is not None else {})}
        record = train_policy(out, demos, bc, overrides, episodes=episodes, eval_episodes=eval_episodes,
                              command=" ".join(["edgeperc", *sys.argv[1:]]), init=init)
        console.print(f"[green]wrote[/green] {out}; held-out {record['held_out_metrics']}"
                      + (f"; closed loop {record['closed_loop']['success_rate']:.2f}" if "closed_loop" in record else ""))
        return
    crop_hw = None
    if crop:
        try:
            crop_hw = tuple(int(v) for v in crop.lower().split("x"))
        except ValueError as exc:
            raise ConfigError(f"--crop '{crop}' must be HxW, e.g. 192x192") from exc
    overrides = {"base_width": 8, **parse_json_option(config, "--config"), **({"base_width": width} if width is not None else {})}
    record = train_family(get_family(family), overrides, 600 if steps is None else steps,
                          out, batch=8 if batch is None else batch, pool=pool, seed=seed, lr=4e-3 if lr is None else lr,
                          crop_hw=crop_hw)
    console.print(f"[green]wrote[/green] {out}; held-out {record['held_out_metrics']}")


@app.command()
def targets() -> None:
    """List the shipped device targets."""
    from edgeperc.targets import list_targets, load_target

    table = Table("target", "device", "backend", "precisions", "budgets (ms)")
    for name in list_targets():
        t = load_target(name)
        table.add_row(name, t.device, t.backend, ",".join(t.precisions), ", ".join(f"{k} {v:g}" for k, v in t.latency_budgets_ms.items()))
    console.print(table)


@app.command()
def families() -> None:
    """List the registered model families."""
    from edgeperc.models.registry import family_names, get_family

    table = Table("family", "version", "inputs", "metric", "description")
    for name in family_names():
        f = get_family(name)
        table.add_row(name, f.version, ",".join(f.input_names), f.primary_metric, f.description)
    console.print(table)


from edgeperc.cli_barcode import eval_app, generate_app, scan  # noqa: E402  (verbs kept in their own module)

app.command()(scan)
app.add_typer(generate_app, name="generate")
app.add_typer(eval_app, name="eval")

from edgeperc.cli_panoramas import generate_panoramas  # noqa: E402

generate_app.command("panoramas")(generate_panoramas)

from edgeperc.cli_aerial import generate_aerial  # noqa: E402

generate_app.command("aerial")(generate_aerial)

from edgeperc.cli_profile import latency_test, profile  # noqa: E402  (profiler verbs, issue 3)

app.command()(profile)
app.command("latency-test")(latency_test)

from edgeperc.cli_depth import calibrate_app, depth  # noqa: E402

app.command()(depth)

from edgeperc.cli_bundle import bundle_app  # noqa: E402  (deployment bundles, issue 7)

app.add_typer(bundle_app, name="bundle")
app.add_typer(calibrate_app, name="calibrate")

from edgeperc.cli_policy import policy_app  # noqa: E402  (Franka policy runtime, issue 5)

app.add_typer(policy_app, name="policy")


from edgeperc.cli_lisat import eval_lisat, lisat_app, segment  # noqa: E402  (language-queried segmentation, issue 6)

app.command()(segment)
eval_app.command("lisat")(eval_lisat)
app.add_typer(lisat_app, name="lisat")


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: EdgepercError -> one line on stderr + its exit code."""
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int):  # click hands back typer.Exit's code when not standalone
            return result
    except EdgepercError as exc:
        from rich.text import Text

        Console(stderr=True).print(Text.assemble(("error: ", "red"), str(exc)), highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


def run() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
