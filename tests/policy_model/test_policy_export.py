"""rpt-policy through the foundation's export path: opset 17, parity with PyTorch, dynamic batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need the [export] extra (torch)")

from edgeperc.export.onnx_export import export_family
from edgeperc.export.parity import compare_outputs
from edgeperc.runtime.backends import OnnxRuntimeBackend

from edgeperc.manifest import read_manifest
from edgeperc.models.checkpoints import save_checkpoint
from edgeperc.models.registry import get_family
from edgeperc.onnx_io import load_onnx
from tests.policy_model.conftest import TINY

FAMILY = get_family("rpt-policy")
STATS = {"proprio_stats": {"mean": [0.1, -0.7, 0.0, -2.3, 0.0, 1.6, 0.8, 0.04], "std": [0.2] * 7 + [0.03]},
         "chunk_stats": {"mean": [0.01] * 7 + [0.04], "std": [0.15] * 7 + [0.04]}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy_export")
    config = FAMILY.make_config({**TINY, **STATS})
    torch.manual_seed(1)
    module = FAMILY.build(config).eval()
    torch.nn.init.normal_(module.head.weight, std=0.3)
    checkpoint = save_checkpoint(module, folder / "ck.safetensors", FAMILY.name, config.model_dump(mode="json"))
    return module, config, export_family(FAMILY.name, folder / "policy.onnx", checkpoint=checkpoint)


def test_export_passes_parity_and_lint(exported):
    _, config, result = exported
    assert result.manifest.parity.passed, result.notes
    assert result.lint.clean, result.lint.lines()
    model = load_onnx(result.path)
    assert model.opset_import[0].version >= 17
    manifest = read_manifest(model)
    assert manifest.family == "rpt-policy" and manifest.family_config["chunk_stats"] == config.model_dump(mode="json")["chunk_stats"]
    assert [(s.name, s.shape) for s in manifest.inputs] == [
        ("image", ["batch", 3, 96, 96]), ("proprio", ["batch", 8]), ("past_actions", ["batch", 2, 8])]
    assert [(s.name, s.shape) for s in manifest.outputs] == [("actions", ["batch", 16, 8])]
    assert manifest.normalisation == FAMILY.normalisation


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_pytorch_in_physical_units(exported, batch):
    module, config, result = exported
    feeds = FAMILY.example_inputs(config, batch, seed=42)
    with torch.no_grad():
        (expected,) = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    got = OnnxRuntimeBackend(result.path).infer(feeds)
    abs_err, _ = compare_outputs({"actions": expected.numpy()}, got)
    assert abs_err["actions"] < FAMILY.atol
    assert np.ptp(got["actions"]) > 0.1  # not a constant graph: parity means something


def test_onnx_output_depends_on_every_input(exported):
    _, config, result = exported
    backend = OnnxRuntimeBackend(result.path)
    feeds = FAMILY.example_inputs(config, 1, seed=3)
    base = backend.infer(feeds)["actions"]
    for name in feeds:
        changed = dict(feeds, **{name: feeds[name] + 0.5})
        assert not np.allclose(backend.infer(changed)["actions"], base), name
