"""`edgeperc train lisat`: tiny LISAt trained end to end on generated aerial scenes (CPU, 1 thread)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.lisat_model.conftest import require_lisat_extra

require_lisat_extra()

import torch

from edgeperc.cli import main
from edgeperc.errors import ConfigError
from edgeperc.models.lisat_tokenizer import SEG_ANSWER
from edgeperc.models.lisat_training import (
    LisatTrainConfig,
    build_query_set,
    encode_batch,
    fit_lisat,
    iou_metrics,
    mask_loss_inputs,
    save_trained_lisat,
    seg_answer,
)

STEPS = 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, tokenizer, record, out path): 16 steps on 4 scenes of 256 px, 3 queries each."""
    model, tokenizer, record = fit_lisat(LisatTrainConfig(steps=STEPS, batch=4, scenes=4, queries_per_image=3,
                                                          size=256, threads=1, warmup_steps=2), progress=False)
    out = tmp_path_factory.mktemp("lisat") / "lisat-tiny.safetensors"
    save_trained_lisat(out, model, tokenizer, record)
    return model, tokenizer, record, out


def test_query_set_matches_the_model_inputs(tiny_config):
    data = build_query_set(2, 2, 128, 3, tiny_config.vision.image_size, tiny_config.sam.image_size)
    assert data.images_clip.shape == (2, 3, 128, 128) and data.images_sam.shape == (2, 3, 256, 256)
    assert data.masks.shape[1:] == (128, 128) and len(data.texts) == len(data.masks) == len(data.scene)
    assert (data.masks.reshape(len(data.masks), -1).sum(1) == data.area_px).all()
    again = build_query_set(2, 2, 128, 3, tiny_config.vision.image_size, tiny_config.sam.image_size)
    assert again.texts == data.texts and np.array_equal(again.images_sam, data.images_sam)


def test_labels_cover_the_answer_only(tokenizer):
    ids, mask, labels = encode_batch(tokenizer, ["Segment the tree.", "Find the largest building in the center."], 0)
    assert ids.shape == labels.shape == mask.shape
    answer = labels[0][labels[0] != -100].tolist()
    assert answer == tokenizer.encode(SEG_ANSWER, add_bos=False, add_eos=True) and tokenizer.seg_id in answer
    assert int(mask[0].sum()) < ids.shape[1] and int(mask[1].sum()) == ids.shape[1]  # row 0 right-padded


def test_iou_metrics_split_small_and_large():
    m = iou_metrics(np.array([10, 0, 600]), np.array([20, 50, 800]), np.array([100, 40, 700]))
    assert m["all"]["queries"] == 3 and m["small"]["queries"] == 2 and m["large"]["queries"] == 1
    assert m["small"]["giou"] == pytest.approx(0.25) and m["small"]["ciou"] == pytest.approx(10 / 70)
    assert m["all"]["ciou"] == pytest.approx(610 / 870) and m["large"]["giou"] == pytest.approx(0.75)


def test_training_lowers_the_loss_and_writes_the_record(trained):
    _, _, record, out = trained
    curve = record["loss_curve"]["loss"]
    assert len(curve) == STEPS
    assert np.mean(curve[-3:]) < np.mean(curve[:3])
    assert set(record["final_loss"]) == {"loss", "ce_loss", "mask_bce_loss", "mask_dice_loss"}
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["data"]["held_out_scenes"] and set(written["data"]["train_scenes"]).isdisjoint(
        written["data"]["held_out_scenes"])
    held = written["held_out_metrics"]
    assert held["queries"] == written["data"]["held_out_queries"] > 0
    for kind in ("teacher_forced", "greedy"):
        assert set(held[kind]) == {"all", "small", "large"} and 0 <= held[kind]["all"]["giou"] <= 1
    assert 0 <= held["seg_answer_fraction"] <= 1
    assert written["torch"] == torch.__version__ and written["wall_seconds"] > 0
    assert (out.parent / "config.json").is_file() and (out.parent / "lisat_tokenizer.json").is_file()


def test_checkpoint_loads_back_with_the_same_outputs(trained):
    from edgeperc.models.lisat_checkpoint import load_lisat
    from edgeperc.models.lisat_tokenizer import load_tokenizer

    model, tokenizer, _, out = trained
    loaded, config = load_lisat(out)
    assert config == model.config
    assert load_tokenizer(out.parent).tokens == tokenizer.tokens
    data = build_query_set(1, 2, 256, 99, config.vision.image_size, config.sam.image_size)
    ids, mask, _ = encode_batch(tokenizer, data.texts, config.pad_token_id)
    feeds = (torch.from_numpy(data.images_clip[data.scene]), torch.from_numpy(data.images_sam[data.scene]), ids, mask,
             (256, 256))
    with torch.no_grad():
        a, b = model.eval()(*feeds), loaded(*feeds)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, rtol=0, atol=0)


def test_threads_are_restored(trained):
    before = torch.get_num_threads()
    fit_lisat(LisatTrainConfig(steps=1, batch=1, scenes=2, queries_per_image=1, size=128, threads=1), progress=False)
    assert torch.get_num_threads() == before


def test_cli_trains_lisat(tmp_path):
    out = tmp_path / "lisat-tiny.safetensors"
    code = main(["train", "lisat", "-o", str(out), "--steps", "2", "--batch", "2", "--scenes", "2",
                 "--queries-per-image", "1", "--size", "128", "--threads", "1", "--seed", "5"])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["train"]["steps"] == 2 and record["seeds"]["data"] == 5
    assert record["command"].startswith("edgeperc") and out.is_file()


@pytest.mark.parametrize(("option", "value"), [("--steps", "0"), ("--scenes", "1"), ("--size", "100"),
                                               ("--size", "200")])
def test_bad_options_exit_3_naming_the_option(tmp_path, capsys, option, value):
    code = main(["train", "lisat", "-o", str(tmp_path / "m.safetensors"), option, value])
    assert code == 3
    assert option in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_config_raises_config_error():
    with pytest.raises(ConfigError, match="--queries-per-image"):
        LisatTrainConfig(queries_per_image=0).check()


def test_mask_loss_pooling_keeps_small_targets():
    target = torch.zeros((1, 8, 8), dtype=torch.bool)
    target[0, 1, 1] = True  # one pixel of a 4x4 cell
    logits = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
    same_logits, same_target = mask_loss_inputs(logits, target, 1)
    assert same_logits is logits and same_target.dtype == torch.float32
    pooled_logits, area = mask_loss_inputs(logits, target, 4, "area")
    assert pooled_logits.shape == (1, 1, 2, 2) and area.shape == (1, 2, 2)
    assert float(area[0, 0, 0]) == pytest.approx(1 / 16) and float(area.sum()) == pytest.approx(1 / 16)
    assert float(pooled_logits[0, 0, 0, 0]) == pytest.approx(float(logits[0, 0, :4, :4].mean()))
    _, full = mask_loss_inputs(logits, target, 4, "max")
    assert full[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_generator_answers_carry_the_model_seg_token(tiny_config, tokenizer):
    data = build_query_set(2, 2, 128, 3, tiny_config.vision.image_size, tiny_config.sam.image_size)
    assert data.answers is not None and len(data.answers) == len(data.texts)
    assert all(a.count("<SEG>") == 1 and "[SEG]" not in a for a in data.answers)
    assert seg_answer("It is the red vehicle. [SEG]") == "It is the red vehicle. <SEG>"
    assert data.subset(np.array([1])).answers == [a for a, s in zip(data.answers, data.scene) if s == 1]
    ids, _, labels = encode_batch(tokenizer, ["Segment the tree."], 0, ["It is the tree. <SEG>"])
    assert tokenizer.seg_id in labels[0].tolist() and ids.shape == labels.shape


def test_mask_objective_options_train():
    train = LisatTrainConfig(steps=2, batch=2, scenes=2, queries_per_image=1, size=128, threads=1, warmup_steps=1,
                             mask_loss_stride=4, mask_target_pool="max", pos_weight=10.0, dice_weight=2.0,
                             answers="generator")
    _, _, record = fit_lisat(train, progress=False)
    assert record["train"]["mask_loss_stride"] == 4 and record["train"]["answers"] == "generator"
    assert np.isfinite(record["final_loss"]["loss"]) and "mask_dice_loss" in record["final_loss"]


@pytest.mark.parametrize("bad", [{"mask_loss_stride": 3}, {"mask_target_pool": "mean"}, {"answers": "free"},
                                 {"pos_weight": 0.0}, {"dice_weight": -1.0}])
def test_bad_mask_objective_options(bad):
    with pytest.raises(ConfigError):
        LisatTrainConfig(**bad).check()


def test_scene_batches_hold_the_queries_of_one_scene(tiny_config):
    from edgeperc.models.lisat_training import batch_indices

    data = build_query_set(4, 4, 256, 0, tiny_config.vision.image_size, tiny_config.sam.image_size)
    rng = np.random.default_rng(0)
    for _ in range(10):
        index = batch_indices(data, 3, "scene", rng)
        first = data.scene[index[0]]
        assert len(index) == 3 and len(set(index.tolist())) == 3
        if (data.scene == first).sum() >= 3:  # a scene with enough queries fills the batch alone
            assert (data.scene[index] == first).all()
    mixed = [len(set(data.scene[batch_indices(data, 3, "random", rng)].tolist())) for _ in range(10)]
    assert max(mixed) > 1  # random batches mix scenes


def test_grounding_head_learns_the_target_from_the_seg_prompt():
    """aux_weight > 0: the training-only head's loss falls, the negative term is recorded, and the saved
    state dict holds no new tensor."""
    from edgeperc.models.lisat import LisatModel

    train = LisatTrainConfig(steps=24, batch=4, scenes=3, queries_per_image=4, size=256, threads=1, warmup_steps=2,
                             batching="scene", aux_weight=1.0, negative_weight=1.0)
    model, _, record = fit_lisat(train, progress=False)
    curve = record["loss_curve"]
    assert "aux_loss" in curve and "negative_loss" in curve
    assert np.mean(curve["aux_loss"][-4:]) < 0.9 * np.mean(curve["aux_loss"][:4])
    assert set(model.state_dict()) == set(LisatModel(model.config).state_dict())
    assert record["train"]["batching"] == "scene" and record["train"]["aux_weight"] == 1.0


@pytest.mark.parametrize("bad", [{"batching": "image"}, {"aux_weight": -1.0}, {"negative_weight": -0.5}])
def test_bad_grounding_options(bad):
    with pytest.raises(ConfigError):
        LisatTrainConfig(**bad).check()
