"""A distilled mask encoder for LISAt: a small CNN in place of SAM's ViT image encoder.

nanosam (ResNet18) and MobileSAM (TinyViT) keep SAM's prompt encoder and mask decoder and train a
small image encoder to reproduce the big one's image embedding; the mask decoder never notices.
The same holds for LISAt: ``mask_encoder`` is the only graph fed by the image alone, so a student
with the teacher's input (B, 3, S, S) and output (B, P, S/16, S/16) drops into the ONNX folder.

Layout (MobileNet-style, ReLU so ORT and TensorRT quantize it well): a 3x3 stride-2 stem, then per
further halving a depthwise-separable stride-2 block, a residual depthwise-separable block at every
scale but the first; a learned position term and a pooled global-context term stand in for the
teacher's absolute position embedding and global attention; SAM's own neck (1x1 -> LayerNorm2d ->
3x3 -> LayerNorm2d) gives the output the teacher's per-position channel normalisation.

Distillation: MSE (plus an optional per-position cosine term) against the teacher's
``encode_image_sam`` on SAM-preprocessed aerial scenes, teacher embeddings computed once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgeperc.errors import ConfigError, ModelFileError
from edgeperc.models.torch_threads import torch_threads

CONFIG_KEY = "edgeperc_lisat_student"
DEFAULT_WIDTHS = (16, 32, 64, 96)


class StudentConfig(BaseModel):
    """``image_size`` S of the SAM input, ``out_channels`` P and ``grid`` h = w of the embedding;
    ``widths``: channels after the stem and after each further stride-2 stage, so S / grid must be
    ``stem_stride`` * 2 ** (len(widths) - 1). ``stem_stride`` 2 is a 3x3 stride-2 convolution;
    4, 8, ... a patchifying convolution (kernel = stride, as a ViT's patch embedding): at this size
    the first full-resolution layer is most of the time. ``neck_norm``: SAM's per-position
    LayerNorm2d, or BatchNorm, which folds into the convolutions at export (fewer graph nodes).
    ``neck_conv``: SAM's 3x3 P -> P convolution, or a depthwise 3x3 then a 1x1 (about a ninth of its
    multiply-adds: at 16x16 x 64 channels the full one was the student's single costliest layer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(ge=16, le=4096)
    out_channels: int = Field(ge=8, le=4096)
    grid: int = Field(ge=1, le=1024)
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    blocks_per_stage: int = Field(1, ge=0, le=8)
    stem_stride: int = Field(2, ge=2, le=16)
    neck_norm: Literal["layernorm", "batchnorm"] = "layernorm"
    neck_conv: Literal["full", "separable"] = "full"

    @model_validator(mode="after")
    def _check(self) -> StudentConfig:
        if self.stem_stride & (self.stem_stride - 1):
            raise ValueError(f"stem_stride {self.stem_stride} must be a power of two")
        factor = self.stem_stride * 2 ** (len(self.widths) - 1) if self.widths else 1
        if self.image_size % self.grid or self.image_size // self.grid != factor:
            raise ValueError(f"image_size / grid = {self.image_size / self.grid:g} must be stem_stride x 2 ** (len(widths) - 1) "
                             f"= {factor} (the stem, then one stride-2 stage per further width)")
        if min(self.widths, default=0) < 4:
            raise ValueError(f"widths {list(self.widths)} must be at least 4 each")
        return self

    @classmethod
    def for_lisat(cls, config: Any, widths: tuple[int, ...] | None = None,
                  options: Mapping[str, Any] | None = None) -> StudentConfig:
        """The student of ``config``'s (a LisatConfig) SAM encoder: same input size and embedding;
        ``options``: the other fields (stem_stride, blocks_per_stage, neck_norm, neck_conv)."""
        s = config.sam
        options = dict(options or {})
        stem = int(options.get("stem_stride", 2))
        depth = round(math.log2(s.patch_size)) - round(math.log2(max(stem, 1))) + 1
        widths = tuple(widths) if widths else _default_widths(max(depth, 1))
        try:
            return cls(image_size=s.image_size, out_channels=s.prompt_embed_dim, grid=s.embedding_size, widths=widths,
                       **options)
        except ValidationError as exc:
            raise ConfigError(f"student config (widths {list(widths)}, {options}): {exc.errors()[0]['msg']}") from exc


def _default_widths(stages: int) -> tuple[int, ...]:
    base = DEFAULT_WIDTHS
    return base[-stages:] if stages <= len(base) else (base[0],) * (stages - len(base)) + base


def _build(config: StudentConfig) -> Any:
    import torch
    from torch import nn

    class LayerNorm2d(nn.Module):
        """Channel LayerNorm at every position (SAM's neck norm), written as NHWC layer_norm so that it
        exports as one LayerNormalization (a fused kernel) instead of eight element-wise nodes."""

        def __init__(self, channels: int, eps: float = 1e-6) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
            self.eps = eps

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nhwc = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
            return nhwc.permute(0, 3, 1, 2)

    def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
        padding = kernel // 2 if kernel % 2 else 0  # odd: same size / stride; even (patchify): none
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)

    class Residual(nn.Module):
        """x + pw(dw(x)): a depthwise-separable block at constant width."""

        def __init__(self, c: int) -> None:
            super().__init__()
            self.body = nn.Sequential(conv_bn(c, c, 3, groups=c), conv_bn(c, c, 1, act=False))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(x + self.body(x))

    class MaskEncoderStudent(nn.Module):
        """(B, 3, S, S) SAM-preprocessed -> (B, P, S/2^k, S/2^k) image embeddings."""

        def __init__(self) -> None:
            super().__init__()
            self.config = config
            stages: list[nn.Module] = []
            c_in = 3
            for i, c in enumerate(config.widths):
                stem = 3 if config.stem_stride == 2 else config.stem_stride
                down = conv_bn(c_in, c, stem, config.stem_stride) if i == 0 else nn.Sequential(conv_bn(c_in, c_in, 3, 2, groups=c_in),
                                                                            conv_bn(c_in, c, 1))
                blocks = config.blocks_per_stage if i else 0  # none at the first, costliest scale
                stages.append(nn.Sequential(down, *[Residual(c) for _ in range(blocks)]))
                c_in = c
            self.stages = nn.Sequential(*stages)
            # The teacher adds an absolute position embedding and attends globally; a CNN sees neither,
            # so a learned (C, h, w) position term and a pooled context term stand in for both, for free.
            self.pos_embed = nn.Parameter(torch.zeros(1, c_in, config.grid, config.grid))
            self.context = nn.Conv2d(c_in, c_in, 1)
            p = config.out_channels
            norm = LayerNorm2d if config.neck_norm == "layernorm" else nn.BatchNorm2d
            spatial = ([nn.Conv2d(p, p, 3, padding=1, bias=False)] if config.neck_conv == "full" else
                       [nn.Conv2d(p, p, 3, padding=1, groups=p, bias=False), nn.Conv2d(p, p, 1, bias=False)])
            self.neck = nn.Sequential(nn.Conv2d(c_in, p, 1, bias=False), norm(p), *spatial, norm(p))

        def forward(self, images_sam: torch.Tensor) -> torch.Tensor:
            x = self.stages(images_sam) + self.pos_embed
            return self.neck(x + self.context(x.mean((2, 3), keepdim=True)))

    return MaskEncoderStudent()


def build_student(config: StudentConfig) -> Any:
    """A freshly initialised student (torch nn.Module) at ``config``."""
    return _build(config)


def count_flops(module: Any, example: Any) -> int:
    """FLOPs of one forward on ``example`` (torch's FlopCounterMode: convolutions and matmuls, attention
    included; element-wise ops not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    return int(counter.get_total_flops())


def teacher_embeddings(model: Any, images: np.ndarray, batch: int = 8) -> np.ndarray:
    """(N, 3, S, S) float32 SAM inputs -> (N, P, h, w) float32 ``model.encode_image_sam`` outputs."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            out.append(model.encode_image_sam(torch.from_numpy(np.ascontiguousarray(images[start: start + batch]))).numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def embedding_errors(student: Any, images: np.ndarray, targets: np.ndarray, batch: int = 8) -> dict[str, float]:
    """Student vs precomputed teacher embeddings: mean squared error and mean per-position cosine."""
    import torch
    import torch.nn.functional as F

    student.eval()
    sq, cos, n = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start: start + batch]))
            t = torch.from_numpy(np.ascontiguousarray(targets[start: start + batch]))
            y = student(x)
            sq += float(F.mse_loss(y, t, reduction="sum"))
            cos += float(F.cosine_similarity(y, t, dim=1).mean(dim=(1, 2)).sum())
            n += len(x)
    return {"mse": sq / max(1, n * int(np.prod(targets.shape[1:]))), "cosine": cos / max(1, n)}


def _check_images(images: np.ndarray, config: StudentConfig, name: str) -> np.ndarray:
    images = np.asarray(images, np.float32)
    s = config.image_size
    if images.ndim != 4 or images.shape[1:] != (3, s, s) or not len(images):
        raise ConfigError(f"{name} must be (N >= 1, 3, {s}, {s}) SAM-preprocessed images, got shape {images.shape}")
    return images


def distill_mask_encoder(model: Any, images: np.ndarray, steps: int = 1000, lr: float = 2e-3, batch: int = 8,
                         seed: int = 0, progress: bool = True, held_out: np.ndarray | None = None,
                         widths: tuple[int, ...] | None = None, cosine_weight: float = 0.5, threads: int | None = 1,
                         command: str | None = None, data: dict[str, Any] | None = None,
                         options: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a student of ``model``'s (LisatModel) SAM encoder on ``images`` (N, 3, S, S) SAM-preprocessed;
    returns (eval-mode student, record). Loss: MSE + ``cosine_weight`` x (1 - per-position cosine), AdamW
    with warm-up and cosine decay. ``held_out`` images (never trained on) give the record's errors;
    without them the errors are on ``images``. ``data``: a description of the images for the record."""
    import torch
    import torch.nn.functional as F
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"steps {steps} and batch {batch} must be >= 1, lr {lr} positive")
    config = StudentConfig.for_lisat(model.config, widths, options)
    images = _check_images(images, config, "images")
    evaluation = _check_images(held_out, config, "held_out") if held_out is not None else images
    began = time.perf_counter()
    with torch_threads(threads):
        targets = teacher_embeddings(model, images)
        eval_targets = teacher_embeddings(model, evaluation) if held_out is not None else targets
        teacher_seconds = time.perf_counter() - began
        torch.manual_seed(seed)
        student = build_student(config)
        initial = embedding_errors(student, evaluation, eval_targets)
        optimiser = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=1e-4)
        warmup = max(1, min(50, steps // 10))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
        rng = np.random.default_rng(seed)
        curve: list[float] = []
        student.train()
        start = time.perf_counter()
        columns = (TextColumn("distil mask encoder"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn())
        with Progress(*columns, disable=not progress) as bar:
            job = bar.add_task("distil", total=steps, loss=float("nan"))
            for _ in range(steps):
                index = rng.choice(len(images), size=min(batch, len(images)), replace=False)
                x, t = torch.from_numpy(images[index]), torch.from_numpy(targets[index])
                y = student(x)
                loss = F.mse_loss(y, t)
                if cosine_weight:
                    loss = loss + cosine_weight * (1 - F.cosine_similarity(y, t, dim=1).mean())
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                curve.append(round(float(loss.detach()), 6))
                bar.update(job, advance=1, loss=float(np.mean(curve[-20:])))
        train_seconds = time.perf_counter() - start
        student.eval()
        final = embedding_errors(student, evaluation, eval_targets)
        example = torch.zeros(1, 3, config.image_size, config.image_size)
        teacher_flops = count_flops(model.model.visual_model.image_encoder, example)
        student_flops = count_flops(student, example)
        used_threads = torch.get_num_threads()
    teacher_params = sum(p.numel() for p in model.model.visual_model.image_encoder.parameters())
    student_params = sum(p.numel() for p in student.parameters())
    record = {
        "kind": "lisat-mask-encoder-student", "command": command, "seed": seed, "steps": steps, "batch": batch,
        "lr": lr, "cosine_weight": cosine_weight, "student_config": config.model_dump(mode="json"),
        "data": {"train_images": len(images), "held_out_images": None if held_out is None else len(evaluation),
                 **(data or {})},
        "errors_on": "held_out" if held_out is not None else "train",
        "initial": initial, "final": final,
        "teacher_vs_student_mse": final["mse"], "teacher_vs_student_cosine": final["cosine"],
        "parameters": {"teacher": teacher_params, "student": student_params,
                       "ratio": student_params / teacher_params},
        "flops": {"teacher": teacher_flops, "student": student_flops, "ratio": student_flops / teacher_flops,
                  "counted": "torch FlopCounterMode at batch 1: convolutions and matmuls (2 FLOPs per MAC)"},
        "teacher_seconds": teacher_seconds, "train_seconds": train_seconds, "seconds_per_step": train_seconds / steps,
        "loss_window_steps": min(20, steps),
        "first_loss": float(np.mean(curve[:20])), "final_loss": float(np.mean(curve[-20:])),
        "loss_curve": curve, "torch_threads": used_threads, "torch": torch.__version__,
    }
    return student, record


# -- files -----------------------------------------------------------------------------------------
def save_lisat_student(path: str | Path, student: Any, record: dict[str, Any] | None = None) -> Path:
    """``path`` (.safetensors; the student config in its metadata) and, with a record, ``path``.json."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ConfigError(f"student checkpoint {path} must end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in student.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", CONFIG_KEY: student.config.model_dump_json()})
    if record is not None:
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_lisat_student(path: str | Path, lisat_config: Any = None) -> tuple[Any, StudentConfig]:
    """(eval-mode student, its config) from ``save_lisat_student``'s file. Every tensor name and shape is
    checked against the config before loading (ModelFileError naming them); with ``lisat_config`` the
    student must also take and give that model's SAM input and embedding."""
    import torch
    from safetensors import SafetensorError, safe_open

    from edgeperc.models.lisat_checkpoint import check_fit

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"student checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            names = handle.keys()
            found = {k: tuple(handle.get_slice(k).get_shape()) for k in names}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is truncated or corrupt ({exc})") from exc
    if CONFIG_KEY not in meta:
        raise ModelFileError(f"{path} has no '{CONFIG_KEY}' metadata: not a LISAt student checkpoint")
    try:
        config = StudentConfig.model_validate_json(meta[CONFIG_KEY])
    except ValidationError as exc:
        raise ModelFileError(f"{path}: student config is malformed ({exc.errors()[0]['msg']})") from exc
    if lisat_config is not None:
        s = lisat_config.sam
        want = (s.image_size, s.prompt_embed_dim, s.embedding_size)
        if (config.image_size, config.out_channels, config.grid) != want:
            raise ModelFileError(f"{path}: student maps {config.image_size} px to ({config.out_channels}, {config.grid}, "
                                 f"{config.grid}); the LISAt model's mask encoder maps {want[0]} px to "
                                 f"({want[1]}, {want[2]}, {want[2]})")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_student(config).state_dict().items()}
    check_fit(found, expected, str(path), against="its student config")
    student = build_student(config)
    from safetensors.torch import load_file

    student.load_state_dict(load_file(str(path)))
    return student.eval(), config


# -- the whole job (what `edgeperc train lisat-student` runs) ----------------------------------------
TRAIN_IMAGE_SEED = 1000  # scene seeds 1000 * 1_000_003 + i: disjoint from LISAt training's seed-0 scenes
HELD_OUT_IMAGE_SEED = 2000


def distillation_images(count: int, seed: int, size: int, sam_side: int) -> np.ndarray:
    """(count, 3, sam_side, sam_side) SAM-preprocessed aerial scenes (``generate aerial``'s default recipe,
    scene i of ``seed`` as that command writes it); no query or mask is needed to distil."""
    from edgeperc.models.lisat_training import preprocess_sam, scene_seed
    from edgeperc.synth.aerial import aerial_recipe, render_aerial

    if count < 1:
        raise ConfigError(f"--images {count} must be at least 1")
    recipe = aerial_recipe("default", (size, size))
    return np.stack([preprocess_sam(render_aerial(np.random.default_rng(scene_seed(seed, i)), recipe).image, sam_side)
                     for i in range(count)])


def train_lisat_student(checkpoint: str | Path, out: str | Path, steps: int = 1000, batch: int = 8, lr: float = 2e-3,
                        seed: int = 0, images: int = 400, held_out_images: int = 32, size: int = 256,
                        widths: tuple[int, ...] | None = None, cosine_weight: float = 0.5, threads: int | None = 1,
                        command: str | None = None, progress: bool = True,
                        options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Distil the mask encoder of the LISAt checkpoint ``checkpoint`` (load_lisat) on ``images`` generated
    aerial scenes of ``size`` px (seeds disjoint from LISAt training's), write ``out`` (.safetensors) and
    ``out``.json; returns the record."""
    from edgeperc.hashing import sha256_file
    from edgeperc.models.lisat_checkpoint import checkpoint_files, load_lisat

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out} must end in .safetensors")
    model, config = load_lisat(checkpoint)
    began = time.perf_counter()
    s = config.sam.image_size
    train = distillation_images(images, TRAIN_IMAGE_SEED + seed, size, s)
    held = distillation_images(held_out_images, HELD_OUT_IMAGE_SEED + seed, size, s) if held_out_images else None
    data = {"generator": "edgeperc generate aerial (recipe default)", "size_px": size,
            "train_seed": TRAIN_IMAGE_SEED + seed, "held_out_seed": HELD_OUT_IMAGE_SEED + seed,
            "seconds": time.perf_counter() - began}
    student, record = distill_mask_encoder(model, train, steps, lr, batch, seed, progress, held, widths, cosine_weight,
                                           threads, command, data, options)
    files = checkpoint_files(checkpoint)
    record["teacher_checkpoint"] = {"path": str(checkpoint),
                                    "sha256": sha256_file(files[0]) if len(files) == 1 else None}
    save_lisat_student(out, student, record)
    return record
