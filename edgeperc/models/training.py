"""Reference training on the family's synthetic data, so the package ships real small weights.

Never part of CI: CI uses the committed safetensors. Deterministic per seed on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeperc.errors import ConfigError
from edgeperc.models.checkpoints import save_checkpoint
from edgeperc.models.registry import Family
from edgeperc.preprocess import normalise_images


def _prepare_targets(family: Family, config, truth) -> dict:
    """Pool targets as tensors: dense maps for Y-Net families, anchor labels for the RPN."""
    import torch

    if family.name != "barcode-rpn":
        return {"truth": torch.from_numpy(np.asarray(truth))}
    from edgeperc.runtime.pipelines.barcode.proposals import anchor_targets, make_anchors

    grid = (config.input_hw[0] // config.stride_px, config.input_hw[1] // config.stride_px)
    anchors = make_anchors(grid, config.stride_px, config.anchor_sizes_px, config.anchor_ratios)
    pairs = [anchor_targets(anchors, boxes) for boxes in truth]
    return {"labels": torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.int64)),
            "deltas": torch.from_numpy(np.stack([p[1] for p in pairs]))}


def _loss(family: Family, outputs, targets: dict):
    import torch
    import torch.nn.functional as F

    if family.name == "barcode-rpn":
        objectness, deltas = outputs
        batch, anchors, height, width = objectness.shape
        prob = objectness.permute(0, 2, 3, 1).reshape(batch, -1).clamp(1e-6, 1 - 1e-6)
        pred = deltas.view(batch, anchors, 4, height, width).permute(0, 3, 4, 1, 2).reshape(batch, -1, 4)
        labels = targets["labels"]
        positive, negative = labels == 1, labels == 0
        bce = F.binary_cross_entropy(prob, positive.float(), reduction="none")
        # Balanced: positives are a few dozen of 12k anchors; each side gets equal weight.
        obj = bce[positive].mean() + bce[negative].mean() if positive.any() else bce[negative].mean()
        reg = F.smooth_l1_loss(pred[positive], targets["deltas"][positive], beta=1 / 9) if positive.any() else prob.sum() * 0
        return obj + reg
    truth = targets["truth"]
    if family.primary_metric == "mask_iou":
        prob = outputs[0].clamp(1e-6, 1 - 1e-6)
        return F.binary_cross_entropy(prob, truth[:, None].float())
    depth, log_var = outputs
    target = truth[:, None]
    valid = torch.isfinite(target)
    # App. B eq. B.1 on valid pixels: 1/(2 sigma^2) |y - f|^2 + 1/2 log sigma^2.
    per_pixel = 0.5 * torch.exp(-log_var) * (torch.nan_to_num(target) - depth) ** 2 + 0.5 * log_var
    return per_pixel[valid].mean()


def train_family(
    family: Family,
    config_overrides: dict,
    steps: int,
    out: str | Path,
    batch: int = 8,
    pool: int = 256,
    seed: int = 0,
    lr: float = 4e-3,
    weight_decay: float = 1e-4,
    crop_hw: tuple[int, int] | None = None,
) -> dict:
    """Train on a pool of generated samples; writes ``out`` (.safetensors) and ``out``.json."""
    if crop_hw is not None and family.name == "barcode-rpn":
        raise ConfigError("--crop does not apply to barcode-rpn (it sees the whole 256x256 copy)")
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    torch.manual_seed(seed)
    config = family.make_config(config_overrides)
    if crop_hw is not None and getattr(config, "wrap_longitude", False) and crop_hw[1] != config.input_hw[1]:
        raise ConfigError(f"--crop {crop_hw[0]}x{crop_hw[1]}: a panorama model wraps at +-180 deg, so crops must keep the "
                          f"full width {config.input_hw[1]}")
    # NHWC: oneDNN's CPU convolutions run ~1.5x faster per step at widths >= 32 (measured here)
    model = family.build(config).to(memory_format=torch.channels_last)
    pixels, truth = family.generate(config, pool, seed)
    inputs = torch.from_numpy(normalise_images(pixels, family.normalisation))
    targets = _prepare_targets(family, config, truth)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, steps))
    rng = np.random.default_rng(seed + 1)
    model.train()
    losses = []
    with Progress(TextColumn("train {task.fields[name]}"), BarColumn(), TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn()) as progress:
        task = progress.add_task("train", total=steps, name=family.name, loss=float("nan"))
        for _ in range(steps):
            index = torch.from_numpy(rng.choice(pool, size=batch, replace=False))
            x = inputs[index]
            y = {key: value[index] for key, value in targets.items()}
            if crop_hw is not None:  # fully convolutional: train on crops, 4x cheaper on a CPU
                top = int(rng.integers(0, x.shape[2] - crop_hw[0] + 1))
                left = int(rng.integers(0, x.shape[3] - crop_hw[1] + 1))
                x = x[:, :, top : top + crop_hw[0], left : left + crop_hw[1]]
                y = {"truth": y["truth"][:, top : top + crop_hw[0], left : left + crop_hw[1]]}
            if rng.random() < 0.5 and family.name == "ynet-barcode":  # flips keep codes codes
                x, y = x.flip(-1), {"truth": y["truth"].flip(-1)}
            if getattr(config, "wrap_longitude", False):  # a panorama turned about its axis is a panorama
                shift = int(rng.integers(0, x.shape[-1]))
                x, y = x.roll(shift, dims=-1), {"truth": y["truth"].roll(shift, dims=-1)}
                if rng.random() < 0.5:  # and so is its mirror image
                    x, y = x.flip(-1), {"truth": y["truth"].flip(-1)}
            loss = _loss(family, model(x.contiguous(memory_format=torch.channels_last)), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            progress.update(task, advance=1, loss=float(np.mean(losses[-20:])))
    model = model.to(memory_format=torch.contiguous_format).eval()  # safetensors stores contiguous tensors
    held_pixels, held_truth = family.generate(config, 16, seed + 10_000)
    with torch.no_grad():
        outs = model(torch.from_numpy(normalise_images(held_pixels, family.normalisation)))
    names = family.output_names(config)
    held_metrics = family.evaluate(config, {n: o.numpy() for n, o in zip(names, outs)}, held_truth)
    record = {
        "family": family.name,
        "config": config.model_dump(mode="json"),
        "steps": steps,
        "batch": batch,
        "pool": pool,
        "seed": seed,
        "lr": lr,
        "weight_decay": weight_decay,
        "crop_hw": list(crop_hw) if crop_hw else None,
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
        "held_out_seed": seed + 10_000,
        "held_out_metrics": held_metrics,
        "torch": torch.__version__,
    }
    out = Path(out)
    save_checkpoint(model, out, family.name, config.model_dump(mode="json"), {"edgeperc.training": json.dumps(record)})
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return record
