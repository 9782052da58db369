"""Behaviour cloning of the rpt-policy family on expert demos (edgeperc.sim.demos layout).

Pure numpy helpers turn a demo file into samples (proprio, past actions, 16-step chunk targets
relative to the current q, padding weights, and cube-pose targets where the demos record cube_pos);
``train_policy`` fits the model with an L1 chunk loss (ACT), masked-modality dropout (RPT) and an
auxiliary head on the camera tokens that regresses both cubes' (x, y) in the base frame and their
yaw. That head is privileged supervision: it exists only in training, is not saved with the
weights and is not part of the exported graph (``image, proprio, past_actions -> actions``).
``rollout`` runs any predict function closed loop in the MuJoCo scene. Importing this module
imports neither torch nor MuJoCo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.models.policy_config import ACTION_DIM, BCConfig, PolicyConfig, Stats
from edgeperc.models.torch_threads import torch_threads

Samples = dict[str, np.ndarray]
Predict = Callable[[dict[str, np.ndarray]], np.ndarray]  # feeds of batch 1 -> (chunk, 8) actions
STD_FLOOR = 1e-3  # a dimension that never moves (e.g. a locked joint) must not blow up the scaling


def _episode_starts(episode_ends: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.asarray(episode_ends[:-1], np.int64)])


def _episode_of(episode_ends: np.ndarray, steps: int) -> np.ndarray:
    """(T,) int64: the episode index of every step."""
    ends = np.asarray(episode_ends, np.int64)
    if ends.size == 0 or ends[-1] != steps or np.any(np.diff(np.concatenate([[0], ends])) <= 0):
        raise InvalidInputError(f"episode_ends {ends.tolist()[:8]}… must increase strictly and end at {steps} steps")
    return np.searchsorted(ends, np.arange(steps), side="right")


def proprio_of(q_rad: np.ndarray, gripper_width_m: np.ndarray) -> np.ndarray:
    """(T, 7) rad + (T,) m -> (T, 8) float32 proprioception."""
    return np.concatenate([q_rad, np.asarray(gripper_width_m)[:, None]], axis=1).astype(np.float32)


def past_action_windows(actions: np.ndarray, gripper_width_m: np.ndarray, episode_ends: np.ndarray, k: int) -> np.ndarray:
    """(T, 8) executed actions -> (T, k, 8) float32: the k actions before each step, oldest first.

    Before an episode's first step the arm was holding still: such slots get zero joint deltas and
    the gripper width measured at the episode's start (what a runtime has at its first call too).
    """
    steps = len(actions)
    episode = _episode_of(episode_ends, steps)
    starts = _episode_starts(episode_ends)[episode]
    t = np.arange(steps)[:, None] + np.arange(-k, 0)[None, :]  # (T, k): t-k .. t-1
    out = actions[np.maximum(t, 0)].astype(np.float32)
    before = t < starts[:, None]
    hold = np.zeros((steps, ACTION_DIM), np.float32)
    hold[:, -1] = np.asarray(gripper_width_m)[starts]
    return np.where(before[..., None], hold[:, None, :], out)


def chunk_targets(
    q_rad: np.ndarray, q_target_rad: np.ndarray, gripper_cmd_m: np.ndarray, episode_ends: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Targets (T, chunk, 8) float32 and padding flags (T, chunk) bool.

    targets[t, h] = [q_target[t+h] - q[t] (7 rad), gripper cmd[t+h] (m)]: every step of the chunk is
    relative to the q measured at t, the only state the policy sees. Past an episode's end the last
    target repeats (hold), flagged as padding so the loss can weigh it down.
    """
    steps = len(q_rad)
    episode = _episode_of(episode_ends, steps)
    last = np.asarray(episode_ends, np.int64)[episode] - 1
    t = np.arange(steps)[:, None] + np.arange(chunk)[None, :]
    padded = t > last[:, None]
    index = np.minimum(t, last[:, None])
    joints = q_target_rad[index] - q_rad[:, None, :]
    targets = np.concatenate([joints, np.asarray(gripper_cmd_m)[index][..., None]], axis=-1).astype(np.float32)
    return targets, padded


CUBE_TARGET_DIM = 4  # per cube: x, y (m, base frame), cos(4 yaw), sin(4 yaw)


def cube_targets(cube_pos: np.ndarray, cube_yaw_rad: np.ndarray) -> np.ndarray:
    """(T, C, 3) positions and (T, C) yaws -> (T, C * 4) float32 auxiliary targets.

    Per cube [x, y, cos 4yaw, sin 4yaw]: a cube looks the same every quarter turn, so its yaw is
    only defined modulo pi/2 and 4 x yaw is the angle that is continuous in what the camera sees.
    """
    pos, yaw = np.asarray(cube_pos, np.float64), np.asarray(cube_yaw_rad, np.float64)
    per_cube = np.stack([pos[..., 0], pos[..., 1], np.cos(4 * yaw), np.sin(4 * yaw)], axis=-1)
    return per_cube.reshape(len(pos), -1).astype(np.float32)


def demo_samples(data: dict[str, np.ndarray], past_steps: int, chunk: int, episodes: np.ndarray | None = None) -> Samples:
    """Training samples from a loaded demo file, restricted to ``episodes`` (indices) if given.

    Keys: images (N, H, W, 3) uint8, proprio (N, 8), past_actions (N, K, 8), chunk (N, chunk, 8),
    padded (N, chunk) bool, episode (N,) int64, first (N,) bool (an episode's first step), and,
    when the demos record cube_pos and cube_yaw_rad, cube (N, cubes * 4) (``cube_targets``).
    """
    ends = np.asarray(data["episode_ends"], np.int64)
    actions = np.asarray(data["actions"], np.float32)
    targets, padded = chunk_targets(data["q_rad"], data["q_target_rad"], actions[:, -1], ends, chunk)
    samples = {
        "images": data["images"],
        "proprio": proprio_of(data["q_rad"], data["gripper_width_m"]),
        "past_actions": past_action_windows(actions, data["gripper_width_m"], ends, past_steps),
        "chunk": targets,
        "padded": padded,
        "episode": _episode_of(ends, len(actions)),
    }
    samples["first"] = np.zeros(len(actions), bool)
    samples["first"][_episode_starts(ends)] = True
    if "cube_pos" in data and "cube_yaw_rad" in data:
        samples["cube"] = cube_targets(data["cube_pos"], data["cube_yaw_rad"])
    if episodes is not None:
        keep = np.isin(samples["episode"], episodes)
        samples = {k: v[keep] for k, v in samples.items()}
    return samples


def _stats(values: np.ndarray) -> Stats:
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    return Stats(mean=tuple(flat.mean(0)), std=tuple(np.maximum(flat.std(0), STD_FLOOR)))


def policy_stats(samples: Samples) -> dict[str, Any]:
    """PolicyConfig overrides: proprio, per-step action and chunk statistics of the samples (padding excluded)."""
    return {
        "proprio_stats": _stats(samples["proprio"]).model_dump(),
        "action_stats": _stats(samples["past_actions"][:, -1]).model_dump(),
        "chunk_stats": _stats(samples["chunk"][~samples["padded"]]).model_dump(),
    }


def example_policy_inputs(config: PolicyConfig, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Plausible, deterministic model feeds without a simulator (export parity, latency).

    image (B, 3, H, W) smooth noise in the manifest's [-1, 1] range; proprio and past actions
    drawn around the config's statistics.
    """
    rng = np.random.default_rng(seed)
    h, w = config.image_hw
    coarse = rng.uniform(-1, 1, (batch, config.in_channels, h // 8, w // 8)).astype(np.float32)
    image = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3) + rng.normal(0, 0.05, (batch, config.in_channels, h, w))

    def around(stats: Stats, shape: tuple[int, ...]) -> np.ndarray:
        return (np.asarray(stats.mean) + np.asarray(stats.std) * rng.standard_normal(shape + (len(stats.mean),))).astype(np.float32)

    return {
        "image": np.clip(image, -1, 1).astype(np.float32),
        "proprio": around(config.proprio_stats, (batch,)),
        "past_actions": around(config.action_stats, (batch, config.past_steps)),
    }


def generate_policy_samples(config: PolicyConfig, count: int, seed: int, task: str = "pick") -> tuple[np.ndarray, Samples]:
    """The family generator: ``count`` samples spread over expert episodes run from ``seed`` on
    (needs MuJoCo). Returns (images (count, H, W, 3) uint8, samples without images)."""
    import tempfile

    from edgeperc.sim.demos import generate_demos, load_demos
    from edgeperc.sim.env import EnvConfig

    episodes = max(1, -(-count // 40))  # a pick episode is ~45-50 steps at 10 Hz
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demos.npz"
        generate_demos(path, task, episodes, seed, EnvConfig(image_hw=config.image_hw, camera=config.camera),
                       progress=False)  # type: ignore[arg-type]
        samples = demo_samples(load_demos(path), config.past_steps, config.chunk_length)
    pick = np.linspace(0, len(samples["proprio"]) - 1, count).round().astype(np.int64)
    images = samples.pop("images")[pick]
    return images, {k: v[pick] for k, v in samples.items()}


def evaluate_chunks(config: PolicyConfig, predicted: np.ndarray, samples: Samples, pad_weight: float = 0.0) -> dict[str, float]:
    """L1 of predicted (N, chunk, 8) vs target chunks: joints (rad), gripper (m), and in normalised
    units (the training loss, padding weighted by ``pad_weight``)."""
    target, padded = samples["chunk"], samples["padded"]
    if predicted.shape != target.shape:
        raise InvalidInputError(f"predicted chunks {predicted.shape} vs targets {target.shape}")
    error = np.abs(predicted.astype(np.float64) - target)
    real = ~padded
    weight = np.where(padded, pad_weight, 1.0)
    normalised = (error / np.asarray(config.chunk_stats.std)).mean(-1)
    return {
        "joint_l1_rad": float(error[..., :7][real].mean()) if real.any() else float("nan"),
        "gripper_l1_m": float(error[..., 7][real].mean()) if real.any() else float("nan"),
        "first_step_joint_l1_rad": float(error[:, 0, :7].mean()),
        "chunk_l1": float((normalised * weight).sum() / max(weight.sum(), 1e-9)),
    }


# ------------------------------------------------------------------------------------ training
def _split_episodes(data: dict[str, np.ndarray], bc: BCConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) episode indices: successful ones only (if asked), the last ~10 % held out."""
    count = len(data["episode_ends"])
    usable = np.arange(count)
    if bc.successful_only:
        usable = usable[np.asarray(data["episode_success"], bool)]
    if len(usable) < 2 and bc.holdout_fraction > 0:
        raise ConfigError(f"need >= 2 usable episodes to hold one out, have {len(usable)} of {count}")
    held = max(1, round(len(usable) * bc.holdout_fraction)) if bc.holdout_fraction > 0 else 0
    return usable[: len(usable) - held], usable[len(usable) - held :]


def _augment(images: np.ndarray, shift_px: int, rng: np.random.Generator, colour_jitter: float = 0.0) -> np.ndarray:
    """(B, H, W, C) uint8: random shift by up to ``shift_px`` (edge-padded crop), DrQ's augmentation,
    then a per-sample brightness and per-channel gain, each uniform in 1 +- ``colour_jitter``."""
    b, h, w, c = images.shape
    if shift_px:
        padded = np.pad(images, ((0, 0), (shift_px, shift_px), (shift_px, shift_px), (0, 0)), mode="edge")
        dy, dx = rng.integers(0, 2 * shift_px + 1, (2, b))
        images = np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    if colour_jitter:
        gain = rng.uniform(1 - colour_jitter, 1 + colour_jitter, (b, 1, 1, 1)) * rng.uniform(
            1 - colour_jitter / 2, 1 + colour_jitter / 2, (b, 1, 1, c))
        images = np.clip(images * gain, 0, 255).astype(np.uint8)
    return images


def _feeds(family: Any, samples: Samples, index: np.ndarray, images: np.ndarray | None = None) -> dict[str, Any]:
    import torch

    from edgeperc.preprocess import normalise_images

    pixels = samples["images"][index] if images is None else images
    return {
        "image": torch.from_numpy(normalise_images(pixels, family.normalisation)),
        "proprio": torch.from_numpy(samples["proprio"][index]),
        "past_actions": torch.from_numpy(samples["past_actions"][index]),
    }


def chunk_loss(model: Any, predicted: Any, target: Any, padded: Any, pad_weight: float) -> Any:
    """Per-dimension L1 in normalised units (|error| / chunk std), padding weighted by pad_weight."""
    import torch

    error = ((predicted - target).abs() / model.chunk_std).mean(-1)  # (B, chunk)
    weight = torch.where(padded, torch.full_like(error, pad_weight), torch.ones_like(error))
    return (error * weight).sum() / weight.sum().clamp_min(1e-9)


def predict_samples(model: Any, family: Any, samples: Samples, batch: int = 128) -> np.ndarray:
    """(N, chunk, 8) predictions of an eval-mode model over all samples."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(samples["proprio"]), batch):
            index = np.arange(start, min(start + batch, len(samples["proprio"])))
            out.append(model(**_feeds(family, samples, index))[0].numpy())
    return np.concatenate(out) if out else np.zeros((0,) + samples["chunk"].shape[1:], np.float32)


def train_policy(
    out: str | Path,
    demos: str | Path | None = None,
    bc: BCConfig | None = None,
    config_overrides: dict[str, Any] | None = None,
    episodes: int = 50,
    task: str = "pick",
    eval_episodes: int = 0,
    command: str | None = None,
    progress: bool = True,
    init: str | Path | None = None,
) -> dict[str, Any]:
    """Behaviour cloning; writes ``out`` (.safetensors) and ``out``.json (the training record).

    ``init``: start from this checkpoint (fine-tuning): its weights and its whole config, the
    normalisation statistics included, are kept; ``config_overrides`` are then not allowed.

    Without ``demos`` the expert generates ``episodes`` demos of ``task`` (seeds 0..episodes-1);
    with them, the task is the one their metadata names.
    ``eval_episodes`` > 0 also runs the trained policy closed loop on unseen seeds.
    """
    from edgeperc.models.checkpoints import save_checkpoint
    from edgeperc.models.registry import get_family

    bc = bc or BCConfig()
    family = get_family("rpt-policy")
    probe = family.make_config(config_overrides)  # sizes only: the statistics come from the demos
    data, demos_label = _load_or_generate(demos, episodes, task, probe)
    task = data.get("meta", {}).get("task", task)
    train_eps, held_eps = _split_episodes(data, bc)
    train = demo_samples(data, probe.past_steps, probe.chunk_length, train_eps)
    held = demo_samples(data, probe.past_steps, probe.chunk_length, held_eps) if len(held_eps) else None
    if len(train["proprio"]) == 0:
        raise ConfigError("no training samples: every episode failed or was held out")
    meta = data.get("meta", {})
    from_demos = {k: meta[k] for k in ("camera",) if k in meta}  # the view the images come from
    start_model = None
    if init is not None:
        from edgeperc.models.policy import load_policy

        if config_overrides:
            raise ConfigError("--init keeps the checkpoint's config; drop --config/--width")
        start_model, config = load_policy(init)
        if from_demos.get("camera", config.camera) != config.camera:
            raise ConfigError(f"--init {init} was trained on camera {config.camera!r}; the demos come from {from_demos['camera']!r}")
    else:
        config = family.make_config({**policy_stats(train), **from_demos, **(config_overrides or {})})
    if tuple(train["images"].shape[1:3]) != tuple(config.image_hw):
        raise ConfigError(f"demo images are {train['images'].shape[1:3]}, the config wants image_hw {config.image_hw}")

    record: dict[str, Any] = {"family": family.name, "command": command, "demos": demos_label,
                              "demos_meta": {k: meta.get(k) for k in ("task", "camera", "image_hw", "renderer")},
                              "train_episodes": [int(e) for e in train_eps],
                              "held_out_episodes": [int(e) for e in held_eps]}
    if init is not None:
        record["init"] = str(init)
    with torch_threads(bc.threads):
        model, fitted = _fit(family, config, bc, train, held, progress, start_model)
        record.update(fitted)
        if eval_episodes > 0:
            seeds = [int(s) for s in np.max(data["episode_seeds"], initial=0) + 1 + np.arange(eval_episodes)]
            results = [rollout(torch_predict(model, family), task, s, config) for s in seeds]
            record["closed_loop"] = {"task": task, "seeds": seeds, "success": [r["success"] for r in results],
                                     "steps": [r["steps"] for r in results],
                                     "success_rate": float(np.mean([r["success"] for r in results]))}
    out = Path(out)
    save_checkpoint(model, out, family.name, config.model_dump(mode="json"), {"edgeperc.training": json.dumps(record)})
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _cube_head(config: PolicyConfig, outputs: int) -> Any:
    """Training-only auxiliary head: all camera tokens (B, T, d) -> (B, outputs) cube-pose targets."""
    from torch import nn

    flat = config.image_tokens * config.d_model
    return nn.Sequential(nn.Flatten(1), nn.LayerNorm(flat), nn.Linear(flat, 256), nn.GELU(), nn.Linear(256, outputs))


def _cube_metrics(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Held-out auxiliary error per cube: mean (x, y) distance (m) and yaw error (rad, modulo a quarter turn)."""
    out: dict[str, float] = {}
    for c in range(target.shape[1] // CUBE_TARGET_DIM):
        p, t = (a[:, c * CUBE_TARGET_DIM : (c + 1) * CUBE_TARGET_DIM].astype(np.float64) for a in (predicted, target))
        out[f"cube{c}_xy_error_m"] = float(np.linalg.norm(p[:, :2] - t[:, :2], axis=1).mean())
        turn = np.arctan2(p[:, 3], p[:, 2]) - np.arctan2(t[:, 3], t[:, 2])
        out[f"cube{c}_yaw_error_rad"] = float(np.abs(np.angle(np.exp(1j * turn))).mean() / 4)
    return out


def _fit(family: Any, config: PolicyConfig, bc: BCConfig, train: Samples, held: Samples | None,
         progress: bool, start_model: Any = None) -> tuple[Any, dict[str, Any]]:
    """The optimisation loop and held-out L1: (eval-mode model, the record's training fields)."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    torch.manual_seed(bc.seed)
    rng = np.random.default_rng(bc.seed + 1)
    model = family.build(config) if start_model is None else start_model
    aux = bc.aux_cube_weight > 0 and "cube" in train
    parameters = list(model.parameters())
    if aux:
        head = _cube_head(config, train["cube"].shape[1])
        parameters += list(head.parameters())
        cube_mean = train["cube"].mean(0)
        cube_std = np.maximum(train["cube"].std(0), STD_FLOOR)
        cube = torch.from_numpy((train["cube"] - cube_mean) / cube_std)
    optimiser = torch.optim.Adam(parameters, lr=bc.lr, weight_decay=bc.weight_decay)
    warmup = max(1, min(bc.warmup_steps, bc.steps // 4))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup)
                                                 * 0.5 * (1 + np.cos(np.pi * min(1.0, s / bc.steps))))
    drop = np.array([bc.drop_image, bc.drop_proprio, bc.drop_past_actions])
    chunk = torch.from_numpy(train["chunk"])
    padded = torch.from_numpy(train["padded"])
    n = len(train["proprio"])
    losses: list[float] = []
    aux_losses: list[float] = []
    start = time.perf_counter()
    model.train()
    columns = (TextColumn("train rpt-policy"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f} aux {task.fields[aux]:.3f}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task("train", total=bc.steps, loss=float("nan"), aux=float("nan"))
        for _ in range(bc.steps):
            index = rng.choice(n, size=min(bc.batch, n), replace=False)
            feeds = _feeds(family, train, index, _augment(train["images"][index], bc.shift_px, rng, bc.colour_jitter))
            keep = rng.random((len(index), 3)) >= drop
            keep[keep.sum(1) == 0, 0] = True  # never mask everything: keep the camera then
            outputs = model.actions_and_camera_tokens(**feeds, keep=torch.from_numpy(keep))
            loss = chunk_loss(model, outputs[0], chunk[index], padded[index], bc.pad_weight)
            losses.append(loss.item())
            if aux:
                aux_loss = (head(outputs[1]) - cube[index]).abs().mean()
                aux_losses.append(aux_loss.item())
                loss = loss + bc.aux_cube_weight * aux_loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update(job, advance=1, loss=float(np.mean(losses[-20:])),
                       aux=float(np.mean(aux_losses[-20:])) if aux_losses else float("nan"))
    seconds = time.perf_counter() - start
    model.eval()
    fields: dict[str, Any] = {"held_out_metrics": {}}
    if held is not None:
        predicted = predict_samples(model, family, held)
        fields["held_out_metrics"] = evaluate_chunks(config, predicted, held, bc.pad_weight)
        # Does the image matter? At an episode's first frame only the cubes' poses set the chunk, so a
        # model that ignores the camera does no better there than the mean first-frame chunk.
        first, first_train = held["first"], train["first"]
        if first.any() and first_train.any():
            blind = np.broadcast_to(train["chunk"][first_train].mean(0), predicted[first].shape)
            fields["held_out_first_frame"] = {
                "episodes": int(first.sum()),
                "joint_l1_rad": float(np.abs(predicted[first, :, :7] - held["chunk"][first, :, :7]).mean()),
                "mean_chunk_joint_l1_rad": float(np.abs(blind[..., :7] - held["chunk"][first, :, :7]).mean()),
            }
        if aux and "cube" in held:
            head.eval()
            cube_pred = []
            with torch.no_grad():
                for begin in range(0, len(held["proprio"]), 128):
                    index = np.arange(begin, min(begin + 128, len(held["proprio"])))
                    _, tokens = model.actions_and_camera_tokens(**_feeds(family, held, index))
                    cube_pred.append(head(tokens).numpy() * cube_std + cube_mean)
            fields["held_out_aux"] = _cube_metrics(np.concatenate(cube_pred), held["cube"])
    return model, {
        "config": config.model_dump(mode="json"),
        "bc": bc.model_dump(mode="json"),
        "train_samples": int(n),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "aux_cube_head": bool(aux),
        "first_loss": float(np.mean(losses[:20])),
        "final_loss": float(np.mean(losses[-20:])),
        "final_aux_loss": float(np.mean(aux_losses[-20:])) if aux_losses else None,
        "seconds_per_step": seconds / bc.steps,
        **fields,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _load_or_generate(demos: str | Path | None, episodes: int, task: str, config: PolicyConfig) -> tuple[dict[str, np.ndarray], str]:
    from edgeperc.sim.demos import DEMO_KEYS, PRIVILEGED_KEYS, load_demos

    if demos is None:
        import tempfile

        from edgeperc.sim.demos import generate_demos
        from edgeperc.sim.env import EnvConfig

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "demos.npz"
            generate_demos(path, task, episodes, 0, EnvConfig(image_hw=config.image_hw, camera=config.camera))  # type: ignore[arg-type]
            return load_demos(path), f"generated: {task}, {episodes} episodes, seeds 0..{episodes - 1}"
    path = Path(demos)
    if not path.is_file():
        raise ConfigError(f"--demos {path}: no such file")
    try:
        data = load_demos(path)
    except Exception as exc:  # numpy raises several types for a bad archive
        raise ConfigError(f"--demos {path} is not a readable demo .npz ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in DEMO_KEYS if k != "meta_json" and k not in PRIVILEGED_KEYS and k not in data]
    if missing:
        raise ConfigError(f"--demos {path} lacks {', '.join(missing)} (see edgeperc.sim.demos)")
    return data, str(path)


# ----------------------------------------------------------------------------------- closed loop
def torch_predict(model: Any, family: Any) -> Predict:
    """A Predict over an eval-mode PyTorch model (the ONNX Runtime backend's infer fits too)."""
    import torch

    def predict(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return model(**{k: torch.from_numpy(v) for k, v in feeds.items()})[0][0].numpy()

    return predict


def rollout(
    predict: Predict,
    task: str,
    seed: int,
    config: PolicyConfig,
    execute_steps: int = 8,
    max_steps: int = 150,
    env: Any = None,
) -> dict[str, Any]:
    """Run one episode: every ``execute_steps`` control steps, predict a chunk from the current
    observation and send its first ``execute_steps`` targets (q_now + delta, width) to the env.

    Returns {"success", "steps", "seconds_per_predict"}; the env (built if not given) is closed only
    if this call built it.
    """
    from edgeperc.models.registry import get_family
    from edgeperc.preprocess import normalise_images
    from edgeperc.sim.env import EnvConfig, PandaTableEnv

    family = get_family("rpt-policy")
    own = env is None
    env = env or PandaTableEnv(EnvConfig(image_hw=config.image_hw, camera=config.camera))
    try:
        obs = env.reset(seed)
        past = np.zeros((config.past_steps, ACTION_DIM), np.float32)
        past[:, -1] = obs.gripper_width_m
        predict_s, calls, step, success = 0.0, 0, 0, False
        while step < max_steps and not success:
            feeds = {
                "image": normalise_images(obs.image[None], family.normalisation),
                "proprio": proprio_of(obs.q_rad[None], np.array([obs.gripper_width_m])),
                "past_actions": past[None].copy(),
            }
            begin = time.perf_counter()
            chunk = predict(feeds)
            predict_s, calls = predict_s + time.perf_counter() - begin, calls + 1
            q_base = obs.q_rad.copy()
            for h in range(min(execute_steps, len(chunk))):
                q_target = q_base + chunk[h, :7]
                width = float(np.clip(chunk[h, 7], 0.0, 0.08))
                action = np.concatenate([q_target - obs.q_rad, [width]]).astype(np.float32)
                obs = env.step(q_target, width)
                past = np.concatenate([past[1:], action[None]])
                step += 1
                success = env.is_success(task)  # type: ignore[arg-type]
                if success or step >= max_steps:
                    break
        return {"success": bool(success), "steps": step, "seconds_per_predict": predict_s / max(calls, 1)}
    finally:
        if own:
            env.close()
