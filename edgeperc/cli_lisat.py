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

lisat_app = typer.Typer(no_args_is_help=True, help="LISAt: export a checkpoint into deployable graphs.")


def open_lisat(model: Optional[Path], precision: str, target: Optional[str], threads: Optional[int],
               max_new_tokens: int, progress: bool = True):
    """A LisatPipeline on ONNX Runtime: ``model`` (an export folder or a checkpoint; default the
    shipped tiny LISAt, exported once into the cache), with the target's threads."""
    from edgeperc.lisat_exports import resolve_lisat_export
    from edgeperc.runtime.pipelines.lisat.pipeline import LisatPipeline
    from edgeperc.targets import load_target

    target_config = load_target(target) if target else None
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
            state = f"mask {a['mask_area_px']} px" if a["has_mask"] else f"no mask ({a['stop']})"
            lines.append(f"  {state}; {lat['total']:.1f} ms ({split}) -> {a['overlay']}")
        return lines

    run_per_image("segment", files, as_json, process, describe)


@lisat_app.command("export")
def export_lisat_cli(
    checkpoint: Optional[Path] = typer.Argument(None, help="LISAt checkpoint (.safetensors with config.json and lisat_tokenizer.json beside it); default: the shipped one."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (graphs + lisat_manifest.json)."),
    precision: str = typer.Option("fp32", help="fp32, or compressed (from the FP32 export: INT4 LLM, INT8 vision, distilled mask encoder)."),
    check: bool = typer.Option(True, help="fp32: check parity against PyTorch (token-exact greedy text, mask IoU >= 0.99)."),
) -> None:
    """Checkpoint -> seven ONNX graphs (vision, mask_encoder, embed, prefill, decode, seg_projector,
    mask_decoder) with a manifest of their checksums, KV-cache layout and preprocessing."""
    from edgeperc.lisat_exports import compress_export, export_checkpoint, shipped_lisat_checkpoint

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

        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32"
            export_checkpoint(ckpt, fp32)
            compress_export(ckpt, fp32, out)
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
