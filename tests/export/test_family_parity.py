"""Every registered family exports at tiny width with PyTorch/ONNX Runtime parity and a clean lint."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need the [export] extra (torch)")

from edgeperc.export.onnx_export import export_family, export_torch_module  # noqa: E402
from edgeperc.runtime.backends import OnnxRuntimeBackend  # noqa: E402

from edgeperc.errors import ConfigError, ModelFileError, ParityError  # noqa: E402
from edgeperc.manifest import read_manifest  # noqa: E402
from edgeperc.models.checkpoints import save_checkpoint  # noqa: E402
from edgeperc.models.registry import family_names, get_family  # noqa: E402
from edgeperc.onnx_io import load_onnx  # noqa: E402


@pytest.mark.parametrize("name", family_names())
def test_family_exports_with_parity(tmp_path, name):
    family = get_family(name)
    config = family.make_config({"base_width": 4})
    torch.manual_seed(3)
    module = family.build(config).eval()
    checkpoint = save_checkpoint(module, tmp_path / "ck.safetensors", name, config.model_dump(mode="json"))
    result = export_family(name, tmp_path / "m.onnx", checkpoint=checkpoint)
    assert result.manifest.parity.passed
    assert max(result.manifest.parity.max_abs_error.values()) < family.atol
    assert result.lint.clean, result.lint.lines()
    model = load_onnx(result.path)
    assert model.opset_import[0].version >= 17
    manifest = read_manifest(model)
    assert manifest.family == name and manifest.family_config["base_width"] == 4
    assert manifest.normalisation == family.normalisation
    assert [s.name for s in manifest.outputs] == list(family.output_names(config))
    assert manifest.inputs[0].shape[0] == "batch"  # dynamic batch declared
    # Independent check: ONNX Runtime at another batch size still matches PyTorch.
    feeds = family.example_inputs(config, 3, seed=42)
    with torch.no_grad():
        expected = module(torch.from_numpy(feeds["image"]))
    got = OnnxRuntimeBackend(result.path).infer(feeds)
    for out_name, tensor in zip(family.output_names(config), expected):
        np.testing.assert_allclose(got[out_name], tensor.numpy(), atol=family.atol, rtol=family.rtol)


def test_parity_catches_a_graph_that_differs(tmp_path):
    """A module whose ONNX export differs from eager PyTorch must fail export and write nothing."""

    class Drifts(torch.nn.Module):
        def forward(self, x):
            # Traced once: the Python-side branch is frozen into the graph with the first input's value.
            return x * 2 if float(x.sum()) > 0 else x * -3

    def inputs(seed):
        sign = 1.0 if seed == 0 else -1.0
        return {"x": np.full((1, 4), sign, np.float32)}

    with pytest.raises(ParityError, match="nothing written"):
        export_torch_module(Drifts(), tmp_path / "d.onnx", ["x"], ["y"], inputs, dynamic_batch=False)
    assert not (tmp_path / "d.onnx").exists()


def test_checkpoint_with_missing_keys_is_named(tmp_path):
    family = get_family("ynet-barcode")
    config = family.make_config({"base_width": 4})
    module = family.build(config)
    state = module.state_dict()
    dropped = sorted(state)[:2]
    for key in dropped:
        del state[key]
    torch.save(state, tmp_path / "ck.pt")
    with pytest.raises(ModelFileError, match=r"2 missing keys: " + dropped[0].replace(".", r"\.")):
        export_family("ynet-barcode", tmp_path / "m.onnx", checkpoint=tmp_path / "ck.pt", config_overrides={"base_width": 4})
    assert not (tmp_path / "m.onnx").exists()


def test_checkpoint_of_other_width_is_a_shape_mismatch(tmp_path):
    family = get_family("ynet-barcode")
    torch.save(family.build(family.make_config({"base_width": 4})).state_dict(), tmp_path / "ck.pt")
    with pytest.raises(ModelFileError, match="shape mismatch"):
        export_family("ynet-barcode", tmp_path / "m.onnx", checkpoint=tmp_path / "ck.pt", config_overrides={"base_width": 6})


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_truncated_checkpoint_is_named(tmp_path, suffix):
    family = get_family("ynet-barcode")
    config = family.make_config({"base_width": 4})
    module = family.build(config)
    path = tmp_path / f"ck{suffix}"
    if suffix == ".pt":
        torch.save(module.state_dict(), path)
    else:
        save_checkpoint(module, path, "ynet-barcode", config.model_dump(mode="json"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="ck" + suffix.replace(".", r"\.")):
        export_family("ynet-barcode", tmp_path / "m.onnx", checkpoint=path)


def test_pickled_code_is_refused(tmp_path):
    """weights_only=True: a checkpoint that would run code on load is refused, not executed."""
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="weights_only"):
        export_family("ynet-barcode", tmp_path / "m.onnx", checkpoint=tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_wrong_family_checkpoint_is_refused(tmp_path):
    family = get_family("ynet-depth")
    config = family.make_config({"base_width": 4})
    path = save_checkpoint(family.build(config), tmp_path / "d.safetensors", "ynet-depth", config.model_dump(mode="json"))
    with pytest.raises(ModelFileError, match="'ynet-depth' checkpoint, not 'ynet-barcode'"):
        export_family("ynet-barcode", tmp_path / "m.onnx", checkpoint=path)


def test_invalid_family_config_names_field():
    with pytest.raises(ConfigError, match="input_hw"):
        get_family("ynet-barcode").make_config({"input_hw": (100, 100)})
    with pytest.raises(ConfigError, match="base_width"):
        get_family("ynet-barcode").make_config({"base_width": 0})


def test_old_opset_refused(tmp_path):
    with pytest.raises(ConfigError, match="opset 13"):
        export_family("ynet-barcode", tmp_path / "m.onnx", config_overrides={"base_width": 4}, opset=13, allow_random_init=True)


def test_half_stored_checkpoint_loads_into_float32_and_keeps_its_metadata(tmp_path):
    from edgeperc.models.checkpoints import STORED_DTYPE_KEY, checkpoint_config, read_state, store_half

    family = get_family("ynet-depth")
    config = family.make_config({"base_width": 4, "input_hw": [128, 256]})
    torch.manual_seed(5)
    module = family.build(config).eval()
    full = save_checkpoint(module, tmp_path / "full.safetensors", family.name, config.model_dump(mode="json"))
    half = store_half(full, tmp_path / "half.safetensors")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    state, metadata = read_state(half)
    assert metadata[STORED_DTYPE_KEY] == "float16" and checkpoint_config(metadata)[0] == "ynet-depth"
    assert {v.dtype for k, v in state.items() if "num_batches" not in k} == {torch.float16}
    result = export_family("ynet-depth", tmp_path / "half.onnx", checkpoint=half)  # loads into float32 parameters
    feeds = family.example_inputs(config, 1, seed=1)
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["image"]))[0].numpy()
    got = OnnxRuntimeBackend(result.path).infer(feeds)["depth"]
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-3)


def test_issue_wording_aliases_name_the_families():
    """`edgeperc train depth` / `edgeperc train policy`, as the issues write them."""
    assert get_family("depth").name == "ynet-depth" and get_family("policy").name == "rpt-policy"
    with pytest.raises(ConfigError, match="unknown model family 'deep'"):
        get_family("deep")
