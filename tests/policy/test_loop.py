"""The loop's edges: configs and policies refused before any motion, the ONNX Runtime policy, the
recorded stream as check_stream's .npz, and a short wall-clock run."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from edgeperc.runtime.policy import adversaries as adv
from edgeperc.runtime.policy.loop import (
    ControlLoop,
    PolicyRuntimeConfig,
    run_policy,
    validate_runtime_config,
)
from edgeperc.runtime.policy.plants import EnvPlant, KinematicPlant
from edgeperc.runtime.policy.policies import OnnxPolicy
from edgeperc.runtime.policy.stream_check import load_stream, save_stream
from edgeperc.runtime.policy.watchdog import Mode, Reason
from onnx import TensorProto, helper

from edgeperc.errors import ConfigError, InvalidInputError, ModelFileError
from edgeperc.manifest import Normalisation, derive_manifest, write_manifest

from .support import READY, assert_at_rest, assert_clean, shipped_limits

LIMITS = shipped_limits()


# --- configs ------------------------------------------------------------------------------------


def test_defaults():
    cfg = PolicyRuntimeConfig()
    assert (cfg.control_hz, cfg.chunk_length, cfg.action_dim, cfg.ticks_per_step) == (10.0, 16, 8, 100)
    assert cfg.timing == "sim" and cfg.interpolation == "linear"


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"control_hz": 7}, ["control_hz", "must divide"]),
        ({"control_hz": 0}, ["control_hz"]),
        ({"action_dim": 7}, ["action_dim", "must be 8"]),
        ({"chunk_length": 4}, ["watchdog.chunk_deadline_s", "allowed: 0.2 <= chunk_deadline_s + (replan_every_steps - 1) x period <= 0.3"]),
        ({"watchdog": {"chunk_deadline_s": 0.1}}, ["watchdog.chunk_deadline_s"]),
        ({"watchdog": {"max_interventions": 20}}, ["max_interventions"]),
        ({"ensemble_tau_steps": -1}, ["ensemble_tau_steps"]),
        ({"interpolation": "cubic"}, ["interpolation"]),
        ({"timing": "fast"}, ["timing"]),
        ({"sim_latency_s": float("nan")}, ["sim_latency_s"]),
        ({"ensemble": 0.01}, ["ensemble", "unknown field"]),
    ],
)
def test_bad_configs_are_one_clear_config_error(data, names):
    with pytest.raises(ConfigError) as info:
        validate_runtime_config(data, "runtime.yaml")
    message = str(info.value)
    assert "runtime.yaml" in message and "\n" not in message
    for name in names:
        assert name in message


def test_bad_config_is_refused_before_the_plant_moves():
    plant = KinematicPlant(READY)
    with pytest.raises(ConfigError):
        run_policy(adv.SinePolicy(), plant, LIMITS, 10, {"control_hz": 3})
    assert plant.ticks == 0


@pytest.mark.parametrize("shape", [(16, 7), (8, 8), (1, 16, 8), (16,)])
def test_wrong_chunk_shape_is_refused_before_the_loop_starts(shape):
    plant = KinematicPlant(READY)
    with pytest.raises(ConfigError, match=r"\(chunk_length, action_dim\) = \(16, 8\)"):
        run_policy(adv.ShapePolicy(shape), plant, LIMITS, 10)
    assert plant.ticks == 0


def test_a_policy_failing_its_warm_up_is_refused():
    plant = KinematicPlant(READY)
    with pytest.raises(ConfigError, match="warm-up"):
        run_policy(adv.DyingPolicy(die_call=0), plant, LIMITS, 10)
    assert plant.ticks == 0


def test_an_unusable_first_observation_is_refused():
    plant = KinematicPlant(READY)
    plant.q_rad = np.full(7, np.nan)
    with pytest.raises(InvalidInputError, match="first observation"):
        run_policy(adv.SinePolicy(), plant, LIMITS, 10)
    assert plant.ticks == 0


# --- ONNX Runtime policy --------------------------------------------------------------------------


def _policy_onnx(
    out_dims=(1, 16, 8), declared=None, past_steps=2, normalisation=True, hw=(96, 96)
) -> onnx.ModelProto:
    """actions = expand(proprio * 0 + [0 x 7, 0.04]): hold still, half-open hand. ``out_dims`` is
    what it computes, ``declared`` what its output claims (None: same). With ``declared``, the
    target shape is computed from the data (0 * sum(proprio) + out_dims), so no shape inference
    can know it and only running the model tells."""
    width = out_dims[2]
    bias = np.zeros((1, width), np.float32)
    bias[0, -1] = 0.04
    nodes = [
        helper.make_node("Slice", ["proprio", "zero", "width", "one"], ["sliced"]),
        helper.make_node("Mul", ["sliced", "zero_f"], ["zeros"]),
        helper.make_node("Add", ["zeros", "bias"], ["row"]),
        helper.make_node("Unsqueeze", ["row", "one"], ["row3"]),
        helper.make_node("Expand", ["row3", "shape" if declared is None else "data_shape"], ["actions"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("width", TensorProto.INT64, [1], [width]),
        helper.make_tensor("zero_f", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("bias", TensorProto.FLOAT, [1, width], bias.ravel().tolist()),
        helper.make_tensor("shape", TensorProto.INT64, [3], list(out_dims)),
    ]
    if declared is not None:
        nodes[-1:-1] = [
            helper.make_node("ReduceSum", ["proprio"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "zero_f"], ["nothing"]),
            helper.make_node("Cast", ["nothing"], ["nothing_i"], to=TensorProto.INT64),
            helper.make_node("Add", ["shape", "nothing_i"], ["data_shape"]),
        ]
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, *hw]),
        helper.make_tensor_value_info("proprio", TensorProto.FLOAT, [1, 8]),
        helper.make_tensor_value_info("past_actions", TensorProto.FLOAT, [1, past_steps, 8]),
    ]
    output = helper.make_tensor_value_info("actions", TensorProto.FLOAT, list(declared or out_dims))
    graph = helper.make_graph(nodes, "tiny_policy", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    manifest = derive_manifest(model)
    if normalisation:
        manifest = manifest.model_copy(
            update={"normalisation": Normalisation(scale=1 / 255, mean=[0.5] * 3, std=[0.5] * 3, color="rgb"), "derived": False}
        )
    return write_manifest(model, manifest)


def test_onnx_policy_drives_the_loop():
    policy = OnnxPolicy(_policy_onnx(), chunk_length=16, action_dim=8, past_steps=2)
    assert policy.image_hw == (96, 96)
    plant = KinematicPlant(READY, gripper_width_m=0.04, image_hw=(96, 96))
    result = run_policy(policy, plant, LIMITS, 20, {"sim_latency_s": 0.02})
    assert_clean(result.q_c, LIMITS, READY)
    assert_at_rest(result.q_c)
    assert set(result.verdicts()) == {"accepted"}
    assert [t.reason for t in result.transitions if t.after is Mode.RUNNING] == [Reason.STARTED]
    np.testing.assert_array_equal(result.q_c[-1], READY)  # zero deltas: held exactly
    assert result.chunks[0].inference_ms > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"out_dims": (1, 16, 7)}, "action_dim=8"),  # declared wrong
        ({"out_dims": (1, 8, 8)}, "chunk_length=16"),
        ({"out_dims": (1, 12, 8), "declared": ("batch", "chunk", "dim")}, "probe output shape"),  # only running tells
        ({"past_steps": 4}, "past_actions"),
        ({"normalisation": False}, "normalisation"),
    ],
)
def test_onnx_policy_that_does_not_fit_is_refused(kwargs, match):
    with pytest.raises(ModelFileError, match=match):
        OnnxPolicy(_policy_onnx(**kwargs), chunk_length=16, action_dim=8, past_steps=2)


def test_onnx_policy_refuses_a_wrong_image_at_warm_up():
    policy = OnnxPolicy(_policy_onnx(), chunk_length=16, action_dim=8, past_steps=2)
    plant = KinematicPlant(READY, image_hw=(64, 64))
    with pytest.raises(InvalidInputError, match="image"):
        run_policy(policy, plant, LIMITS, 5)
    assert plant.ticks == 0


def test_onnx_policy_refuses_other_inputs():
    model = _policy_onnx()
    model.graph.input[0].name = "camera"
    model.graph.node[0].input[0] = "proprio"  # keep the graph valid; 'camera' is simply unused
    with pytest.raises(ModelFileError, match="takes inputs image, proprio, past_actions"):
        OnnxPolicy(model, chunk_length=16, action_dim=8, past_steps=2)


# --- recording, plants, wall clock ------------------------------------------------------------------


def test_the_recorded_stream_round_trips_through_save_stream(tmp_path):
    result = run_policy(adv.SinePolicy(), KinematicPlant(READY), LIMITS, 20, {"sim_latency_s": 0.05})
    path = save_stream(tmp_path / "run.npz", result.stream())
    stream = load_stream(path)
    np.testing.assert_array_equal(stream.q_c, result.q_c)
    np.testing.assert_array_equal(stream.q_start, READY)
    assert stream.check(LIMITS) == []
    assert result.q_measured.shape == (len(result.modes), 7)
    assert result.targets.shape == (len(result.modes), 8) and result.intervened.shape == (len(result.modes),)


def test_env_plant_adapts_an_env_with_observe_render():
    class Env:
        def __init__(self):
            self.q, self.t, self.calls = READY.copy(), 0.0, []

        def observe(self, render=True):
            from types import SimpleNamespace

            self.calls.append(render)
            return SimpleNamespace(q_rad=self.q, gripper_width_m=0.05, image=None, time_s=self.t)

        def apply_command(self, q, width):
            self.q, self.t = np.array(q), self.t + 0.001

    env = Env()
    plant = EnvPlant(env, render=False)
    obs = plant.observe()
    assert obs.gripper_width_m == 0.05 and env.calls == [False]
    plant.apply_command(READY + 0.001, 0.04)
    assert plant.observe().time_s == pytest.approx(0.001)


def test_wall_clock_run_records_tick_lateness():
    result = run_policy(adv.SinePolicy(), KinematicPlant(READY), LIMITS, 3, {"timing": "wall"})
    timing = result.timing
    assert timing is not None and timing.lateness_s.shape == (len(result.q_c),)
    assert timing.step_work_s.shape == (len(result.modes),)
    assert (timing.lateness_s >= 0).all() and 0 <= timing.misses <= len(result.q_c)
    assert_clean(result.q_c, LIMITS, READY)
    assert result.ended_at_rest


def test_control_loop_is_reusable_object():
    loop = ControlLoop(adv.SinePolicy(), KinematicPlant(READY), LIMITS, PolicyRuntimeConfig(sim_latency_s=0.05))
    result = loop.run(5)
    assert result.steps_requested == 5 and result.ended_at_rest
    with pytest.raises(InvalidInputError):
        loop.run(-1)
