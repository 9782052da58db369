"""`edgeperc policy check STREAM.npz` end to end: accepted streams exit 0, rejected ones exit 9
with libfranka's error names, unreadable files exit 5 naming the problem."""

import json

import numpy as np
from edgeperc.runtime.policy.guard import run_targets
from edgeperc.runtime.policy.limits import load_panda_limits

from edgeperc.cli import main

READY = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def run_json(capsys, *args):
    capsys.readouterr()
    code = main(["policy", "check", *map(str, args), "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return code, lines


def test_guarded_stream_is_accepted(tmp_path, capsys):
    run = run_targets(READY, [READY + 0.3] * 20, load_panda_limits(), then="stop")
    np.savez(tmp_path / "good.npz", q_c=run.q_c, q_start=READY)
    code, [report] = run_json(capsys, tmp_path / "good.npz")
    assert code == 0 and report["violations"] == 0 and report["ticks"] == len(run.q_c)


def test_a_step_is_named_like_libfranka(tmp_path, capsys):
    q = np.repeat(READY[None], 500, 0)
    q[250:, 3] += 0.05
    np.savez(tmp_path / "step.npz", q_c=q, q_start=READY)
    code, [report] = run_json(capsys, tmp_path / "step.npz")
    assert code == 9
    assert set(report["by_name"]) == {"joint_motion_generator_velocity_limits_violation",
                                      "joint_motion_generator_velocity_discontinuity",
                                      "joint_motion_generator_acceleration_discontinuity"}
    assert report["first"][0]["tick"] == 250 and report["first"][0]["joint"] == 4


def test_unreadable_streams_are_input_errors(tmp_path, capsys):
    np.savez(tmp_path / "nokey.npz", q=np.zeros((3, 7)))
    (tmp_path / "text.npz").write_text("not a zip")
    for name in ("nokey.npz", "text.npz", "absent.npz"):
        code, _ = run_json(capsys, tmp_path / name)
        assert code == 5, name
