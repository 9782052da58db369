"""PandaLimits: the shipped YAML carries Franka's published FER figures; every invalid config is
one ConfigError line naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from edgeperc.runtime.policy import limits as lim
from edgeperc.runtime.policy.limits import (
    DT_S,
    PandaLimits,
    load_panda_limits,
    parse_panda_limits,
)
from pydantic import ValidationError

from edgeperc.errors import ConfigError, EdgepercError

SHIPPED = Path(__file__).resolve().parents[2] / "firmware_configs" / "robots" / "franka-panda.yaml"


def _shipped_dict() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def _parse(**changes) -> PandaLimits:
    data = _shipped_dict()
    data.update(changes)
    return parse_panda_limits(yaml.safe_dump(data), "bad.yaml")


def test_shipped_yaml_is_the_published_fer_table():
    limits = load_panda_limits()
    assert limits == load_panda_limits(SHIPPED) == load_panda_limits(str(SHIPPED))
    # frankarobotics/docs control-parameters-joint-fer.csv (franka-facts.md §1.2)
    assert limits.q_max_rad == (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
    assert limits.q_min_rad == (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
    assert limits.dq_max_rad_s == (2.175,) * 4 + (2.61,) * 3
    assert limits.ddq_max_rad_s2 == (15, 7.5, 10, 12.5, 15, 20, 20)
    assert limits.dddq_max_rad_s3 == (7500, 3750, 5000, 6250, 7500, 10000, 10000)
    assert limits.tcp_offset_m == 0.1034 and limits.gripper_width_max_m == 0.08
    assert isinstance(limits, PandaLimits) and limits.name == "franka-panda"


def test_numpy_views_are_read_only_and_derived_correctly():
    limits = load_panda_limits()
    np.testing.assert_allclose(limits.q_lo, np.array(limits.q_min_rad) + limits.position_margin_rad)
    np.testing.assert_allclose(limits.q_hi, np.array(limits.q_max_rad) - limits.position_margin_rad)
    # caps: safety factor, the 1 mrad/tick step cap, minus libfranka's kLimitEps
    sf = limits.safety_factor
    expected_dq = np.minimum(sf * limits.dq_max, limits.max_tick_step_rad / DT_S) - 1e-3
    np.testing.assert_allclose(limits.dq_cap, expected_dq)
    np.testing.assert_allclose(limits.ddq_cap, sf * limits.ddq_max - 1e-3)
    np.testing.assert_allclose(limits.dddq_cap, sf * limits.dddq_max - 1e-3)
    assert (limits.dq_cap < limits.dq_max).all() and (limits.dddq_cap < limits.dddq_max).all()
    for view in (limits.q_min, limits.q_lo, limits.dq_cap, limits.workspace_lo):
        with pytest.raises(ValueError):
            view[0] = 0.0
    with pytest.raises(ValidationError, match="frozen"):
        limits.safety_factor = 1.0


def test_full_safety_factor_still_stays_strictly_below_control_limits():
    limits = _parse(safety_factor=1.0, max_tick_step_rad=0.00261)
    assert (limits.ddq_cap < limits.ddq_max).all() and (limits.dq_cap < limits.dq_max).all()


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"dq_max_rad_s": [-1.0] + [2.0] * 6}, ["dq_max_rad_s", "joint(s) 1", "0 < value <= [2.175"]),
        ({"ddq_max_rad_s2": [15, 7.5, 10, 12.5, 15, 20, 25]}, ["ddq_max_rad_s2", "joint(s) 7", "published"]),
        ({"dddq_max_rad_s3": [0.0] * 7}, ["dddq_max_rad_s3", "joint(s) 1, 2, 3, 4, 5, 6, 7"]),
        ({"q_min_rad": [-2.8973] * 6}, ["q_min_rad", "must list 7 values", "6 given"]),
        ({"dq_max_rad_s": [2.0] * 8}, ["dq_max_rad_s", "must list 7 values"]),
        ({"q_min_rad": [0.5, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
          "q_max_rad": [0.4, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]}, ["q_min_rad[0] (joint 1)", "must be below q_max_rad[0] 0.4"]),
        ({"q_max_rad": [3.0, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]}, ["q_max_rad[0]", "above the published Panda limit 2.8973"]),
        ({"q_min_rad": [-2.8973, -1.8, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]}, ["q_min_rad[1]", "below the published"]),
        ({"position_margin_rad": 0.4, "q_min_rad": [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -0.3],
          "q_max_rad": [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 0.3]}, ["position_margin_rad", "no range on joint 7", "value < 0.3"]),
        ({"position_margin_rad": 0.0}, ["position_margin_rad", "0.001 <= value"]),
        ({"safety_factor": 1.5}, ["safety_factor", "value <= 1.0", "(got 1.5)"]),
        ({"safety_factor": -0.1}, ["safety_factor"]),
        ({"max_tick_step_rad": 0.01}, ["max_tick_step_rad", "1e-05 <= value <= 0.00261"]),
        ({"max_tick_step_rad": 1e-9}, ["max_tick_step_rad", "1e-05 <= value"]),
        ({"workspace_min_m": [0.9, -0.5, 0.0]}, ["workspace_min_m.x", "must be below workspace_max_m.x 0.8"]),
        ({"workspace_max_m": [0.8, 0.5]}, ["workspace_max_m", "[x, y, z]"]),
        ({"floor_z_m": 1.0}, ["floor_z_m", "below workspace_max_m.z"]),
        ({"gripper_width_min_m": 0.09}, ["gripper_width_min_m", "below gripper_width_max_m"]),
        ({"gripper_width_max_m": 0.1}, ["gripper_width_max_m", "0.08"]),
        ({"gripper_force_max_n": -5}, ["gripper_force_max_n"]),
        ({"floor_z_m": float("nan")}, ["floor_z_m", "finite"]),
        ({"dq_max_rad_s": "fast"}, ["dq_max_rad_s"]),
        ({"top_speed": 3}, ["top_speed", "unknown field", "allowed fields"]),
    ],
)
def test_invalid_configs_name_the_field(changes, needles):
    with pytest.raises(ConfigError) as err:
        _parse(**changes)
    message = str(err.value)
    assert message.startswith("invalid robot limits bad.yaml: ")
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_missing_field_is_named():
    data = _shipped_dict()
    del data["dddq_max_rad_s3"]
    with pytest.raises(ConfigError, match=r"dddq_max_rad_s3: required field is missing"):
        parse_panda_limits(yaml.safe_dump(data), "bad.yaml")


@pytest.mark.parametrize(
    ("text", "match"),
    [("q_min_rad: [1, 2", "YAML syntax error at line"), ("", "the file is empty"), ("- 1\n- 2\n", "mapping")],
)
def test_unreadable_yaml(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_panda_limits(text, "bad.yaml")


def test_missing_file_and_exit_code(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read") as err:
        load_panda_limits(tmp_path / "nope.yaml")
    assert isinstance(err.value, EdgepercError) and err.value.exit_code == 3


def test_copies_are_validated_and_rebuild_their_arrays():
    limits = load_panda_limits()
    wide = limits.model_copy(update={"workspace_min_m": [-1.0, -1.0, -1.0]})
    assert wide.workspace_lo.tolist() == [-1.0, -1.0, -1.0] and limits.workspace_lo[0] == 0.15
    with pytest.raises(ConfigError, match="safety_factor"):
        limits.model_copy(update={"safety_factor": 2.0})


def test_published_constants_match_module_ceilings():
    assert len(lim.PUBLISHED_Q_MAX_RAD) == len(lim.PUBLISHED_DDDQ_MAX_RAD_S3) == 7
    # jerk = 500 x acceleration on every FER joint in the published table
    np.testing.assert_allclose(np.array(lim.PUBLISHED_DDDQ_MAX_RAD_S3), 500 * np.array(lim.PUBLISHED_DDQ_MAX_RAD_S2))
