"""`edgeperc depth` and `edgeperc eval depth` end to end on the shipped depth model."""

import json

import cv2
import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.synth.panoramas import panorama_recipe, render_panorama


@pytest.fixture(scope="module")
def panorama(tmp_path_factory):
    pano = render_panorama(np.random.default_rng(21), panorama_recipe("default", (256, 512)))
    folder = tmp_path_factory.mktemp("panos")
    cv2.imwrite(str(folder / "room.png"), pano.rgb[..., ::-1])
    return folder / "room.png", pano


def run_json(capsys, *args) -> list[dict]:
    capsys.readouterr()
    code = main([*map(str, args), "--json"])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip().startswith("{")]


def test_depth_writes_maps_picture_and_summary(panorama, tmp_path, capsys):
    path, pano = panorama
    code, [record] = run_json(capsys, "depth", path, "--out", tmp_path)
    assert code == 0, record
    files = record["files"]
    depth = np.load(files["depth_npy"])
    sigma = np.load(files["sigma_npy"])
    assert depth.shape == sigma.shape == (256, 512) and (depth > 0).all() and (sigma > 0).all()
    png = cv2.imread(files["depth_png"], cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and np.abs(png.astype(np.int64) - np.round(depth * 1000)).max() <= 1
    picture = cv2.imread(files["picture"])
    assert picture.shape[0] == 3 * 256 and picture.shape[1] == 512
    summary = json.loads(open(files["summary"]).read())
    assert len(summary["sectors"]) == 16 and all(s["nearest_m"] > 0 for s in summary["sectors"])
    # A trained model in the right ballpark: the median depth within a factor 1.5 of the truth's.
    truth = np.median(pano.depth[pano.valid])
    assert truth / 1.5 < summary["depth_m"]["median"] < truth * 1.5


def test_seam_column_is_continuous(panorama, tmp_path, capsys):
    """Circular padding: across +-180 deg the depth steps no more than between ordinary columns."""
    path, _ = panorama
    _, [record] = run_json(capsys, "depth", path, "--out", tmp_path)
    depth = np.load(record["files"]["depth_npy"])
    seam = np.abs(depth[:, 0] - depth[:, -1]).mean()
    inner = np.abs(np.diff(depth, axis=1)).mean(axis=0)
    assert seam <= np.percentile(inner, 95), (seam, np.percentile(inner, 95))


def test_bad_panoramas_are_reported_and_the_batch_goes_on(panorama, tmp_path, capsys):
    path, pano = panorama
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_good.png"), pano.rgb[..., ::-1])
    cv2.imwrite(str(folder / "b_grey.png"), pano.rgb[..., 0])
    cv2.imwrite(str(folder / "c_square.png"), pano.rgb[:, :256, ::-1])
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    code, records = run_json(capsys, "depth", folder, "--out", tmp_path / "out")
    by_name = {r["image"].split("/")[-1]: r for r in records}
    assert code == 0 and "files" in by_name["a_good.png"]
    assert "greyscale" in by_name["b_grey.png"]["error"]
    assert "not equirectangular" in by_name["c_square.png"]["error"]
    assert "d_corrupt.jpg" in by_name["d_corrupt.jpg"]["error"]
    code, [stretched] = run_json(capsys, "depth", folder / "c_square.png", "--resize", "--out", tmp_path / "out2")
    assert code == 0 and "files" in stretched


def test_eval_depth_reports_depth_and_uncertainty_columns(tmp_path, capsys):
    code, [report] = run_json(capsys, "eval", "depth", "--count", "2", "--plots", tmp_path)
    assert code == 0
    for name, row in report["models"].items():
        for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3", "ause_rmse", "aurg_rmse",
                    "ause_abs_rel", "aurg_abs_rel", "nll", "coverage_1sigma", "coverage_2sigma"):
            assert np.isfinite(row[key]), (name, key)
    assert report["reference_hohonet_stanford2d3d"] == {"abs_rel": 0.1014, "delta1": 0.9054}
    assert all(open(p, "rb").read(8).startswith(b"\x89PNG") for p in report["plots"])


def test_profile_depth_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "prof"
    assert main(["profile", "depth", "--iterations", "3", "--frame-size", "512", "--input-count", "2", "--out", str(out)]) == 0
    data = json.loads((out / "profile.json").read_text())
    assert data["stages"] == ["preprocess", "network", "postprocess"]
    assert data["end_to_end_ms"]["count"] == 3 and data["stage_ms"]["network"]["p50_ms"] > 0
    assert "nearest obstacle per input (m)" in data["outputs"]
    for name in data["plots"].values():
        assert (out / name).read_bytes().startswith(b"\x89PNG")


def test_calibrate_depth_folds_the_scale_into_the_head(tmp_path, capsys):
    """The calibrated checkpoint differs from the shipped one only by 2 ln(scale) on the
    log-variance bias; the source file is untouched; its record is in the metadata."""
    import math

    from edgeperc.evaluation.sigma_calibration import CALIBRATION_KEY, LOG_VAR_BIAS
    from edgeperc.models.checkpoints import read_state
    from edgeperc.models.shipped import shipped_model

    source = shipped_model("ynet-depth-w8.safetensors")
    before = source.read_bytes()
    out = tmp_path / "calibrated.safetensors"
    code, [record] = run_json(capsys, "calibrate", "depth", source, "--out", out, "--count", "2", "--seed", "5")
    assert code == 0 and source.read_bytes() == before
    old, _ = read_state(source)
    new, metadata = read_state(out)
    shift = (new[LOG_VAR_BIAS] - old[LOG_VAR_BIAS]).item()
    assert shift == pytest.approx(2 * math.log(record["scale"]), abs=1e-5)
    assert all((new[k] == old[k]).all() for k in old if k != LOG_VAR_BIAS)
    assert json.loads(metadata[CALIBRATION_KEY])["count"] == 2


def test_calibrate_depth_refuses_other_families(capsys):
    from edgeperc.models.shipped import shipped_model

    code, _ = run_json(capsys, "calibrate", "depth", shipped_model("ynet-barcode-w8.safetensors"))
    assert code == 4
