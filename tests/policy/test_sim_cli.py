"""`edgeperc policy sim` end to end in the MuJoCo loop (adversaries need no trained weights), the
episode summary as a pure function, and models refused before the first episode."""

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

pytestmark = pytest.mark.skipif(not HAVE_MUJOCO, reason=SKIP_REASON)

from edgeperc.runtime.policy import adversaries as adv
from edgeperc.runtime.policy.guard import Flag
from edgeperc.runtime.policy.limits import load_panda_limits
from edgeperc.runtime.policy.loop import run_policy
from edgeperc.runtime.policy.plants import KinematicPlant

import edgeperc.sim.gl  # noqa: F401  (before anything imports mujoco: it picks the headless GL platform)
from edgeperc.cli import main
from edgeperc.cli_policy import summarise_sim

from .test_loop import _policy_onnx


def run_json(capsys, *args):
    capsys.readouterr()
    code = main(["policy", "sim", *map(str, args), "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return code, lines


@pytest.mark.parametrize("name", ["huge", "nan-burst", "die"])
def test_adversaries_in_mujoco_end_at_rest_with_clean_streams(name, tmp_path, capsys):
    code, [summary] = run_json(capsys, "--adversary", name, "--episodes", "1", "--steps", "60", "--no-expert",
                               "--streams", tmp_path, "--video", tmp_path / "ep.gif")
    assert code == 0, summary
    assert summary["stream_violations"] == 0 and summary["ended_at_rest"] == 1 and summary["success_rate"] == 0.0
    expected = {"huge": "interventions", "nan-burst": "chunk_late", "die": "worker_dead"}[name]
    assert expected in summary["watchdog_stops"], summary["watchdog_stops"]
    with Image.open(tmp_path / "ep.gif") as gif:  # one captioned 320x256 frame per control step
        assert gif.size == (320, 256) and gif.n_frames >= 2
        gif.seek(gif.n_frames // 2)
        band = np.asarray(gif.convert("RGB"))[:12]
        assert (band.mean(axis=2) < 40).mean() > 0.5  # the dark caption band
    [stream] = tmp_path.glob("episode_*.npz")
    capsys.readouterr()
    assert main(["policy", "check", str(stream)]) == 0  # the saved stream replays clean


def test_a_model_of_the_wrong_shape_is_refused_before_any_episode(tmp_path, capsys):
    onnx.save(_policy_onnx(out_dims=(1, 16, 7)), tmp_path / "seven.onnx")
    code, _ = run_json(capsys, "--model", tmp_path / "seven.onnx", "--episodes", "1", "--no-expert")
    assert code == 4
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "seven.onnx").read_bytes()[:100])
    code, _ = run_json(capsys, "--model", tmp_path / "cut.onnx", "--episodes", "1", "--no-expert")
    assert code == 4


def test_bad_options_are_config_errors(tmp_path, capsys):
    assert run_json(capsys, "--task", "juggle")[0] == 3
    assert run_json(capsys, "--adversary", "nice")[0] == 3
    (tmp_path / "rt.yaml").write_text("control_hz: 7\n")
    assert run_json(capsys, "--adversary", "huge", "--config", tmp_path / "rt.yaml")[0] == 3


def test_summary_totals_match_hand_made_records():
    records = [
        {"success": True, "stream_violations": 0, "ended_at_rest": True, "interventions": 2, "stops": ["end_of_run"],
         "late_chunks": 1, "refused_chunks": 0, "inference_ms": [1.0, 3.0]},
        {"success": False, "stream_violations": 0, "ended_at_rest": True, "interventions": 5,
         "stops": ["interventions", "end_of_run"], "late_chunks": 0, "refused_chunks": 2, "inference_ms": [2.0]},
    ]
    s = summarise_sim(records, [True, True])
    assert s["success_rate"] == 0.5 and s["expert_success_rate"] == 1.0 and s["interventions"] == 7
    assert s["watchdog_stops"] == {"end_of_run": 2, "interventions": 1}
    assert s["deadline_misses"] == 1 and s["refused_chunks"] == 2
    assert s["inference_ms"]["p50"] == pytest.approx(np.percentile([1.0, 3.0, 2.0], 50))


def test_a_width_just_past_the_hand_is_clamped_but_does_not_trip_the_watchdog():
    class WideOpen(adv.SinePolicy):
        def infer(self, obs):
            out = super().infer(obs)
            out[:, 7] = 0.0801  # a regressed "fully open"
            return out

    limits = load_panda_limits()
    result = run_policy(WideOpen(), KinematicPlant(adv.READY), limits, 40, {"sim_latency_s": 0.05})
    assert result.flag_counts().get(Flag.GRIPPER_WIDTH_CLAMPED.value, 0) > 0
    assert not result.intervened.any()
    assert [str(r) for r in result.stop_reasons()] == ["end_of_run"]
