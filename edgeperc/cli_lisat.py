"""LISAt verbs (issue 6): `edgeperc segment`, `edgeperc eval lisat`, `edgeperc lisat export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgeperc.cli_barcode import expand_images
from edgeperc.cli_batch import run_per_image
from edgeperc.errors import ConfigError
from edgeperc.json_files import parse_json_option

lisat_app = typer.Typer(no_args_is_help=True, help="LISAt: export a checkpoint into deployable graphs.")


def open_lisat(model: Optional[Path], precision: str, target, threads: Optional[int],
               max_new_tokens: int, progress: bool = True):
    """A LisatPipeline on ONNX Runtime: ``model`` (an export folder or a checkpoint; default the
    shipped tiny LISAt, exported once into the cache), with the threads of ``target`` (a name, a
    YAML path or a TargetConfig)."""
    from edgeperc.lisat_exports import resolve_lisat_export
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline
    from edgeperc.targets import load_target

    target_config = load_target(target) if isinstance(target, (str, Path)) else target
    if target_config is not None and target_config.backend != "onnxruntime":
        raise ConfigError(f"target {target_config.name}: LISAt's graphs run on ONNX Runtime here (its KV-cache loop needs "
                          f"dynamic sequence lengths, which edgeperc's TensorRT engine builder does not profile yet); "
                          f"pass an onnxruntime target or none")
    if threads is None:
        threads = target_config.onnxruntime.intra_op_threads if target_config is not None else 0
    folder = resolve_lisat_export(model, precision, progress=progress)  # type: ignore[arg-type]
    return LisatPipeline(folder, threads=threads, max_new_tokens=max_new_tokens)


def _outputs(out: Path, stem: str, k: int, single: bool) -> tuple[Path, Path]:
    """(mask PNG, overlay PNG): ``out`` itself when it names a .png and there is one answer, else in
    the folder ``out``."""
    if single and out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out, out.with_name(out.stem + "_overlay.png")
    out.mkdir(parents=True, exist_ok=True)
    name = f"{stem}_q{k}"
    return out / f"{name}_mask.png", out / f"{name}_overlay.png"


def segment(
    images: list[Path] = typer.Argument(..., help="RGB images (aerial, any size) and/or folders of them."),
    query: list[str] = typer.Option(..., "--query", "-q", help="What to segment, in words; repeat for several queries per image."),
    out: Path = typer.Option(Path("out/segment"), "--out", "-o", help="Mask PNG (one image and query) or output folder."),
    model: Optional[Path] = typer.Option(None, help="LISAt export folder or checkpoint (default: the shipped tiny LISAt)."),
    precision: str = typer.Option("fp32", help="For a checkpoint: fp32 or compressed (INT4 LLM, INT8 vision, distilled mask encoder)."),
    target: Optional[str] = typer.Option(None, help="Device target (name or YAML) with the onnxruntime backend; default: CPU."),
    threads: Optional[int] = typer.Option(None, help="ONNX Runtime intra-op threads per graph (default: the target's, else ORT's)."),
    max_new_tokens: int = typer.Option(24, help="Answer budget: no <SEG> within it -> an explicit 'no mask' answer."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image on stdout."),
    max_pixels: int = typer.Option(100_000_000, help="Refuse images with more pixels than this."),
) -> None:
    """Answer a query about an image with a mask: mask PNG, overlay, text answer, per-graph latency."""
    import cv2

    from edgeperc.runtime.imageio import read_rgb
    from edgeperc.runtime.pipelines.lisat.overlay import captioned, overlay_mask

    files = expand_images(images)
    pipeline = open_lisat(model, precision, target, threads, max_new_tokens, progress=not as_json)
    console = Console(stderr=True, soft_wrap=True)
    single = len(files) == 1 and len(query) == 1

    def process(path: Path) -> dict:
        rgb = read_rgb(path, max_pixels)
        answers = []
        for k, text in enumerate(query):
            if not as_json:
                console.print(f"[bold]{path.name}[/bold] Q: {text}\n  A: ", end="", highlight=False)
            answer = pipeline.answer(rgb, text, on_text=None if as_json else lambda piece: console.print(piece, end="", highlight=False))
            if not as_json:
                console.print("")
            mask_path, overlay_path = _outputs(out, path.stem, k, single)
            mask = answer.mask if answer.mask is not None else None
            cv2.imwrite(str(mask_path), (mask.astype("uint8") * 255) if mask is not None else (rgb[..., 0] * 0))
            picture = captioned(overlay_mask(rgb, mask), [f"Q: {answer.query}"[:90],
                                                           f"A: {answer.text}" + ("" if mask is not None else "  (no mask)")])
            cv2.imwrite(str(overlay_path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            answers.append({**answer.summary(), "mask": str(mask_path), "overlay": str(overlay_path)})
        return {"model": str(pipeline.folder), "precision": pipeline.precision, "answers": answers}

    def describe(path: Path, record: dict) -> list[str]:
        lines = []
        for a in record["answers"]:
            lat = a["latency_ms"]
            split = ", ".join(f"{k} {v:.1f}" for k, v in lat.items() if k != "total")
            if not a["has_mask"]:
                state = f"no mask ({a['stop']})"
            else:  # <SEG> came, but the decoder may still put no pixel above 0
                state = f"mask {a['mask_area_px']} px" if a["mask_area_px"] else "<SEG> answered, empty mask"
            lines.append(f"  {state}; {lat['total']:.1f} ms ({split}) -> {a['overlay']}")
        return lines

    run_per_image("segment", files, as_json, process, describe)


@lisat_app.command("export")
def export_lisat_cli(
    checkpoint: Optional[Path] = typer.Argument(None, help="LISAt checkpoint (.safetensors with config.json and lisat_tokenizer.json beside it); default: the shipped one."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (graphs + lisat_manifest.json)."),
    precision: str = typer.Option("fp32", help="fp32, or compressed (from the FP32 export: INT4 LLM, INT8 vision, distilled mask encoder)."),
    check: bool = typer.Option(True, help="fp32: check parity against PyTorch (token-exact greedy text, mask IoU >= 0.99)."),
    student: Optional[Path] = typer.Option(None, help="compressed: distilled mask encoder (default: <checkpoint stem>-student.safetensors beside it; none: INT8 SAM encoder)."),
    block_size: int = typer.Option(128, help="compressed: INT4 block size of the LLM's MatMulNBits (16, 32, 64, 128)."),
    mask_iou_floor: float = typer.Option(0.95, help="compressed: keep the mask decoder FP32 unless INT8 keeps this mean mask IoU vs FP32 on the calibration queries."),
    fuse_llm: bool = typer.Option(True, help="compressed: rebuild prefill/decode with ONNX Runtime's fused operators (GroupQueryAttention) before INT4; checked against the export."),
) -> None:
    """Checkpoint -> seven ONNX graphs (vision, mask_encoder, embed, prefill, decode, seg_projector,
    mask_decoder) with a manifest of their checksums, KV-cache layout and preprocessing."""
    from edgeperc.lisat_exports import export_checkpoint, shipped_lisat_checkpoint

    ckpt = checkpoint or shipped_lisat_checkpoint()
    console = Console(soft_wrap=True)
    if precision == "fp32":
        export_checkpoint(ckpt, out)
        if check:
            report = check_export_parity(ckpt, out)
            console.print(f"parity: tokens equal {report['tokens_equal']}, mask IoU min {report['mask_iou']:.5f}, "
                          f"max abs diff per graph {json.dumps({k: float(f'{v:.2e}') for k, v in report['max_abs_diff'].items()})}")
    elif precision == "compressed":
        import tempfile

        from edgeperc.export.lisat_compress import CompressOptions, compress_lisat_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32"
            export_checkpoint(ckpt, fp32)
            compress_lisat_checkpoint(ckpt, fp32, out, student=student,
                                      options=CompressOptions(block_size=block_size, mask_iou_floor=mask_iou_floor,
                                                             fuse_llm=fuse_llm))
    else:
        raise ConfigError(f"--precision must be fp32 or compressed, got {precision!r}")
    console.print(f"[green]wrote[/green] {out}")


def check_export_parity(checkpoint: Path, out: Path) -> dict:
    """ParityError unless the export's greedy tokens equal PyTorch's and mask IoU >= 0.99 on a few
    generated scenes."""
    from edgeperc.errors import ParityError
    from edgeperc.export.lisat_export import check_lisat_parity, parity_examples
    from edgeperc.models.lisat_checkpoint import load_lisat

    model, _ = load_lisat(checkpoint)
    report = check_lisat_parity(model, out, parity_examples(model, out))
    if not report["tokens_equal"] or report["mask_iou"] < 0.99:
        raise ParityError(f"LISAt export {out} differs from PyTorch: tokens equal {report['tokens_equal']}, "
                          f"mask IoU min {report['mask_iou']:.4f} (need >= 0.99)")
    return report


def _plot_eval(record: dict, path: Path) -> None:
    """Per-graph latency (FP32 vs compressed) and gIoU per size split, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = {k: record[k] for k in ("fp32", "compressed") if record.get(k)}
    stages = ["vision_ms", "mask_encoder_ms", "prefill_ms", "decode_per_token_ms", "mask_ms"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(1, len(runs))
    for i, (name, run) in enumerate(runs.items()):
        values = [run["latency_ms"].get(s) or 0.0 for s in stages]
        ax1.bar(np.arange(len(stages)) + i * width, values, width, label=name)
        splits = ["all", "small", "large"]
        ax2.bar(np.arange(3) + i * width, [run["metrics"][s]["giou"] or 0.0 for s in splits], width, label=name)
    ax1.set_xticks(np.arange(len(stages)) + 0.4 - width / 2, [s.replace("_ms", "").replace("_", "\n") for s in stages])
    ax1.set_ylabel("median ms (ONNX Runtime CPU)")
    ax1.set_title("latency per graph")
    ax1.legend()
    ax2.set_xticks(np.arange(3) + 0.4 - width / 2, ["All", "Small (<500 px²)", "Large"])
    ax2.set_ylabel("gIoU")
    ax2.set_title("held-out generated scenes")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def eval_lisat(
    model: Optional[Path] = typer.Option(None, help="LISAt checkpoint (default: the shipped tiny LISAt); exported FP32 and compressed via the cache."),
    fp32: Optional[Path] = typer.Option(None, help="FP32 export folder (instead of exporting --model)."),
    compressed: Optional[Path] = typer.Option(None, help="Compressed export folder (instead of compressing --model)."),
    scenes: int = typer.Option(24, help="Held-out generated scenes."),
    queries_per_image: int = typer.Option(3, "--queries-per-image", help="Queries per scene."),
    seed: int = typer.Option(9000, help="Held-out seed (training scenes come from seed 0)."),
    threads: int = typer.Option(1, help="ONNX Runtime intra-op threads per graph (1: a drone core's view)."),
    as_json: bool = typer.Option(False, "--json", help="The whole record as JSON on stdout."),
    plot: Optional[Path] = typer.Option(None, help="Write a latency / gIoU comparison PNG here."),
) -> None:
    """FP32 vs compressed on held-out generated scenes: gIoU/cIoU All/Small/Large, weight bytes,
    per-graph latency, peak memory, with Table 6.2 / D.4 quoted beside them."""
    from rich.table import Table

    from edgeperc.evaluation.lisat import PAPER, STATEMENT, compare, evaluate_in_child, interleaved_latency
    from edgeperc.lisat_exports import resolve_lisat_export

    console = Console(stderr=as_json, soft_wrap=True)
    folders = {"fp32": fp32 or resolve_lisat_export(model, "fp32", progress=not as_json),
               "compressed": compressed or resolve_lisat_export(model, "compressed", progress=not as_json)}
    options = {"scenes": scenes, "queries_per_image": queries_per_image, "seed": seed, "threads": threads}
    record: dict = {}
    for name, folder in folders.items():
        console.print(f"evaluating {name}: {folder} ({scenes} scenes x {queries_per_image} queries, {threads} thread)")
        record[name] = evaluate_in_child(folder, **options)
    console.print("timing both side by side (interleaved, image by image)")
    latency = interleaved_latency(folders, scenes=min(scenes, 16), queries_per_image=queries_per_image, seed=seed,
                                  threads=threads)
    for name in folders:
        record[name]["latency_ms"] = latency[name]
    record["comparison"] = compare(record["fp32"], record["compressed"])
    record["paper"] = PAPER
    record["statement"] = STATEMENT
    if plot is not None:
        _plot_eval(record, plot)
        record["plot"] = str(plot)
    if as_json:
        typer.echo(json.dumps(record, indent=1))
        return
    table = Table(title="LISAt held-out (generated aerial scenes)")
    for col in ("", "fp32", "compressed", "LISAt-7B (paper)"):
        table.add_column(col)
    for split in ("all", "small", "large"):
        for metric in ("giou", "ciou"):
            vals = [record[n]["metrics"][split][metric] for n in ("fp32", "compressed")]
            table.add_row(f"{metric} {split}", *[f"{v:.3f}" if v is not None else "-" for v in vals],
                          f"{PAPER['lisat_7b'][split][metric]:.3f}")
    f, c = record["fp32"], record["compressed"]
    table.add_row("weights MiB", f"{f['bytes']['total'] / 2**20:.2f}", f"{c['bytes']['total'] / 2**20:.2f}", f"~{PAPER['weights_gb_fp16'] * 1024:.0f} (FP16)")
    for key in ("preprocess_ms", "vision_ms", "mask_encoder_ms", "prefill_ms", "decode_per_token_ms", "mask_ms",
                "first_query_graphs_ms", "first_query_ms"):
        table.add_row(key.replace("_ms", " ms"), *[f"{r['latency_ms'][key]:.2f}" if r["latency_ms"][key] is not None else "-" for r in (f, c)],
                      f"{PAPER['a100_seconds_per_query_512'] * 1e3:.0f} (A100, whole query)" if key == "first_query_ms" else "")
    table.add_row("decode tokens/s", f"{f['latency_ms']['decode_tokens_per_s']:.0f}", f"{c['latency_ms']['decode_tokens_per_s']:.0f}", "")
    table.add_row("peak RSS MiB", f"{f['peak_rss_mib']:.0f}", f"{c['peak_rss_mib']:.0f}", "")
    console.print(table)
    comp = record["comparison"]
    console.print(f"compressed vs FP32: {comp['size_ratio']:.2f}x smaller, {comp['speedup_first_query']:.2f}x faster (a new image's query, graphs), "
                  f"gIoU loss {comp['giou_loss_points']:+.2f} points; goal (>= 4x, >= 2x, <= 2 points) "
                  f"{'met' if comp['goal_met'] else 'NOT met'}")
    console.print(STATEMENT)


@lisat_app.command("distill")
def distill_lisat_cli(
    checkpoint: Optional[Path] = typer.Argument(None, help="LISAt checkpoint whose SAM image encoder is the teacher (default: the shipped one)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Student .safetensors (default: <checkpoint stem>-student.safetensors beside it, where compression finds it)."),
    steps: int = typer.Option(1500, help="Optimiser steps."),
    batch: int = typer.Option(8, help="Images per step."),
    lr: float = typer.Option(2e-3, help="AdamW learning rate."),
    seed: int = typer.Option(0, help="Seed (images come from generated scenes disjoint from LISAt's training ones)."),
    images: int = typer.Option(400, help="Generated training images."),
    threads: int = typer.Option(1, help="torch CPU threads."),
    widths: Optional[str] = typer.Option(None, help="Channels after the stem and each further stride-2 stage, e.g. 12,24,48,64 (default 16,32,64,96); one stage per factor 2 of SAM's patch size."),
    config: Optional[str] = typer.Option(None, "--config", help="Other student settings as JSON, e.g. '{\"stem_stride\": 4, \"blocks_per_stage\": 0, \"neck_norm\": \"batchnorm\"}'."),
) -> None:
    """Distil a small CNN mask encoder from the checkpoint's SAM image encoder (as nanosam /
    MobileSAM do): MSE + cosine to the teacher's image embeddings on generated aerial scenes."""
    import sys

    from edgeperc.lisat_exports import shipped_lisat_checkpoint
    from edgeperc.models.lisat_student import train_lisat_student

    ckpt = checkpoint or shipped_lisat_checkpoint()
    target = out or ckpt.with_name(ckpt.stem + "-student.safetensors")
    try:
        stages = tuple(int(w) for w in widths.split(",")) if widths else None
    except ValueError as exc:
        raise ConfigError(f"--widths {widths!r} must be comma-separated integers, e.g. 12,24,48,64") from exc
    options = parse_json_option(config, "--config")
    record = train_lisat_student(ckpt, target, steps=steps, batch=batch, lr=lr, seed=seed, images=images, threads=threads,
                                 widths=stages, options=options, command=" ".join(["edgeperc", *sys.argv[1:]]))
    Console(soft_wrap=True).print(f"[green]wrote[/green] {target}; embedding MSE to the teacher {record['teacher_vs_student_mse']:.4f}, "
                                  f"cosine {record['teacher_vs_student_cosine']:.4f} ({record['errors_on']})")
