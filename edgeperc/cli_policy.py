"""`edgeperc policy ...`: the Franka policy runtime's verbs (issue 5). `check` replays a 1 kHz
joint command stream against libfranka's Panda limits, offline, before it ever reaches an arm."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

policy_app = typer.Typer(no_args_is_help=True, help="Robot policy runtime near the Franka: stream checks, simulation.")


@policy_app.command("check")
def check(
    stream: Path = typer.Argument(..., help="1 kHz command stream .npz (key q_c (T,7) rad; optional q_start, dq_start, "
                                            "ddq_start, q_measured, dt_s)."),
    limits: Path | None = typer.Option(None, help="Robot limits YAML (default: firmware_configs/robots/franka-panda.yaml)."),
    show: int = typer.Option(10, help="Violations to list (all are counted)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Name every tick that Franka Control would abort on (libfranka's error names); exit 9 if any."""
    from edgeperc.errors import SafetyViolation
    from edgeperc.runtime.policy.limits import load_panda_limits
    from edgeperc.runtime.policy.stream_check import load_stream, summarize_violations

    robot = load_panda_limits(limits)
    command = load_stream(stream, allow_non_finite=True)
    violations = command.check(robot)
    summary = summarize_violations(violations)
    report = {"stream": str(stream), "ticks": int(command.q_c.shape[0]), "duration_s": command.q_c.shape[0] * 1e-3,
              "limits": robot.name, "violations": len(violations), "by_name": summary,
              "first": [{"name": str(v.name), "tick": v.tick, "joint": v.joint + 1, "value": v.value, "limit": v.limit}
                        for v in violations[:show]]}
    if as_json:
        typer.echo(json.dumps(report))
    else:
        console = Console()
        verdict = "[green]accepted[/green]" if not violations else f"[red]{len(violations)} violation(s)[/red]"
        console.print(f"{stream}: {report['ticks']} ticks ({report['duration_s']:.1f} s) against {robot.name}: {verdict}")
        if violations:
            table = Table("count", "first tick", "joint", "value", "limit", "libfranka error")
            for name, count in summary.items():
                first = next(v for v in violations if str(v.name) == name)
                table.add_row(str(count), str(first.tick), str(first.joint + 1), f"{first.value:.4g}", f"{first.limit:.4g}", name)
            console.print(table)
    if violations:
        raise SafetyViolation(f"{stream}: {len(violations)} command(s) Franka Control would abort on "
                              f"({', '.join(f'{k} x{v}' for k, v in summary.items())})")


VIDEO_HW = (256, 320)  # the MJCF's offscreen buffer


def step_captions(result, title: str) -> list[list[str]]:
    """Per control step: the title, then step, time, watchdog mode and the flags raised in it."""
    import numpy as np

    from edgeperc.runtime.policy.loop import FLAG_ORDER

    ticks = result.config.ticks_per_step
    captions = []
    for step, mode in enumerate(result.modes):
        masks = np.bitwise_or.reduce(result.tick_flags[step * ticks : (step + 1) * ticks]) if len(result.tick_flags) else 0
        flags = [f.value for f in result.step_flags[step]]
        flags += [f.value for i, f in enumerate(FLAG_ORDER) if int(masks) & (1 << i) and f.value not in flags]
        line = f"step {step:3d}  t {step / result.config.control_hz:4.1f} s  {mode.value.upper()}"
        text = ", ".join(flags) if flags else "no guard flags"
        cut = text.rfind(", ", 0, 56) if len(text) > 56 else -1
        captions.append([title, line, *( [text[:cut + 1], text[cut + 2:]] if cut > 0 else [text])])
    return captions


class _RecordingPlant:
    """EnvPlant that keeps one frame per control step (the loop observes once per step) for a GIF."""

    def __init__(self, env, camera: str | None) -> None:
        from edgeperc.runtime.policy.plants import EnvPlant

        self.inner, self.env, self.camera, self.frames = EnvPlant(env), env, camera, []

    def observe(self):
        obs = self.inner.observe()
        if self.camera is not None:
            self.frames.append(self.env.render(self.camera, VIDEO_HW))
        return obs

    def apply_command(self, q_cmd_rad, gripper_width_m) -> None:
        self.inner.apply_command(q_cmd_rad, gripper_width_m)


def episode_record(result, success: bool, violations: int) -> dict:
    """One closed-loop episode's figures: outcome, guard/watchdog activity, inference timing."""
    import numpy as np

    inference = np.array([c.inference_ms for c in result.chunks], dtype=np.float64)
    verdicts = result.verdicts()
    return {
        "success": bool(success), "ticks": len(result.q_c), "stream_violations": int(violations),
        "ended_at_rest": bool(result.ended_at_rest), "interventions": int(np.sum(result.intervened)),
        "stops": [str(r) for r in result.stop_reasons()], "late_chunks": int(verdicts.get("late", 0)),
        "refused_chunks": int(sum(v for k, v in verdicts.items() if k not in ("accepted", "late"))),
        "inference_ms": inference.tolist(), "flags": result.flag_counts(),
    }


def summarise_sim(records: list[dict], expert: list[bool] | None) -> dict:
    """Per-run totals over episodes (pure: tested against hand-made records)."""
    import numpy as np

    inference = np.concatenate([np.asarray(r["inference_ms"], np.float64) for r in records]) if records else np.zeros(0)
    stops: dict[str, int] = {}
    for r in records:
        for reason in r["stops"]:
            stops[reason] = stops.get(reason, 0) + 1
    return {
        "episodes": len(records),
        "success_rate": float(np.mean([r["success"] for r in records])) if records else 0.0,
        "expert_success_rate": float(np.mean(expert)) if expert else None,
        "stream_violations": int(sum(r["stream_violations"] for r in records)),
        "ended_at_rest": int(sum(r["ended_at_rest"] for r in records)),
        "interventions": int(sum(r["interventions"] for r in records)),
        "watchdog_stops": stops,
        "deadline_misses": int(sum(r["late_chunks"] for r in records)),
        "refused_chunks": int(sum(r["refused_chunks"] for r in records)),
        "inference_ms": {"p50": float(np.percentile(inference, 50)), "p99": float(np.percentile(inference, 99)),
                         "max": float(inference.max())} if inference.size else None,
    }


@policy_app.command("sim")
def sim(
    task: str = typer.Option("pick", help="pick (lift the red cube) or stack (red cube on the blue one)."),
    episodes: int = typer.Option(20, help="Closed-loop episodes (seeds SEED, SEED+1, ...)."),
    seed: int = typer.Option(1000, help="First episode seed (the shipped weights were trained on demos of seeds below 1000)."),
    model: Path | None = typer.Option(None, help="Policy ONNX (default: the shipped rpt-policy-TASK.onnx)."),
    adversary: str | None = typer.Option(None, help="Replace the policy by an adversary: random, huge, nan-burst, drift, "
                                                       "oscillation, stall, die (shows the guard and the watchdog)."),
    steps: int | None = typer.Option(None, help="Control steps per episode (default 100 for pick, 150 for stack)."),
    config: Path | None = typer.Option(None, help="Runtime config YAML (PolicyRuntimeConfig fields)."),
    limits: Path | None = typer.Option(None, help="Robot limits YAML (default: firmware_configs/robots/franka-panda.yaml)."),
    expert: bool = typer.Option(True, help="Also run the scripted expert on the same seeds and print its rate beside."),
    video: Path | None = typer.Option(None, help="GIF of the first episode (side camera, 320x256, 10 fps, each step captioned with the watchdog mode and guard flags)."),
    streams: Path | None = typer.Option(None, help="Folder for each episode's 1 kHz stream (.npz, for `policy check`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the policy runtime in the MuJoCo Panda table loop: success, interventions, deadline misses, latency."""
    import yaml
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from edgeperc.errors import ConfigError, SafetyViolation
    from edgeperc.models.shipped import shipped_model
    from edgeperc.runtime.policy.adversaries import make_adversary
    from edgeperc.runtime.policy.limits import load_panda_limits
    from edgeperc.runtime.policy.loop import run_policy, validate_runtime_config
    from edgeperc.runtime.policy.policies import OnnxPolicy
    from edgeperc.runtime.policy.stream_check import save_stream

    if task not in ("pick", "stack"):
        raise ConfigError(f"--task '{task}' must be pick or stack")
    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    steps = steps or (100 if task == "pick" else 150)
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    robot = load_panda_limits(limits)
    runtime = validate_runtime_config(yaml.safe_load(config.read_text()) if config else {}, str(config or "defaults"))
    if adversary is None:  # refused before any episode starts: wrong shapes, missing normalisation, corrupt file
        policy = OnnxPolicy(model or shipped_model(f"rpt-policy-{task}.onnx"), runtime.chunk_length, runtime.action_dim,
                            runtime.past_steps)
    from edgeperc.sim.env import PandaTableEnv
    from edgeperc.sim.expert import run_expert_episode

    env = PandaTableEnv()
    records, expert_ok = [], []
    console = Console(stderr=as_json)
    if streams is not None:
        streams.mkdir(parents=True, exist_ok=True)
    with Progress(TextColumn(f"policy sim {task}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        job = bar.add_task("episodes", total=episodes)
        for index in range(episodes):
            episode_seed = seed + index
            if expert:
                expert_ok.append(run_expert_episode(env, task, episode_seed, render=False).success)
            env.reset(episode_seed, render=False)
            plant = _RecordingPlant(env, "side" if video is not None and index == 0 else None)
            actor = make_adversary(adversary, episode_seed) if adversary else policy
            result = run_policy(actor, plant, robot, steps, runtime)
            stream = result.stream()
            violations = len(stream.check(robot))
            records.append(episode_record(result, env.is_success(task), violations))
            if streams is not None:
                save_stream(streams / f"episode_{episode_seed}.npz", stream)
            if plant.frames:
                from edgeperc.sim.render import write_gif

                frames = plant.frames[: len(result.modes)]
                actor_name = f"adversary {adversary}" if adversary else (model.stem if model else f"rpt-policy-{task}")
                title = f"{actor_name} | {task} seed {episode_seed}"
                write_gif(frames, video, fps=10, captions=step_captions(result, title)[: len(frames)])
            bar.advance(job)
    env.close()
    summary = {"task": task, "policy": adversary and f"adversary:{adversary}" or str(model or f"shipped rpt-policy-{task}"),
               "steps_per_episode": steps, "seed": seed, **summarise_sim(records, expert_ok if expert else None),
               "video": str(video) if video else None}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        table = Table("figure", "value")
        for key, value in summary.items():
            table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
        console.print(table)
    if summary["stream_violations"]:
        raise SafetyViolation(f"{summary['stream_violations']} command(s) in the streams would make Franka Control abort")
