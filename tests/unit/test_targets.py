"""Device targets: every shipped YAML loads; each invalid file fails with a one-line message
naming the file, the field, the allowed values and the bad value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from edgeperc.errors import ConfigError
from edgeperc.targets import TargetConfig, list_targets, load_target

SHIPPED = ["agx-orin-64gb", "drone-orin-nx", "orin-nano-8gb", "orin-nx-16gb", "x86-scanner-host"]
CONFIG_DIR = Path(__file__).resolve().parents[2] / "firmware_configs"


def test_list_targets_names_every_shipped_yaml():
    assert list_targets() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_target_loads_by_name_and_by_path(name):
    by_name = load_target(name)
    by_path = load_target(CONFIG_DIR / f"{name}.yaml")
    by_str_path = load_target(str(CONFIG_DIR / f"{name}.yaml"))
    assert isinstance(by_name, TargetConfig)
    assert by_name == by_path == by_str_path
    assert by_name.name == name  # the file name is the name users type after --target
    assert by_name.default_precision in by_name.precisions
    assert set(by_name.latency_budgets_ms) == {"barcode", "policy", "depth", "lisat"}
    if by_name.power_modes:
        assert by_name.power_mode() is not None


def test_jetson_facts():
    agx, nx, nano, drone = (load_target(n) for n in ("agx-orin-64gb", "orin-nx-16gb", "orin-nano-8gb", "drone-orin-nx"))
    for target in (agx, nx, nano, drone):
        assert target.backend == "tensorrt"
        assert target.gpu is not None and target.gpu.sm == 87 and target.gpu.compute_capability == "8.7"
        assert target.tensorrt_version.startswith("10.3")
    assert (agx.dla_cores, nx.dla_cores, nano.dla_cores) == (2, 2, 0)
    assert [m.name for m in agx.power_modes] == ["MAXN", "MODE_15W", "MODE_30W", "MODE_50W"]
    assert {m.name for m in nano.power_modes} >= {"7W", "15W", "25W"}
    assert drone.power_mode().budget_w == 10
    assert drone.memory_budget_mib < nx.memory_budget_mib
    assert agx.gpu.multiprocessors != nano.gpu.multiprocessors


def test_x86_host_is_cpu_onnxruntime():
    host = load_target("x86-scanner-host")
    assert host.backend == "onnxruntime" and host.gpu is None
    assert {"fp32", "int8"} <= set(host.precisions)
    assert host.onnxruntime.execution_providers == ["CPUExecutionProvider"]


def _write(tmp_path: Path, data: dict | str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture()
def nx_data() -> dict:
    return yaml.safe_load((CONFIG_DIR / "orin-nx-16gb.yaml").read_text())


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_target(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_valid_copy_loads(tmp_path, nx_data):
    assert load_target(_write(tmp_path, nx_data, "copy.yaml")).name == "orin-nx-16gb"


def test_dla_cores_out_of_range(tmp_path, nx_data):
    nx_data["dla_cores"] = 5
    message = _error(_write(tmp_path, nx_data))
    assert "bad.yaml" in message and "dla_cores" in message
    assert "0 <= value <= 2" in message and "got 5" in message


def test_precision_not_allowed(tmp_path, nx_data):
    nx_data["precisions"] = ["fp16", "bf16"]
    message = _error(_write(tmp_path, nx_data))
    assert "precisions.1" in message and "'bf16'" in message
    assert "'fp32', 'fp16', 'int8', 'int4'" in message


def test_default_precision_outside_precisions(tmp_path, nx_data):
    nx_data["default_precision"] = "int4"
    message = _error(_write(tmp_path, nx_data))
    assert "default_precision" in message and "fp32, fp16, int8" in message and "'int4'" in message


def test_default_power_mode_not_in_modes(tmp_path, nx_data):
    nx_data["default_power_mode"] = 7
    message = _error(_write(tmp_path, nx_data))
    assert "default_power_mode" in message and "0, 1, 2, 3" in message and "got 7" in message


def test_power_mode_budget_out_of_range_names_the_item(tmp_path, nx_data):
    nx_data["power_modes"][1]["budget_w"] = 500
    message = _error(_write(tmp_path, nx_data))
    assert "power_modes.1.budget_w" in message and "0 < value <= 100" in message and "got 500" in message


def test_unknown_field(tmp_path, nx_data):
    nx_data["turbo"] = True
    message = _error(_write(tmp_path, nx_data))
    assert "turbo: unknown field" in message and "dla_cores" in message  # lists the allowed fields


def test_unknown_nested_field(tmp_path, nx_data):
    nx_data["tensorrt"]["fp8"] = True
    message = _error(_write(tmp_path, nx_data))
    assert "tensorrt.fp8: unknown field" in message and "builder_optimization_level" in message


def test_tensorrt_backend_without_gpu(tmp_path, nx_data):
    nx_data["gpu"] = None
    message = _error(_write(tmp_path, nx_data))
    assert "gpu" in message and "tensorrt" in message


def test_unknown_pipeline_budget(tmp_path, nx_data):
    nx_data["latency_budgets_ms"]["polcy"] = 20
    message = _error(_write(tmp_path, nx_data))
    assert "latency_budgets_ms.polcy" in message and "'policy'" in message


def test_several_errors_are_all_reported(tmp_path, nx_data):
    nx_data["dla_cores"] = 5
    nx_data["workspace_mib"] = 1
    message = _error(_write(tmp_path, nx_data))
    assert "dla_cores" in message and "workspace_mib" in message and "; " in message


def test_unquoted_version_is_refused(tmp_path, nx_data):
    nx_data["tensorrt_version"] = 10.3
    message = _error(_write(tmp_path, nx_data))
    assert "tensorrt_version" in message and "quoted" in message


def test_sm_must_match_compute_capability(tmp_path, nx_data):
    nx_data["gpu"]["sm"] = 86
    message = _error(_write(tmp_path, nx_data))
    assert "gpu.sm" in message and "87" in message and "got 86" in message


def test_dla_core_beyond_dla_cores(tmp_path, nx_data):
    nx_data["dla_cores"] = 1
    nx_data["tensorrt"].update(use_dla=True, dla_core=1)
    message = _error(_write(tmp_path, nx_data))
    assert "tensorrt.dla_core" in message and "0..0" in message


def test_bad_yaml_syntax(tmp_path):
    message = _error(_write(tmp_path, "name: x\npower_modes: [1, 2\n"))
    assert "bad.yaml" in message and "YAML syntax error" in message and "line" in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_top_level_must_be_a_mapping(tmp_path, text):
    message = _error(_write(tmp_path, text))
    assert "bad.yaml" in message and "mapping" in message


def test_missing_file(tmp_path):
    message = _error(tmp_path / "absent.yaml")
    assert "absent.yaml" in message and "not found" in message


def test_unknown_target_name_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        load_target("orin-nx-32gb")
    assert "orin-nx-32gb" in str(info.value) and "orin-nx-16gb" in str(info.value)


def test_missing_required_field(tmp_path, nx_data):
    del nx_data["device"]
    assert "device: required field is missing" in _error(_write(tmp_path, nx_data))


def test_target_is_immutable():
    target = load_target("orin-nx-16gb")
    with pytest.raises(Exception):
        target.dla_cores = 0  # type: ignore[misc]
    data = copy.deepcopy(target.model_dump())
    assert TargetConfig.model_validate(data) == target
