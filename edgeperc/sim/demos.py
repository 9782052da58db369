"""Seeded expert demonstrations for imitation learning, saved as one compressed .npz.

Layout (flat over all steps, episodes back to back, like a replay buffer); T = total steps, E = episodes:

| key               | shape          | dtype   | meaning |
|-------------------|----------------|---------|---------|
| images            | (T, H, W, 3)   | uint8   | RGB from the env camera at step t (default ``workspace``) |
| q_rad             | (T, 7)         | float32 | measured joint positions at step t |
| gripper_width_m   | (T,)           | float32 | measured finger opening at step t |
| actions           | (T, 8)         | float32 | [:7] next 10 Hz joint target - q_rad (rad); [7] gripper width cmd (m) |
| q_target_rad      | (T, 7)         | float32 | the absolute joint target (= q_rad + actions[:, :7]) |
| cube_pos          | (T, 2, 3)      | float32 | world (= robot base) position (m) of [cube_red, cube_blue] at step t |
| cube_yaw_rad      | (T, 2)         | float32 | yaw about world z of [cube_red, cube_blue] at step t |
| episode_ends      | (E,)           | int64   | exclusive end index of each episode in the step axis |
| episode_seeds     | (E,)           | int64   | env.reset seed of each episode |
| episode_success   | (E,)           | bool    | env.is_success(task) at the end of each episode |
| meta_json         | ()             | str     | task, control_hz, physics_dt_s, image_hw, camera, renderer, key docs |

``cube_pos`` and ``cube_yaw_rad`` are privileged simulator state: a robot has no such sensor, so a
policy never takes them as input; behaviour cloning uses them as auxiliary targets at training time
only (edgeperc.models.policy_training). Files written before they existed lack both keys; training
then runs without the auxiliary loss.

Actions are deltas from the *measured* state so that q_rad + action reproduces the expert's target
exactly; a policy trained on them outputs targets relative to what it observes.
Failed episodes are kept and flagged: filter on episode_success when training.

``--dart-noise-rad`` (ExpertConfig.dart_noise_rad) perturbs the command sent to the arm in a share
of the episodes while q_target_rad keeps the expert's own target (DART): such demos show how to get
back to the path from states a policy's small errors lead to; ``actions`` is then the expert's
target minus the perturbed measured state, which is what the policy must output there (the command
actually sent is not stored). ``meta_json["expert"]`` records the noise settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeperc.sim.env import CUBES, EnvConfig, PandaTableEnv, Task
from edgeperc.sim.expert import Episode, ExpertConfig, run_expert_episode

ACTION_DIM = 8
PRIVILEGED_KEYS = ("cube_pos", "cube_yaw_rad")  # optional when reading: older files lack them
DEMO_KEYS = (
    "images", "q_rad", "gripper_width_m", "actions", "q_target_rad",
    "episode_ends", "episode_seeds", "episode_success", "meta_json", *PRIVILEGED_KEYS,
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
        "cubes": list(CUBES),
        "cube_pos": "privileged: world position (m) of each cube at step t, for auxiliary training targets only",
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
        cube_pos=np.concatenate([r.cube_pos for r in records]).astype(np.float32),
        cube_yaw_rad=np.concatenate([r.cube_yaw_rad for r in records]).astype(np.float32),
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
    camera: str = "workspace",
    dart_noise_rad: float = 0.0,
    dart_fraction: float = 1.0,
    gif: Path | None = None,
) -> None:
    """python -m edgeperc.sim.demos --task pick --episodes 20 --out demos.npz [--camera workspace]
    [--dart-noise-rad 0.01 --dart-fraction 0.5] [--gif first.gif]"""
    from edgeperc.sim.render import write_gif

    env_config = EnvConfig(image_hw=(image_size, image_size), camera=camera)
    expert_config = ExpertConfig(dart_noise_rad=dart_noise_rad, dart_fraction=dart_fraction)
    summary = generate_demos(out, task, episodes, seed, env_config, expert_config)  # type: ignore[arg-type]
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
