"""Depth pipeline pieces: sector summary vs a loop reference, input checks, the wrap-around
padding of the panorama model."""

import cv2
import numpy as np
import pytest

from edgeperc.errors import ConfigError, InvalidInputError
from edgeperc.runtime.imageio import read_rgb
from edgeperc.runtime.pipelines.depth.pipeline import DepthConfig, check_panorama
from edgeperc.runtime.pipelines.depth.sectors import pixel_angles, sector_summary


def test_sector_summary_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 9, (32, 64)).astype(np.float32)
    sigma = rng.uniform(0.1, 1, depth.shape).astype(np.float32)
    depth[15, 40] = 0.5  # the nearest obstacle, inside the band and in sector 10 of 16
    records = sector_summary(depth, sigma, sectors=16, band_deg=(-30, 30), quantile=0.0)
    lon, lat = pixel_angles(depth.shape)
    assert len(records) == 16
    for k, record in enumerate(records):
        lo, hi = -180 + 22.5 * k, -180 + 22.5 * (k + 1)
        cells = [(depth[r, c], sigma[r, c]) for r in range(32) for c in range(64) if -30 <= lat[r] <= 30 and lo <= lon[c] < hi]
        nearest = min(cells)
        assert record["nearest_m"] == pytest.approx(nearest[0], abs=1e-3)
        assert record["sigma_m"] == pytest.approx(nearest[1], abs=1e-3)
    assert records[10]["nearest_m"] == pytest.approx(0.5) and records[10]["at_deg"][0] == pytest.approx(lon[40], abs=0.01)


def test_sector_summary_refuses_bad_settings():
    depth = np.ones((16, 32), np.float32)
    with pytest.raises(ConfigError, match="sectors"):
        sector_summary(depth, depth, sectors=0)
    with pytest.raises(ConfigError, match="band_deg"):
        sector_summary(depth, depth, band_deg=(10, -10))
    with pytest.raises(InvalidInputError, match="one"):
        sector_summary(depth, depth[:, :4])


def test_panorama_checks():
    with pytest.raises(InvalidInputError, match="not equirectangular"):
        check_panorama(np.zeros((100, 150, 3), np.uint8), DepthConfig())
    check_panorama(np.zeros((100, 150, 3), np.uint8), DepthConfig(resize_any_aspect=True))
    with pytest.raises(InvalidInputError, match="RGB"):
        check_panorama(np.zeros((100, 200), np.uint8), DepthConfig())


def test_grey_and_corrupt_panoramas_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.zeros((64, 128), np.uint8))
    with pytest.raises(InvalidInputError, match="greyscale"):
        read_rgb(tmp_path / "grey.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InvalidInputError, match="bad.jpg"):
        read_rgb(tmp_path / "bad.jpg")
    colour = np.dstack([np.full((64, 128), v, np.uint16) * 257 for v in (100, 200, 250)])
    cv2.imwrite(str(tmp_path / "c16.png"), colour)
    rgb = read_rgb(tmp_path / "c16.png")
    assert rgb.dtype == np.uint8 and tuple(rgb[0, 0]) == (250, 200, 100)  # BGR on disk -> RGB, 16 -> 8 bit


def test_wrapped_ynet_turns_with_the_panorama():
    """Circular padding: rotating the panorama about its vertical axis rotates the output (no seam)."""
    torch = pytest.importorskip("torch", reason="the model needs PyTorch ([export] extra)")
    from edgeperc.models.ynet import YNet
    from edgeperc.models.ynet_config import YNetConfig

    torch.manual_seed(0)
    config = dict(in_channels=3, input_hw=(128, 256), base_width=4, heads=["depth", "log_var"])
    wrapped, plain = YNet(YNetConfig(**config, wrap_longitude=True)).eval(), YNet(YNetConfig(**config)).eval()
    plain.load_state_dict(wrapped.state_dict())  # same parameters, same keys
    x = torch.randn(1, 3, 128, 256)
    with torch.no_grad():
        for model, tolerance in ((wrapped, 1e-5), (plain, None)):
            turned = model(torch.roll(x, 16, dims=-1))[0]
            error = (torch.roll(model(x)[0], 16, dims=-1) - turned).abs().max().item()
            assert error < tolerance if tolerance else error > 1e-3
