"""Y-Net's ``upsample: nearest`` decoder (1x1 conv, then nearest 2x): a numpy reference of the
map, the export's parity, and the INT8 graph keeping every upsampler in int8 on the CPU EP (the
reason the option exists: ONNX Runtime has no int8 ConvTranspose)."""

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="export tests need the [export] extra (torch)")

from edgeperc.export.calibration import load_samples
from edgeperc.export.onnx_export import export_family
from edgeperc.export.quantize import quantize_model

from edgeperc.errors import ConfigError
from edgeperc.manifest import manifest_of
from edgeperc.models.checkpoints import save_checkpoint
from edgeperc.models.registry import get_family
from edgeperc.models.ynet import NearestUp
from edgeperc.onnx_io import load_onnx


def test_nearest_up_is_a_1x1_conv_of_the_repeated_pixels():
    torch.manual_seed(0)
    up = NearestUp(6, 4).eval()
    x = torch.randn(2, 6, 5, 7)
    w, b = up.weight.detach().numpy()[:, :, 0, 0], up.bias.detach().numpy()
    repeated = x.numpy().repeat(2, axis=2).repeat(2, axis=3)  # nearest 2x in numpy
    expected = np.einsum("oc,nchw->nohw", w, repeated) + b[None, :, None, None]
    with torch.no_grad():
        got = up(x).numpy()
    assert got.shape == (2, 4, 10, 14)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unknown_upsampler_is_refused():
    with pytest.raises(ConfigError, match="upsample"):
        get_family("ynet-depth").make_config({"base_width": 4, "upsample": "bilinear"})


@pytest.fixture(scope="module")
def nearest_depth_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nearest")
    family = get_family("ynet-depth")
    config = family.make_config({"base_width": 4, "upsample": "nearest", "input_hw": [128, 256]})
    torch.manual_seed(1)
    checkpoint = save_checkpoint(family.build(config).eval(), folder / "ck.safetensors", family.name,
                                 config.model_dump(mode="json"))
    result = export_family(family.name, folder / "m.onnx", checkpoint=checkpoint)
    assert result.manifest.parity.passed and result.lint.clean, result.lint.lines()
    return result.path


def test_nearest_export_has_resize_and_no_transposed_conv(nearest_depth_onnx):
    model = load_onnx(nearest_depth_onnx)
    ops = [n.op_type for n in model.graph.node]
    assert "ConvTranspose" not in ops
    assert manifest_of(model).family_config["upsample"] == "nearest"


def test_int8_keeps_the_nearest_upsamplers_in_int8(nearest_depth_onnx, tmp_path):
    """After ONNX Runtime's optimisation every convolution of the INT8 graph outside the kept FP32
    heads is a QLinearConv, the upsamplers' included; with ConvTranspose four of them stayed float."""
    import onnxruntime as ort

    from edgeperc.manifest import read_manifest

    model = load_onnx(nearest_depth_onnx)
    manifest = manifest_of(model)
    result = quantize_model(model, "int8", load_samples(None, manifest, 4, 0), load_samples(None, manifest, 2, 1000),
                            latency_runs=1)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(result.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    kept = set(read_manifest(result.model).keep_fp32_nodes)
    float_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in kept]
    assert ops.count("QLinearConv") == len(float_convs), ops
    assert "ConvTranspose" not in ops
