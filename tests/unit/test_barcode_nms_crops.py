"""IoU / NMS / duplicate merging and crop planning against brute-force and OpenCV references."""

import cv2
import numpy as np
import pytest
from edgeperc.runtime.pipelines.barcode.boxes import Detection
from edgeperc.runtime.pipelines.barcode.crops import extract_crops, plan_crops, plan_lr_tiles, remap_boxes
from edgeperc.runtime.pipelines.barcode.nms import iou_matrix, merge_duplicates, nms_xyxy
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeperc.errors import ConfigError, InvalidInputError


def _iou_scalar(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms_reference(boxes, scores, threshold):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(_iou_scalar(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(i)
    return keep


@st.composite
def _boxes(draw, max_n=25):
    n = draw(st.integers(0, max_n))
    coords = draw(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(0, 30), st.integers(0, 30)),
                           min_size=n, max_size=n))
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in coords], np.float64).reshape(-1, 4)
    # Few distinct scores, so that ties (and the stable order) are exercised.
    scores = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), np.float64) / 5.0
    return boxes, scores


@settings(max_examples=150, deadline=None)
@given(_boxes(), st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_nms_matches_brute_force(data, threshold):
    boxes, scores = data
    keep = nms_xyxy(boxes, scores, threshold)
    assert keep.dtype == np.int64
    assert keep.tolist() == _nms_reference(boxes.tolist(), scores.tolist(), threshold)


@settings(max_examples=80, deadline=None)
@given(_boxes(max_n=8), _boxes(max_n=8))
def test_iou_matrix_matches_brute_force(a, b):
    got = iou_matrix(a[0], b[0])
    assert got.shape == (len(a[0]), len(b[0]))
    reference = np.array([[_iou_scalar(x, y) for y in b[0].tolist()] for x in a[0].tolist()]).reshape(got.shape)
    np.testing.assert_allclose(got, reference, atol=1e-12)


def test_nms_and_iou_refuse_bad_input():
    with pytest.raises(InvalidInputError):
        nms_xyxy(np.array([[0, 0, 1, np.nan]]), np.array([1.0]), 0.5)
    with pytest.raises(InvalidInputError):
        nms_xyxy(np.zeros((2, 4)), np.zeros(3), 0.5)
    with pytest.raises(InvalidInputError):
        iou_matrix(np.zeros((2, 3)), np.zeros((1, 4)))
    with pytest.raises(InvalidInputError):
        iou_matrix(np.array([[5, 0, 1, 1]]), np.zeros((1, 4)))  # x1 < x0
    with pytest.raises(ConfigError):
        nms_xyxy(np.zeros((1, 4)), np.zeros(1), 1.5)
    assert nms_xyxy(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def _det(box, score):
    x0, y0, x1, y1 = box
    polygon = np.array([[x0, y0], [x1 - 1, y0], [x1 - 1, y1 - 1], [x0, y1 - 1]], np.float32)
    return Detection(tuple(box), polygon, 0.0, score, float((x1 - x0) * (y1 - y0)))


def test_merge_duplicates_keeps_best_and_containing_boxes():
    whole = _det((100, 100, 300, 160), 0.80)           # barcode seen whole in one crop
    fragment = _det((100, 100, 160, 160), 0.95)        # the same barcode cut by another crop's edge
    shifted = _det((104, 101, 302, 161), 0.90)         # the same barcode from an overlapping crop
    other = _det((400, 100, 500, 160), 0.70)           # a different barcode
    weaker_copy = _det((401, 100, 500, 161), 0.60)
    merged = merge_duplicates([whole, fragment, shifted, other, weaker_copy])
    # shifted vs whole: IoU > 0.5 → the higher score (shifted) stays; the fragment lies in it.
    assert [d.box_xyxy for d in merged] == [(104, 101, 302, 161), (400, 100, 500, 160)]
    assert merge_duplicates([]) == []
    # The containing box wins even when the fragment scores higher.
    assert [d.box_xyxy for d in merge_duplicates([fragment, whole])] == [(100, 100, 300, 160)]
    # Disjoint neighbours are both kept.
    assert len(merge_duplicates([_det((0, 0, 50, 20), 0.9), _det((50, 0, 100, 20), 0.9)])) == 2


def test_remap_is_a_scale_per_axis():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 256, (20, 2))
    wh = rng.uniform(0, 40, (20, 2))
    boxes_lr = np.concatenate([xy, np.minimum(xy + wh, 256)], axis=1)
    out = remap_boxes(boxes_lr, (256, 256), (3000, 4000))
    np.testing.assert_allclose(out, boxes_lr * np.array([4000 / 256, 3000 / 256] * 2), rtol=1e-12)
    assert out.dtype == np.float64


def test_remap_recovers_a_rectangle_through_cv2_resize():
    # A UHR rectangle seen through cv2.resize(INTER_AREA) at 256×256: the low-res box of the
    # blob maps back onto the UHR rectangle exactly (integer factors 10 and 20).
    uhr = np.zeros((2560, 5120), np.uint8)
    uhr[200:1400, 100:1100] = 255
    lr = cv2.resize(uhr, (256, 256), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(lr > 127)
    box_lr = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    np.testing.assert_array_equal(remap_boxes(box_lr, (256, 256), uhr.shape), [[100, 200, 1100, 1400]])


def test_remap_clips_and_refuses_bad_sizes():
    out = remap_boxes(np.array([[-5.0, 0, 300, 10]]), (256, 256), (512, 1024))
    np.testing.assert_allclose(out, [[0, 0, 1024, 20]])
    with pytest.raises(InvalidInputError):
        remap_boxes(np.zeros((1, 4)), (0, 256), (512, 512))
    with pytest.raises(InvalidInputError):
        remap_boxes(np.zeros((1, 5)), (256, 256), (512, 512))


def _inside(box, window):
    return window[0] <= box[0] and window[1] <= box[1] and box[2] <= window[2] and box[3] <= window[3]


@st.composite
def _proposals(draw):
    height = draw(st.integers(50, 2500))
    width = draw(st.integers(50, 2500))
    n = draw(st.integers(0, 6))
    boxes = []
    for _ in range(n):
        x0 = draw(st.floats(0, width - 1))
        y0 = draw(st.floats(0, height - 1))
        x1 = draw(st.floats(x0, min(width, x0 + draw(st.sampled_from([60, 390, 900, 2500])))))
        y1 = draw(st.floats(y0, min(height, y0 + draw(st.sampled_from([60, 390, 900, 2500])))))
        boxes.append([x0, y0, x1, y1])
    return np.array(boxes, np.float64).reshape(-1, 4), (height, width)


@settings(max_examples=120, deadline=None)
@given(_proposals())
def test_plan_crops_covers_every_proposal(data):
    boxes, (height, width) = data
    crop_px, context_px = 400, 16
    windows = plan_crops(boxes, (height, width), crop_px=crop_px, context_px=context_px)
    overlap_px = max(context_px, crop_px // 4)
    assert windows.dtype == np.int64 and windows.shape[1] == 4
    assert np.all(windows[:, 2] - windows[:, 0] == crop_px) and np.all(windows[:, 3] - windows[:, 1] == crop_px)
    assert np.all(windows[:, :2] >= 0)
    if width >= crop_px:
        assert np.all(windows[:, 2] <= width)
    else:
        assert np.all(windows[:, 0] == 0)
    if height >= crop_px:
        assert np.all(windows[:, 3] <= height)
    else:
        assert np.all(windows[:, 1] == 0)
    assert len({tuple(w) for w in windows.tolist()}) == len(windows)
    for box in boxes:
        pixels = [int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])), int(np.ceil(box[3]))]
        if pixels[2] <= pixels[0] or pixels[3] <= pixels[1]:
            continue
        if pixels[2] - pixels[0] <= crop_px and pixels[3] - pixels[1] <= crop_px:
            assert any(_inside(pixels, w) for w in windows.tolist()), (pixels, windows)
        # Any barcode-sized part of the proposal (up to the overlap) is whole in some window:
        # a barcode cut by one tile is whole in the next.
        step = max(1, (pixels[2] - pixels[0]) // 7), max(1, (pixels[3] - pixels[1]) // 7)
        for sx in range(pixels[0], pixels[2], step[0]):
            for sy in range(pixels[1], pixels[3], step[1]):
                part = [sx, sy, min(sx + overlap_px, pixels[2]), min(sy + overlap_px, pixels[3])]
                assert any(_inside(part, w) for w in windows.tolist()), (part, pixels, windows)


def test_plan_crops_shares_a_window_between_nearby_proposals():
    boxes = np.array([[1000, 1000, 1100, 1040], [1150, 1020, 1250, 1080]], np.float64)
    windows = plan_crops(boxes, (4000, 6000))
    assert len(windows) == 1
    assert all(_inside(b.astype(int).tolist(), windows[0].tolist()) for b in boxes)


def test_plan_crops_small_image_is_one_padded_window():
    windows = plan_crops(np.array([[10, 10, 200, 150]]), (300, 250))
    np.testing.assert_array_equal(windows, [[0, 0, 400, 400]])
    assert plan_crops(np.zeros((0, 4)), (300, 250)).shape == (0, 4)


def test_plan_crops_refuses_bad_settings():
    with pytest.raises(ConfigError):
        plan_crops(np.zeros((1, 4)), (1000, 1000), crop_px=0)
    with pytest.raises(ConfigError):
        plan_crops(np.zeros((1, 4)), (1000, 1000), crop_px=100, context_px=100)
    with pytest.raises(InvalidInputError):
        plan_crops(np.array([[0, 0, np.inf, 5]]), (1000, 1000))


def test_extract_crops_pads_outside_the_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 500), dtype=np.uint8)
    windows = np.array([[0, 0, 400, 400], [-50, 250, 350, 650], [200, 10, 600, 410]])
    crops = extract_crops(image, windows, pad_value=7)
    assert crops.shape == (3, 400, 400) and crops.dtype == np.uint8
    padded = np.pad(image, 1000, constant_values=7)  # reference only; the function never pads the frame
    for crop, (x0, y0, x1, y1) in zip(crops, windows):
        np.testing.assert_array_equal(crop, padded[y0 + 1000:y1 + 1000, x0 + 1000:x1 + 1000])


def test_extract_crops_scales_uint16():
    image = np.full((100, 100), 4095, np.uint16)
    image[:50] = 0
    crops = extract_crops(image, np.array([[0, 0, 100, 100]]), in_max=4095)
    assert crops.dtype == np.uint8
    assert crops[0, :50].max() == 0 and crops[0, 50:].min() == 255
    default = extract_crops(image, np.array([[0, 0, 100, 100]]))
    assert default[0, 99, 0] == round(4095 * 255 / 65535)


@pytest.mark.parametrize("image, windows", [
    (np.zeros((10, 10, 3), np.uint8), np.array([[0, 0, 4, 4]])),
    (np.zeros((10, 10), np.float32), np.array([[0, 0, 4, 4]])),
    (np.zeros((10, 10), np.uint8), np.array([[0, 0, 4, 4], [0, 0, 5, 5]])),
    (np.zeros((10, 10), np.uint8), np.array([[0, 0, 4.0, 4.0]])),
])
def test_extract_crops_refuses_bad_input(image, windows):
    with pytest.raises(InvalidInputError):
        extract_crops(image, windows)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40000), st.integers(1, 40000), st.integers(256, 12000), st.integers(0, 2000))
def test_lr_tiles_cover_the_frame_with_overlap(height, width, tile_px, overlap_px):
    if 2 * overlap_px > tile_px:  # a step under half a tile would make a huge grid: refused
        with pytest.raises(InvalidInputError, match="overlap_px"):
            plan_lr_tiles((height, width), tile_px, overlap_px)
        return
    tiles = plan_lr_tiles((height, width), tile_px, overlap_px)
    covered_x, covered_y = np.zeros(width, bool), np.zeros(height, bool)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert x1 - x0 <= tile_px and y1 - y0 <= tile_px
        covered_x[x0:x1], covered_y[y0:y1] = True, True
    assert covered_x.all() and covered_y.all()
    # Every adjacent pair of tiles along an axis overlaps by at least overlap_px.
    for axis, length in ((0, width), (1, height)):
        starts = sorted({int(t[axis]) for t in tiles})
        ends = sorted({int(t[axis + 2]) for t in tiles})
        if length <= tile_px:
            assert starts == [0] and ends == [length]
        for end, next_start in zip(ends[:-1], starts[1:]):
            assert end - next_start >= overlap_px


def test_lr_tiles_single_copy_up_to_tile_size_and_grid_above():
    assert plan_lr_tiles((8192, 8192), 10240, 1024).tolist() == [[0, 0, 8192, 8192]]
    tiles = plan_lr_tiles((16384, 16384), 10240, 1024)
    assert len(tiles) == 4 and set((tiles[:, 2] - tiles[:, 0]).tolist()) == {8704}
    assert len(plan_lr_tiles((30000, 30000), 10240, 1024)) == 16


def test_scan_config_refuses_an_exploding_tile_grid():
    from pydantic import ValidationError

    from edgeperc.runtime.pipelines.barcode.pipeline import ScanConfig

    with pytest.raises(ValidationError, match="at most half"):
        ScanConfig(lr_tile_px=1024, lr_tile_overlap_px=1000)
    assert ScanConfig(lr_tile_px=1024, lr_tile_overlap_px=512).lr_tile_overlap_px == 512
