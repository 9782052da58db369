"""`edgeperc policy ...`: the Franka policy runtime's verbs (issue 5). `check` replays a 1 kHz
joint command stream against libfranka's Panda limits, offline, before it ever reaches an arm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

policy_app = typer.Typer(no_args_is_help=True, help="Robot policy runtime near the Franka: stream checks, simulation.")


@policy_app.command("check")
def check(
    stream: Path = typer.Argument(..., help="1 kHz command stream .npz (key q_c (T,7) rad; optional q_start, dq_start, "
                                            "ddq_start, q_measured, dt_s)."),
    limits: Optional[Path] = typer.Option(None, help="Robot limits YAML (default: firmware_configs/robots/franka-panda.yaml)."),
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
