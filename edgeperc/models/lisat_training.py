"""End-to-end training of a LISAt configuration on generated aerial scenes, on the CPU.

The data are ``edgeperc generate aerial``'s scenes and queries (same seeds: scene i of seed S is
what that command writes as image i), built in memory: each scene gives a CLIP input at the vision
tower's size and a SAM input (ResizeLongestSide to the encoder's size, normalised, zero-padded
bottom/right); each query becomes LISA's turn "USER: <image>\\n{query} ASSISTANT: Sure, it is
<SEG>." with labels on the answer only, and its target mask at the image's own size (decode_mask
returns masks at ``original_size``, the image size here). Scenes are split into training and
held-out ones, so no held-out image is ever seen in training.

The objective is ``lisat_loss`` (dissertation eq. 6.1-6.3: text CE + 2 BCE + 0.5 Dice, section
6.5), optimised with AdamW; the trainer's defaults reweight it (BCE of target pixels x20, 2 Dice), as
measured on these data. ``LisatTrainConfig``'s mask options, for the tiny targets of these scenes
(100-500 px of a 65k-px image: plain BCE mostly learns background): ``pos_weight`` (BCE weight of target
pixels), ``bce_weight`` / ``dice_weight``, ``mask_loss_stride`` (the mask loss on logits and targets
pooled to the decoder's low-res grid, the target area- or max-pooled: ``mask_target_pool``) and
``answers="generator"`` (the generator's own answer sentence, its [SEG] as <SEG>, as the text target).

Held-out metrics follow the chapter: gIoU (mean of per-query IoU) and
cIoU (cumulative intersection over cumulative union), All / Small (< 500 px² target) / Large,
once with the answer given (teacher forcing: the mask of the reference answer's <SEG>) and once
end to end (greedy answer; a query whose answer has no <SEG> gets an empty mask).

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.errors import ConfigError
from edgeperc.models.torch_threads import torch_threads
from edgeperc.models.lisat_preprocess import preprocess_clip, preprocess_sam  # noqa: F401 - re-exported

MAX_QUERIES_PER_IMAGE = 32
ANSWER_TOKENS_MAX = 16  # greedy decoding budget for the held-out answers ("Sure, it is <SEG>." is 6 + </s>)
ANSWER_KINDS = ("fixed", "generator")
BATCHINGS = ("random", "scene")


@dataclass(frozen=True)
class LisatTrainConfig:
    """What ``edgeperc train lisat`` takes; ``check`` names the CLI option of a bad value."""

    steps: int = 300
    batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    seed: int = 0
    scenes: int = 16
    queries_per_image: int = 3
    size: int = 256
    held_out_fraction: float = 0.2
    threads: int | None = 1
    # mask objective: lisat_loss weights; the loss on logits and targets pooled by mask_loss_stride (1: full
    # size; 4 at a 256-px SAM input: the decoder's 64x64 low-res grid), the target area- or max-pooled
    # defaults measured on 80 and 240 scenes, 500 steps: held-out gIoU 0.019 -> 0.069 and 0.004 -> 0.111 against
    # LISA's (2 BCE + 0.5 Dice, pos_weight 1), which mostly learn background here
    bce_weight: float = 2.0
    dice_weight: float = 2.0
    pos_weight: float = 20.0
    mask_loss_stride: int = 1
    mask_target_pool: str = "area"
    # answer text: "fixed" (LISA's "Sure, it is <SEG>.") or "generator" (the query's own answer, [SEG] -> <SEG>)
    answers: str = "fixed"
    # SAM pre-training with point/box prompts before the end-to-end stage: LISA starts from a SAM that
    # already segments what its sparse prompt points at; a SAM trained from scratch end to end learns a
    # prompt-independent "objectness" mask instead (measured: every query gave the same mask, seg
    # embeddings of different queries at cosine 0.9999). 0 = no pre-training.
    sam_pretrain_steps: int = 0
    # end-to-end stage: keep the (pre-trained) SAM image encoder fixed, as LISA does
    freeze_sam_encoder: bool = False
    # query grounding (training only, nothing saved): "scene" batches hold queries of one scene (then the next
    # scene's), so one query-independent mask cannot fit a batch; aux_weight: a linear head (dropped after
    # training) reads the target's normalised box, category and colour off the <SEG> prompt embedding;
    # negative_weight: each mask's mean probability on the other same-scene targets of its batch
    batching: str = "random"
    aux_weight: float = 0.0
    negative_weight: float = 0.0

    def check(self) -> None:
        from edgeperc.synth.aerial import MAX_SIDE_PX, MIN_SIDE_PX, SIDE_MULTIPLE

        if self.steps < 1:
            raise ConfigError(f"--steps {self.steps} must be at least 1")
        if self.batch < 1:
            raise ConfigError(f"--batch {self.batch} must be at least 1")
        if not self.lr > 0:
            raise ConfigError(f"--lr {self.lr} must be positive")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed} must be >= 0")
        if self.scenes < 2:
            raise ConfigError(f"--scenes {self.scenes} must be at least 2 (one is held out)")
        if not 1 <= self.queries_per_image <= MAX_QUERIES_PER_IMAGE:
            raise ConfigError(f"--queries-per-image {self.queries_per_image} must be between 1 and {MAX_QUERIES_PER_IMAGE}")
        if self.size % SIDE_MULTIPLE or not MIN_SIDE_PX <= self.size <= MAX_SIDE_PX:
            raise ConfigError(f"--size {self.size} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE_PX} and "
                              f"{MAX_SIDE_PX} (the aerial generator's sides)")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads} must be at least 1")
        if self.mask_loss_stride < 1 or self.size % self.mask_loss_stride:
            raise ConfigError(f"mask_loss_stride {self.mask_loss_stride} must be >= 1 and divide --size {self.size}")
        if self.mask_target_pool not in ("area", "max"):
            raise ConfigError(f"mask_target_pool {self.mask_target_pool!r} must be 'area' or 'max'")
        if self.answers not in ANSWER_KINDS:
            raise ConfigError(f"answers {self.answers!r} must be one of {', '.join(ANSWER_KINDS)}")
        if self.batching not in BATCHINGS:
            raise ConfigError(f"--batching {self.batching!r} must be one of {', '.join(BATCHINGS)}")
        if self.aux_weight < 0 or self.negative_weight < 0:
            raise ConfigError(f"--aux-weight {self.aux_weight} and --negative-weight {self.negative_weight} must be >= 0")
        if self.sam_pretrain_steps < 0:
            raise ConfigError(f"--sam-pretrain-steps {self.sam_pretrain_steps} must be >= 0")
        if min(self.bce_weight, self.dice_weight) < 0 or not self.pos_weight > 0:
            raise ConfigError("bce_weight and dice_weight must be >= 0, pos_weight > 0")
        if not 0 < self.held_out_fraction < 1:
            raise ConfigError(f"held_out_fraction {self.held_out_fraction} must lie in (0, 1)")


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index``: the formula of ``generate aerial`` (cli_panoramas.image_seed)."""
    return seed * 1_000_003 + index


@dataclass
class AerialQuerySet:
    """Scenes and their queries, ready for the model.

    images_clip (S, 3, Hc, Wc) and images_sam (S, 3, Ss, Ss) float32; per query: scene (Q,) int64,
    text, area_px (Q,), masks (Q, H, W) bool at the image size; answers: the generator's answer of
    each query with its [SEG] as <SEG> (the training target with ``answers="generator"``).
    """

    images_clip: np.ndarray
    images_sam: np.ndarray
    scene: np.ndarray
    texts: list[str]
    area_px: np.ndarray
    masks: np.ndarray
    scene_seeds: list[int]
    answers: list[str] | None = None

    def answers_for(self, kind: str) -> list[str] | None:
        """Per-query answer text for ``kind`` ("fixed": None, LISA's SEG_ANSWER)."""
        return self.answers if kind == "generator" else None

    def subset(self, scenes: np.ndarray) -> AerialQuerySet:
        """The queries of ``scenes`` (indices), scenes renumbered 0..len-1."""
        keep = np.isin(self.scene, scenes)
        remap = {int(s): i for i, s in enumerate(scenes)}
        return AerialQuerySet(self.images_clip[scenes], self.images_sam[scenes],
                              np.array([remap[int(s)] for s in self.scene[keep]], np.int64),
                              [t for t, k in zip(self.texts, keep) if k], self.area_px[keep], self.masks[keep],
                              [self.scene_seeds[int(s)] for s in scenes],
                              None if self.answers is None else [a for a, k in zip(self.answers, keep) if k])


def build_query_set(scenes: int, queries_per_image: int, size: int, seed: int, clip_side: int,
                    sam_side: int) -> AerialQuerySet:
    """``scenes`` aerial scenes (size x size, default recipe) from ``seed``, up to ``queries_per_image`` each."""
    from edgeperc.synth.aerial import aerial_recipe, render_aerial
    from edgeperc.synth.aerial_queries import generate_queries, scene_geometry

    recipe = aerial_recipe("default", (size, size))
    clip, sam, scene_of, texts, areas, masks, seeds, answers = [], [], [], [], [], [], [], []
    for index in range(scenes):
        this_seed = scene_seed(seed, index)
        scene = render_aerial(np.random.default_rng(this_seed), recipe)
        queries = generate_queries(scene, np.random.default_rng([this_seed, 1]), queries_per_image,
                                   geometry=scene_geometry(scene))
        clip.append(preprocess_clip(scene.image, clip_side))
        sam.append(preprocess_sam(scene.image, sam_side))
        seeds.append(this_seed)
        for query in queries:
            scene_of.append(index)
            texts.append(query.text)
            answers.append(seg_answer(query.answer))
            areas.append(query.area_px)
            masks.append(query.mask)
    return AerialQuerySet(np.stack(clip), np.stack(sam), np.array(scene_of, np.int64), texts,
                          np.array(areas, np.int64), np.stack(masks) if masks else np.zeros((0, size, size), bool), seeds,
                          answers)


def seg_answer(answer: str) -> str:
    """The generator's answer ("It is the red vehicle. [SEG]") with the model's <SEG> for its [SEG]."""
    return answer.replace("[SEG]", "<SEG>")


def split_scenes(count: int, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) scene indices, sorted; at least one of each."""
    held = min(count - 1, max(1, round(count * held_out_fraction)))
    order = np.random.default_rng([seed, 2]).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


def encode_batch(tokenizer: Any, texts: list[str], pad_id: int,
                 answers: list[str] | None = None) -> tuple[Any, Any, Any]:
    """Texts (+ answers, default LISA's) -> (B, L) input_ids, attention_mask and labels (IGNORE_INDEX but on
    the answer), right-padded."""
    import torch

    from edgeperc.models.lisat_config import IGNORE_INDEX
    from edgeperc.models.lisat_tokenizer import SEG_ANSWER, training_example

    answers = answers or [SEG_ANSWER] * len(texts)
    pairs = [training_example(tokenizer, text, answer) for text, answer in zip(texts, answers)]
    length = max(len(ids) for ids, _ in pairs)
    ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    for row, (i, lab) in enumerate(pairs):
        ids[row, : len(i)] = torch.tensor(i)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(i)] = 1
    return ids, mask, labels


def iou_metrics(intersection: np.ndarray, union: np.ndarray, area_px: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per-query intersection and union (px) -> {all, small, large}: {queries, giou, ciou}.

    gIoU = mean of per-query IoU, cIoU = sum of intersections / sum of unions (LISA's metrics);
    Small = target below 500 px² (LISAt's split).
    """
    from edgeperc.synth.aerial import SMALL_AREA_PX

    intersection, union = np.asarray(intersection, np.float64), np.asarray(union, np.float64)
    small = np.asarray(area_px) < SMALL_AREA_PX
    out: dict[str, dict[str, Any]] = {}
    for name, keep in (("all", np.ones_like(small)), ("small", small), ("large", ~small)):
        i, u = intersection[keep], union[keep]
        per_query = np.where(u > 0, i / np.maximum(u, 1), 1.0)
        out[name] = {"queries": int(keep.sum()),
                     "giou": float(per_query.mean()) if keep.any() else None,
                     "ciou": float(i.sum() / u.sum()) if u.sum() > 0 else None}
    return out


def mask_loss_inputs(mask_logits: Any, target: Any, stride: int, pool: str = "area") -> tuple[Any, Any]:
    """(S, 1, H, W) logits and (S, H, W) targets -> both pooled by ``stride`` (logits averaged; the target
    area-averaged to a soft one or max-pooled so a small target keeps a full cell); stride 1: unchanged."""
    import torch.nn.functional as F

    target = target.float()
    if stride == 1:
        return mask_logits, target
    pooled = F.avg_pool2d(target[:, None], stride) if pool == "area" else F.max_pool2d(target[:, None], stride)
    return F.avg_pool2d(mask_logits, stride), pooled[:, 0]


def training_loss(out: Any, labels: Any, target: Any, train: LisatTrainConfig) -> dict[str, Any]:
    """lisat_loss with ``train``'s weights, on masks pooled by ``train.mask_loss_stride``."""
    from dataclasses import replace

    from edgeperc.models.lisat import lisat_loss

    logits, target = mask_loss_inputs(out.mask_logits, target, train.mask_loss_stride, train.mask_target_pool)
    return lisat_loss(replace(out, mask_logits=logits), labels, target, bce_weight=train.bce_weight,
                      dice_weight=train.dice_weight, pos_weight=train.pos_weight)


def batch_forward(model: Any, tokenizer: Any, data: AerialQuerySet, index: np.ndarray, answers: list[str] | None,
                  size: tuple[int, int]) -> tuple[Any, Any, Any, np.ndarray, Any]:
    """The queries ``index`` (answers: reference texts, or None for LISA's fixed one) through the
    model: (LisatOutput, ids, labels, their scenes, target masks)."""
    import torch

    ids, mask, labels = encode_batch(tokenizer, [data.texts[i] for i in index], model.config.pad_token_id,
                                     None if answers is None else [answers[i] for i in index])
    scenes = data.scene[index]
    out = model(torch.from_numpy(data.images_clip[scenes]), torch.from_numpy(data.images_sam[scenes]), ids, mask, size)
    return out, ids, labels, scenes, torch.from_numpy(data.masks[index])


def evaluate_lisat(model: Any, tokenizer: Any, data: AerialQuerySet, batch: int = 8,
                   answers: str = "fixed") -> dict[str, Any]:
    """Held-out metrics of an eval-mode model: teacher-forced and greedy (end-to-end) mask IoU, the
    fraction of greedy answers holding <SEG>, and the mean loss parts."""
    import torch

    from edgeperc.models.lisat import greedy_decode, lisat_loss, splice_labels
    from edgeperc.models.lisat_tokenizer import seg_prompt

    config = model.config
    size = tuple(data.masks.shape[1:])
    n = len(data.texts)
    inter_tf, union_tf = np.zeros(n), np.zeros(n)
    parts: dict[str, list[float]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            index = np.arange(start, min(start + batch, n))
            out, ids, labels, _scenes, target = batch_forward(model, tokenizer, data, index, data.answers_for(answers), size)
            for k, v in lisat_loss(out, splice_labels(labels, ids, config), target).items():
                parts.setdefault(k, []).append(float(v) * len(index))
            pred = out.mask_logits[:, 0] > 0
            inter_tf[index] = (pred & target).flatten(1).sum(1).numpy()
            union_tf[index] = (pred | target).flatten(1).sum(1).numpy()
        inter_g, union_g, has_seg = np.zeros(n), np.zeros(n), np.zeros(n, bool)
        sam_cache: dict[int, Any] = {}
        for q in range(n):
            s = int(data.scene[q])
            prompt = torch.tensor([tokenizer.encode(seg_prompt(data.texts[q]), add_bos=True)])
            new_ids, emitted = greedy_decode(model, torch.from_numpy(data.images_clip[s: s + 1]), prompt,
                                             ANSWER_TOKENS_MAX, stop_id=getattr(tokenizer, "eos_id", None))
            target = torch.from_numpy(data.masks[q])
            seg_at = (new_ids[0] == config.seg_token_id).nonzero()
            if len(seg_at):
                has_seg[q] = True
                if s not in sam_cache:
                    sam_cache[s] = model.encode_image_sam(torch.from_numpy(data.images_sam[s: s + 1]))
                seg = model.seg_embedding(emitted[:, int(seg_at[0])])
                pred = model.decode_mask(sam_cache[s], seg, size)[0, 0] > 0
            else:
                pred = torch.zeros_like(target)
            inter_g[q] = float((pred & target).sum())
            union_g[q] = float((pred | target).sum())
    return {
        "queries": n,
        "loss": {k: sum(v) / n for k, v in parts.items()} if n else {},
        "teacher_forced": iou_metrics(inter_tf, union_tf, data.area_px),
        "greedy": iou_metrics(inter_g, union_g, data.area_px),
        "seg_answer_fraction": float(has_seg.mean()) if n else None,
    }


def train_lisat(out: str | Path, train: LisatTrainConfig | None = None, config_overrides: dict[str, Any] | None = None,
                preset: str = "tiny", command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train LISAt at ``preset`` (+ ``config_overrides``) on generated aerial data, write it
    (``save_trained_lisat``) and return the training record."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out} must end in .safetensors")
    model, tokenizer, record = fit_lisat(train, config_overrides, preset, command, progress)
    save_trained_lisat(out, model, tokenizer, record)
    return record


def fit_lisat(train: LisatTrainConfig | None = None, config_overrides: dict[str, Any] | None = None,
              preset: str = "tiny", command: str | None = None,
              progress: bool = True) -> tuple[Any, Any, dict[str, Any]]:
    """(eval-mode LisatModel, its WordTokenizer, the training record): data, split, AdamW, held-out metrics."""
    import torch

    from edgeperc.models.lisat import LisatModel, count_parameters
    from edgeperc.models.lisat_config import make_lisat_config
    from edgeperc.models.lisat_tokenizer import build_tokenizer, check_tokenizer
    from edgeperc.synth.aerial import SMALL_AREA_PX

    train = train or LisatTrainConfig()
    train.check()
    config = make_lisat_config(config_overrides, preset)
    began = time.perf_counter()
    data = build_query_set(train.scenes, train.queries_per_image, train.size, train.seed, config.vision.image_size,
                           config.sam.image_size)
    train_scenes, held_scenes = split_scenes(train.scenes, train.held_out_fraction, train.seed)
    train_set, held_set = data.subset(train_scenes), data.subset(held_scenes)
    if not train_set.texts:
        raise ConfigError(f"the {len(train_scenes)} training scenes gave no query: raise --scenes or --size")
    tokenizer = build_tokenizer(train_set.texts + (train_set.answers_for(train.answers) or []),
                                max_size=config.llm.vocab_size)
    check_tokenizer(tokenizer, config)
    data_seconds = time.perf_counter() - began

    record: dict[str, Any] = {
        "family": "lisat", "command": command, "preset": preset,
        "seeds": {"data": train.seed, "scene_seeds": data.scene_seeds, "torch": train.seed, "sampling": train.seed + 1},
        "data": {"generator": "edgeperc generate aerial (recipe default)", "size_px": train.size,
                 "scenes": train.scenes, "queries_per_image": train.queries_per_image,
                 "train_scenes": [int(s) for s in train_scenes], "held_out_scenes": [int(s) for s in held_scenes],
                 "train_queries": len(train_set.texts), "held_out_queries": len(held_set.texts),
                 "train_small_queries": int((train_set.area_px < SMALL_AREA_PX).sum()),
                 "held_out_small_queries": int((held_set.area_px < SMALL_AREA_PX).sum())},
        "train": {k: getattr(train, k) for k in LisatTrainConfig.__dataclass_fields__},
        "config": config.model_dump(mode="json"), "tokenizer_size": len(tokenizer),
    }
    with torch_threads(train.threads):
        torch.manual_seed(train.seed)
        model = LisatModel(config)
        record["parameters"] = count_parameters(model)
        if train.sam_pretrain_steps:
            record["sam_pretrain"] = _pretrain_sam(model, train_set, train, progress)
        record.update(_fit(model, tokenizer, train_set, train, progress))
        record["held_out_metrics"] = evaluate_lisat(model, tokenizer, held_set,
                                                     answers=train.answers) if held_set.texts else {}
        record["torch_threads"] = torch.get_num_threads()
    record["data_seconds"] = data_seconds
    record["wall_seconds"] = time.perf_counter() - began
    record["torch"] = torch.__version__
    return model, tokenizer, record


def save_trained_lisat(out: str | Path, model: Any, tokenizer: Any, record: dict[str, Any]) -> Path:
    """``out`` (.safetensors, LISA's tensor names; config and record in its metadata too), save_lisat's
    ``config.json`` and ``lisat_tokenizer.json`` in ``out``'s folder (one model per folder: ``load_lisat(out)``
    and ``load_tokenizer(folder)`` read them back), and ``out``.json, the record."""
    from safetensors.torch import save_file

    from edgeperc.models.lisat_checkpoint import (
        CONFIG_BLOCK,
        CONFIG_FILE,
        config_to_json,
    )
    from edgeperc.models.lisat_tokenizer import TOKENIZER_FILE

    out = Path(out)
    config = model.config
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out), metadata={"format": "pt", CONFIG_BLOCK: json.dumps(config.model_dump(mode="json")),
                                         "edgeperc.training": json.dumps({k: v for k, v in record.items()
                                                                          if k != "loss_curve"})})
    (out.parent / CONFIG_FILE).write_text(json.dumps(config_to_json(config), indent=2))
    tokenizer.save(out.parent / TOKENIZER_FILE)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return out


def prompt_points(masks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(B, H, W) bool target masks -> ((B, 1, 2) one random (x, y) pixel inside each, (B, 4) its box
    x0, y0, x1, y1), in input pixels as SAM's prompt encoder takes them (it adds the 0.5 itself)."""
    points = np.zeros((len(masks), 1, 2), np.float32)
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        i = rng.integers(len(xs))
        points[k, 0] = (xs[i], ys[i])
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return points, boxes


def _pretrain_sam(model: Any, data: AerialQuerySet, train: LisatTrainConfig, progress: bool) -> dict[str, Any]:
    """SAM alone on the training targets with point (and half the time box) prompts: BCE + Dice as
    the end-to-end stage, AdamW on SAM's parameters only. Returns the stage's loss record."""
    import torch
    import torch.nn.functional as F
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edgeperc.models.lisat import _predict_masks_paired

    sam = model.model.visual_model
    rng = np.random.default_rng(train.seed + 2)
    optimiser = torch.optim.AdamW(sam.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    steps = train.sam_pretrain_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
    side = model.config.sam.image_size
    weight = torch.tensor(train.pos_weight)
    history: list[float] = []
    start = time.perf_counter()
    sam.train()
    columns = (TextColumn("pre-train SAM"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task("sam", total=steps, loss=float("nan"))
        for _ in range(steps):
            index = rng.choice(len(data.texts), size=min(train.batch, len(data.texts)), replace=False)
            target = data.masks[index]
            points, boxes = prompt_points(target, rng)
            with_box = rng.random() < 0.5
            sparse, dense = sam.prompt_encoder(points=(torch.from_numpy(points), torch.ones(len(index), 1, dtype=torch.int64)),
                                               boxes=torch.from_numpy(boxes) if with_box else None, masks=None)
            embeddings = sam.image_encoder(torch.from_numpy(data.images_sam[data.scene[index]]))
            low = _predict_masks_paired(sam.mask_decoder, embeddings, sam.prompt_encoder.get_dense_pe(), sparse, dense, masks=1)
            logits = F.interpolate(low, (side, side), mode="bilinear", align_corners=False)[:, 0]
            logits = logits[:, : target.shape[1], : target.shape[2]].flatten(1)
            truth = torch.from_numpy(target).flatten(1).float()
            bce = F.binary_cross_entropy_with_logits(logits, truth, pos_weight=weight)
            prob = logits.sigmoid()
            dice = (1 - (2 * (prob * truth).sum(1) + 1e-6) / (prob.sum(1) + truth.sum(1) + 1e-6)).mean()
            loss = train.bce_weight * bce + train.dice_weight * dice
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            history.append(float(loss.detach()))
            bar.update(job, advance=1, loss=float(np.mean(history[-20:])))
    window = max(1, min(20, steps // 5))
    return {"steps": steps, "seconds": time.perf_counter() - start, "prompts": "1 point inside the target, + its box half the time",
            "first_loss": float(np.mean(history[:window])), "final_loss": float(np.mean(history[-window:])),
            "loss_curve": [round(x, 5) for x in history]}


def batch_indices(data: AerialQuerySet, batch: int, batching: str, rng: np.random.Generator) -> np.ndarray:
    """Query indices of one training batch: ``random`` (any queries) or ``scene`` (the queries of a random
    scene in random order, then of further scenes until ``batch`` are taken)."""
    n = len(data.texts)
    size = min(batch, n)
    if batching == "random":
        return rng.choice(n, size=size, replace=False)
    taken: list[int] = []
    for s in rng.permutation(int(data.scene.max()) + 1):
        taken.extend(rng.permutation(np.flatnonzero(data.scene == s)).tolist())
        if len(taken) >= size:
            break
    return np.array(taken[:size], np.int64)


def target_attributes(data: AerialQuerySet) -> dict[str, Any]:
    """Per query: normalised target box (cx, cy, w, h) and category / colour indices (from the generator's
    answer "It is the {colour} {noun}. [SEG]"), the targets of the auxiliary grounding head."""
    size = np.array(data.masks.shape[1:][::-1] * 2, np.float32)
    boxes = np.zeros((len(data.masks), 4), np.float32)
    for k, mask in enumerate(data.masks):
        ys, xs = np.nonzero(mask)
        if len(xs):
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            boxes[k] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    words = [a.replace("<SEG>", "").strip().rstrip(".").split()[3:] for a in (data.answers or [])]
    nouns = sorted({w[-1] for w in words if w})
    colours = sorted({" ".join(w[:-1]) for w in words if w})
    return {"box": boxes / size, "nouns": nouns, "colours": colours,
            "category": np.array([nouns.index(w[-1]) if w else -100 for w in words], np.int64),
            "colour": np.array([colours.index(" ".join(w[:-1])) if w else -100 for w in words], np.int64)}


def seg_prompts(model: Any, out: Any, input_ids: Any) -> Any:
    """(S, 1, P) seg embeddings of a training pass's <SEG>s (the rows of ``out.mask_logits``)."""
    from edgeperc.models.lisat import splice_like

    config = model.config
    n_image = out.hidden_states.shape[1] - input_ids.shape[1] + 1
    ids = splice_like(input_ids, input_ids, config.image_token_id, n_image, fill=config.image_token_id)
    rows, cols = (ids[:, 1:] == config.seg_token_id).nonzero(as_tuple=True)
    return model.seg_embedding(out.hidden_states[rows, cols])


def grounding_losses(model: Any, head: Any, out: Any, input_ids: Any, index: np.ndarray, scenes: np.ndarray,
                     masks: Any, attributes: dict[str, Any] | None, train: LisatTrainConfig) -> dict[str, Any]:
    """The training-only terms: ``aux_loss`` (head on the seg embedding: L1 on the box x4 + category and
    colour CE) and ``negative_loss`` (each mask's mean probability on the other same-scene targets)."""
    import torch
    import torch.nn.functional as F

    parts: dict[str, Any] = {}
    if head is not None and attributes is not None:
        pred = head(seg_prompts(model, out, input_ids)[:, 0])
        box = torch.from_numpy(attributes["box"][index])
        n_cat = len(attributes["nouns"])
        loss = 4 * F.l1_loss(pred[:, :4], box)
        if n_cat:
            loss = loss + F.cross_entropy(pred[:, 4: 4 + n_cat], torch.from_numpy(attributes["category"][index]),
                                          ignore_index=-100)
            loss = loss + F.cross_entropy(pred[:, 4 + n_cat:], torch.from_numpy(attributes["colour"][index]),
                                          ignore_index=-100)
        parts["aux_loss"] = loss
    if train.negative_weight > 0:
        prob = out.mask_logits[:, 0].sigmoid().flatten(1)
        target = masks.flatten(1).float()
        same = torch.from_numpy(scenes[:, None] == scenes[None, :]) & ~torch.eye(len(index), dtype=torch.bool)
        other = ((same.float() @ target) > 0).float() * (1 - target)  # other targets of the scene, not one's own
        count = other.sum(1)
        has = count > 0
        parts["negative_loss"] = ((prob * other).sum(1)[has] / count[has]).mean() if has.any() else prob.sum() * 0
    return parts


def _fit(model: Any, tokenizer: Any, data: AerialQuerySet, train: LisatTrainConfig, progress: bool) -> dict[str, Any]:
    """AdamW on lisat_loss, linear warm-up then cosine decay; returns the record's loss fields."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edgeperc.models.lisat import splice_labels

    config = model.config
    answers = data.answers_for(train.answers)
    rng = np.random.default_rng(train.seed + 1)
    if train.freeze_sam_encoder:
        model.model.visual_model.image_encoder.requires_grad_(False)
    attributes = target_attributes(data) if train.aux_weight > 0 else None
    head = None
    if attributes is not None:  # training-only, never saved
        head = torch.nn.Linear(config.sam.prompt_embed_dim, 4 + len(attributes["nouns"]) + len(attributes["colours"]))
    params = [p for p in model.parameters() if p.requires_grad] + ([] if head is None else list(head.parameters()))
    optimiser = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    warmup = max(1, min(train.warmup_steps, train.steps // 4))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / train.steps))))
    size = tuple(data.masks.shape[1:])
    history: dict[str, list[float]] = {}
    model.train()
    start = time.perf_counter()
    columns = (TextColumn("train lisat"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.3f} (ce {task.fields[ce]:.3f} bce {task.fields[bce]:.3f} "
                          "dice {task.fields[dice]:.3f})"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task("train", total=train.steps, loss=float("nan"), ce=float("nan"), bce=float("nan"),
                           dice=float("nan"))
        for _ in range(train.steps):
            index = batch_indices(data, train.batch, train.batching, rng)
            out, ids, labels, scenes, target = batch_forward(model, tokenizer, data, index, answers, size)
            parts = training_loss(out, splice_labels(labels, ids, config), target, train)
            extra = grounding_losses(model, head, out, ids, index, scenes, target, attributes, train)
            weights = {"aux_loss": train.aux_weight, "negative_loss": train.negative_weight}
            for k, v in extra.items():
                parts["loss"] = parts["loss"] + weights[k] * v
            parts.update(extra)
            optimiser.zero_grad()
            parts["loss"].backward()
            optimiser.step()
            schedule.step()
            for k, v in parts.items():
                history.setdefault(k, []).append(float(v.detach()))
            recent = {k: float(np.mean(v[-20:])) for k, v in history.items()}
            bar.update(job, advance=1, loss=recent["loss"], ce=recent["ce_loss"], bce=recent.get("mask_bce_loss", 0.0),
                       dice=recent.get("mask_dice_loss", 0.0))
    seconds = time.perf_counter() - start
    model.eval()
    window = max(1, min(20, train.steps // 5))
    return {
        "train_seconds": seconds,
        "seconds_per_step": seconds / train.steps,
        "loss_window_steps": window,
        "first_loss": {k: float(np.mean(v[:window])) for k, v in history.items()},
        "final_loss": {k: float(np.mean(v[-window:])) for k, v in history.items()},
        "loss_curve": {k: [round(x, 5) for x in v] for k, v in history.items()},
    }
