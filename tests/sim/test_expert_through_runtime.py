"""The runtime executes a feasible motion as it is: the scripted expert's joint targets, replayed as
chunks through the control loop (guard, limiter, watchdog) into the MuJoCo Panda, still pick the
cube, with no intervention and a stream Franka Control would accept."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import HAVE_MUJOCO, SKIP_REASON

if not HAVE_MUJOCO:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from edgeperc.runtime.policy.limits import load_panda_limits
from edgeperc.runtime.policy.loop import run_policy
from edgeperc.runtime.policy.plants import EnvPlant
from edgeperc.runtime.policy.watchdog import Reason

from edgeperc.sim.expert import run_expert_episode

START_STEPS = 2  # the loop starts running on step 2: the first chunk (observation 0) arrives at step 1


class ExpertReplay:
    """The expert's absolute targets on its own schedule (shifted by the loop's start), as deltas
    from each observation: a policy that knows the answer."""

    def __init__(self, q_target: np.ndarray, width: np.ndarray) -> None:
        self.q, self.w = q_target, width

    def infer(self, obs):
        rows = np.clip(obs.step - START_STEPS + np.arange(16), 0, len(self.q) - 1)
        return np.concatenate([self.q[rows] - obs.q_rad, self.w[rows, None]], axis=1)


@pytest.mark.parametrize("seed", [1000, 1007])
def test_expert_targets_through_the_runtime_pick_the_cube_untouched(env, seed):
    limits = load_panda_limits(None)
    expert = run_expert_episode(env, "pick", seed, render=False)
    assert expert.success
    env.reset(seed, render=False)
    result = run_policy(ExpertReplay(expert.q_target_rad, expert.gripper_cmd_m), EnvPlant(env, render=False), limits,
                        len(expert.q_rad) + 5)
    assert env.is_success("pick")
    assert not result.intervened.any() and result.stop_reasons() == [Reason.END_OF_RUN]
    assert result.stream().check(limits) == []
