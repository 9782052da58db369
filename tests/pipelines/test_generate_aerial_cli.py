"""`edgeperc generate aerial` end to end: the files it promises, readable and consistent with
each other, the same bytes for the same seed, and one clear error line for bad options."""

import json

import cv2
import numpy as np
import pytest

from edgeperc.cli import main
from edgeperc.synth.aerial import aerial_recipe, render_aerial


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("aerial")
    args = ["generate", "aerial", "-o", str(out), "--count", "3", "--seed", "5", "--size", "256", "--queries-per-image", "3"]
    assert main(args) == 0
    return out, args


def test_writes_images_masks_annotations_and_preview(generated):
    out, _ = generated
    records = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    index = json.loads((out / "index.json").read_text())
    assert index["summary"]["queries"] == len(records) >= 6 and index["recipe"] == "default"
    assert index["summary"]["small_targets"] + index["summary"]["large_targets"] == len(records)
    assert {r["image_index"] for r in records} == {0, 1, 2}
    for record in records:
        image = cv2.imread(str(out / record["image"]))
        mask = cv2.imread(str(out / record["mask"]), cv2.IMREAD_UNCHANGED)
        instances = cv2.imread(str(out / record["image"].replace("images/", "instances/")), cv2.IMREAD_UNCHANGED)
        assert image.shape == (256, 256, 3) and mask.shape == (256, 256) and instances.dtype == np.uint16
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask > 0, instances == record["instance_id"])
        ys, xs = np.nonzero(mask)
        assert record["target_area_px"] == len(ys)
        assert record["bbox_xyxy"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert record["is_small"] == (len(ys) < 500) and record["size_class"] == ("small" if len(ys) < 500 else "large")
        assert record["answer"].endswith("[SEG]") and record["phrase"] in record["query"]
        assert record["category"] == record["spec"]["category"]
    first = index["images"][0]
    again = render_aerial(np.random.default_rng(first["seed"]), aerial_recipe("default", (256, 256)))
    assert np.array_equal(again.image[..., ::-1], cv2.imread(str(out / first["image"])))
    preview = cv2.imread(str(out / "preview.png"))
    assert preview is not None and preview.shape[1] == 3 * (256 + 6)


def test_same_seed_same_bytes(generated, tmp_path):
    out, args = generated
    again = tmp_path / "again"
    assert main([*args[:3], str(again), *args[4:]]) == 0
    assert (again / "annotations.jsonl").read_bytes() == (out / "annotations.jsonl").read_bytes()
    for image in sorted((out / "images").iterdir()):
        assert (again / "images" / image.name).read_bytes() == image.read_bytes()


def test_shifted_recipe(tmp_path):
    assert main(["generate", "aerial", "-o", str(tmp_path), "--count", "1", "--size", "256", "--recipe", "shifted",
                 "--preview", "0"]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["recipe"] == "shifted" and index["images"][0]["metadata"]["ground"] == "arid"
    assert not (tmp_path / "preview.png").exists()


@pytest.mark.parametrize("option, message", [
    (["--count", "0"], "--count 0 must be at least 1"),
    (["--size", "500"], "--size 500 must be a multiple of 16"),
    (["--size", "64"], "--size 64 must be a multiple of 16 between 128"),
    (["--recipe", "snowy"], "must be one of default, shifted"),
    (["--queries-per-image", "0"], "--queries-per-image 0 must be between 1"),
    (["--seed", "-1"], "--seed -1 must be >= 0"),
])
def test_bad_options_are_one_line_config_errors(tmp_path, capsys, option, message):
    capsys.readouterr()
    assert main(["generate", "aerial", "-o", str(tmp_path / "x"), *option]) == 3
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "x" / "annotations.jsonl").exists()
