"""Seeded expert demonstrations for imitation learning, saved as one compressed .npz.

Layout (flat over all steps, episodes back to back, like a replay buffer); T = total steps, E = episodes:

| key               | shape          | dtype   | meaning |
|-------------------|----------------|---------|---------|
| images            | (T, H, W, 3)   | uint8   | RGB from the env camera at step t |
| q_rad             | (T, 7)         | float32 | measured joint positions at step t |
| gripper_width_m   | (T,)           | float32 | measured finger opening at step t |
| actions           | (T, 8)         | float32 | [:7] next 10 Hz joint target - q_rad (rad); [7] gripper width cmd (m) |
| q_target_rad      | (T, 7)         | float32 | the absolute joint target (= q_rad + actions[:, :7]) |
| episode_ends      | (E,)           | int64   | exclusive end index of each episode in the step axis |
| episode_seeds     | (E,)           | int64   | env.reset seed of each episode |
| episode_success   | (E,)           | bool    | env.is_success(task) at the end of each episode |
| meta_json         | ()             | str     | task, control_hz, physics_dt_s, image_hw, camera, renderer, key docs |

Actions are deltas from the *measured* state so that q_rad + action reproduces the expert's target
exactly; a policy trained on them outputs targets relative to what it observes.
Failed episodes are kept and flagged: filter on episode_success when training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeperc.sim.env import EnvConfig, PandaTableEnv, Task
from edgeperc.sim.expert import Episode, ExpertConfig, run_expert_episode

ACTION_DIM = 8
DEMO_KEYS = (
    "images", "q_rad", "gripper_width_m", "actions", "q_target_rad",
    "episode_ends", "episode_seeds", "episode_success", "meta_json",
)  # fmt: skip


@dataclass(frozen=True)
class DemoSummary:
    path: Path
    episodes: int
    steps: int
    success_rate: float
    seconds_per_episode: float
    render_backend: str | None


def episode_actions(ep: Episode) -> np.ndarray:
    """(T, 8) float32: joint target minus measured q (7) and gripper width command (1)."""
    return np.concatenate([ep.q_target_rad - ep.q_rad, ep.gripper_cmd_m[:, None]], axis=1).astype(np.float32)


def generate_demos(
    out_path: Path | str,
    task: Task,
    episodes: int,
    seed: int = 0,
    env_config: EnvConfig | None = None,
    expert_config: ExpertConfig | None = None,
    progress: bool = True,
) -> DemoSummary:
    """Run the expert on seeds seed .. seed+episodes-1 and write the .npz described above."""
    from rich.progress import track

    env = PandaTableEnv(env_config)
    records: list[Episode] = []
    start = time.perf_counter()
    seeds = range(seed, seed + episodes)
    iterator = track(seeds, description=f"{task} demos") if progress else seeds
    try:
        for s in iterator:
            records.append(run_expert_episode(env, task, s, expert_config, render=True))
        backend = env.render_backend
    finally:
        env.close()
    elapsed = time.perf_counter() - start
    meta = {
        "task": task,
        "control_hz": env.config.control_hz,
        "physics_dt_s": env.physics_dt_s,
        "image_hw": list(env.config.image_hw),
        "camera": env.config.camera,
        "renderer": backend,
        "actions": "[:7] q_target - q_rad (rad), [7] gripper width command (m)",
        "expert": (expert_config or ExpertConfig()).model_dump(),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out_path,
        images=np.concatenate([r.images for r in records]),
        q_rad=np.concatenate([r.q_rad for r in records]).astype(np.float32),
        gripper_width_m=np.concatenate([r.gripper_width_m for r in records]).astype(np.float32),
        actions=np.concatenate([episode_actions(r) for r in records]),
        q_target_rad=np.concatenate([r.q_target_rad for r in records]).astype(np.float32),
        episode_ends=np.cumsum([len(r.q_rad) for r in records]).astype(np.int64),
        episode_seeds=np.array([r.seed for r in records], dtype=np.int64),
        episode_success=np.array([r.success for r in records], dtype=bool),
        meta_json=np.array(json.dumps(meta)),
    )
    steps = sum(len(r.q_rad) for r in records)
    return DemoSummary(
        path=out_path,
        episodes=episodes,
        steps=steps,
        success_rate=float(np.mean([r.success for r in records])) if records else 0.0,
        seconds_per_episode=elapsed / max(episodes, 1),
        render_backend=meta["renderer"],
    )


def load_demos(path: Path | str) -> dict[str, np.ndarray]:
    """All arrays of a demo file (meta_json decoded into a dict under "meta")."""
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    data["meta"] = json.loads(str(data.pop("meta_json")))
    return data


def episode_slice(episode_ends: np.ndarray, index: int) -> slice:
    """Step-axis slice of episode ``index``."""
    begin = 0 if index == 0 else int(episode_ends[index - 1])
    return slice(begin, int(episode_ends[index]))


def main(
    task: str = "pick",
    episodes: int = 20,
    seed: int = 0,
    out: Path = Path("demos.npz"),
    image_size: int = 96,
    gif: Path | None = None,
) -> None:
    """python -m edgeperc.sim.demos --task pick --episodes 20 --out demos.npz [--gif first.gif]"""
    from edgeperc.sim.render import write_gif

    env_config = EnvConfig(image_hw=(image_size, image_size))
    summary = generate_demos(out, task, episodes, seed, env_config)  # type: ignore[arg-type]
    print(
        f"{summary.episodes} {task} episodes, {summary.steps} steps -> {summary.path}; "
        f"expert success {summary.success_rate:.2f}; {summary.seconds_per_episode:.2f} s/episode; "
        f"renderer {summary.render_backend}"
    )
    if gif is not None:
        data = load_demos(out)
        write_gif(data["images"][episode_slice(data["episode_ends"], 0)], gif, fps=data["meta"]["control_hz"], scale=2)
        print(f"first episode -> {gif}")


if __name__ == "__main__":
    import typer

    typer.run(main)
