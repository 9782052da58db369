"""masks_to_boxes / offset_detections against masks drawn with OpenCV and plain numpy references."""

import dataclasses

import cv2
import numpy as np
import pytest
from edgeperc.runtime.pipelines.barcode.boxes import Detection, masks_to_boxes, offset_detections

from edgeperc.errors import ConfigError, InvalidInputError


def _rect_mask(shape, rects, value=1.0):
    prob = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in rects:
        prob[y0:y1, x0:x1] = value
    return prob


def _n_components(binary):
    return cv2.connectedComponents(binary.astype(np.uint8))[0] - 1


def test_touching_rectangles_split_by_erosion_and_restored_by_margin():
    # Two barcodes 1 px apart, joined by a 2-px-high bridge: one connected blob in the raw mask.
    left, right = (20, 30, 80, 70), (81, 25, 150, 75)
    prob = _rect_mask((120, 180), [left, right], 0.9)
    prob[48:50, 80] = 0.9
    assert _n_components(prob > 0.5) == 1

    assert len(masks_to_boxes(prob, erode_px=0, margin_px=0)) == 1  # without erosion: merged
    dets = masks_to_boxes(prob, erode_px=2, margin_px=2)
    assert len(dets) == 2
    boxes = sorted(d.box_xyxy for d in dets)
    for got, drawn in zip(boxes, [left, right]):
        assert np.abs(np.subtract(got, drawn)).max() <= 1, (got, drawn)
    # The exclusive-end convention: an axis-aligned rectangle comes back exactly.
    assert boxes == [left, right]


def test_separate_rectangles_with_one_pixel_gap():
    rects = [(10, 10, 40, 60), (41, 10, 90, 60)]
    dets = masks_to_boxes(_rect_mask((80, 100), rects, 0.7), erode_px=2, margin_px=2)
    assert sorted(d.box_xyxy for d in dets) == rects


def _match_corners(polygon, reference):
    """Max distance from each reference corner to its nearest polygon corner."""
    dist = np.linalg.norm(polygon[:, None, :] - reference[None, :, :], axis=2)
    return float(dist.min(axis=0).max())


@pytest.mark.parametrize("angle", [0.0, 17.0, 30.0, 45.0, 60.0, -25.0, 89.0])
def test_rotated_rectangle_polygon_and_angle_match_drawn(angle):
    drawn = ((150.0, 120.0), (160.0, 50.0), angle)  # long side 160 at `angle` degrees
    corners = cv2.boxPoints(drawn)
    prob = np.zeros((260, 300), np.float32)
    cv2.fillPoly(prob, [np.round(corners).astype(np.int32)], 0.8)
    dets = masks_to_boxes(prob, erode_px=2, margin_px=2)
    assert len(dets) == 1
    det = dets[0]
    assert det.polygon.shape == (4, 2) and det.polygon.dtype == np.float32
    assert _match_corners(det.polygon, corners) <= 1.5
    expected = ((angle + 90.0) % 180.0) - 90.0  # into (-90, 90]
    diff = (det.angle_deg - expected + 90.0) % 180.0 - 90.0
    assert abs(diff) <= 1.5, (det.angle_deg, expected)
    assert -90.0 < det.angle_deg <= 90.0
    # Corner order: p0→p1 is the long side pointing along angle_deg, p1→p2 the short side.
    p = det.polygon.astype(np.float64)
    long_edge, short_edge = p[1] - p[0], p[2] - p[1]
    assert np.linalg.norm(long_edge) >= np.linalg.norm(short_edge)
    assert np.degrees(np.arctan2(long_edge[1], long_edge[0])) == pytest.approx(det.angle_deg, abs=1e-3)
    assert long_edge[0] * short_edge[1] - long_edge[1] * short_edge[0] > 0  # clockwise on screen (y down)
    # The axis-aligned box is the drawn pixels' bounding box, x1/y1 exclusive.
    ys, xs = np.nonzero(prob > 0.5)
    reference = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert np.abs(np.subtract(det.box_xyxy, reference)).max() <= 1, (det.box_xyxy, reference)


def test_pseudo_score_is_mean_probability_of_the_barcode_pixels():
    prob = _rect_mask((100, 100), [(10, 10, 50, 40)], 0.8)
    det, = masks_to_boxes(prob)
    assert det.score == pytest.approx(0.8, abs=1e-6)
    assert det.area_px == 40 * 30

    # Non-uniform: reference = mean over the connected component of the thresholded mask.
    rng = np.random.default_rng(0)
    prob = np.zeros((100, 120), np.float32)
    prob[20:70, 30:100] = rng.uniform(0.55, 1.0, (50, 70)).astype(np.float32)
    prob[80:95, 5:20] = 0.95  # a second, separate barcode
    dets = masks_to_boxes(prob)
    count, labels = cv2.connectedComponents((prob > 0.5).astype(np.uint8))
    references = sorted(float(prob[labels == k].mean(dtype=np.float64)) for k in range(1, count))
    assert sorted(d.score for d in dets) == pytest.approx(references, abs=1e-6)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


def test_empty_and_below_threshold_masks_give_no_detection():
    assert masks_to_boxes(np.zeros((50, 60), np.float32)) == []
    assert masks_to_boxes(np.full((50, 60), 0.5, np.float32), threshold=0.5) == []


def test_small_components_are_dropped():
    prob = _rect_mask((60, 60), [(5, 5, 10, 10), (20, 20, 50, 50)], 0.9)  # 25 px and 900 px
    dets = masks_to_boxes(prob, min_area_px=30)
    assert [d.box_xyxy for d in dets] == [(20, 20, 50, 50)]
    assert len(masks_to_boxes(prob, min_area_px=0)) == 2


def test_barcode_cut_by_the_image_edge_is_clipped():
    prob = _rect_mask((80, 80), [(0, 10, 30, 40)], 0.9)
    det, = masks_to_boxes(prob)
    assert det.box_xyxy == (0, 10, 30, 40)


@pytest.mark.parametrize("prob, error", [
    (np.full((8, 8), np.nan, np.float32), InvalidInputError),
    (np.zeros((2, 8, 8), np.float32), InvalidInputError),
    (np.zeros((0, 8), np.float32), InvalidInputError),
    (np.full((8, 8), 255, np.uint8), InvalidInputError),  # a 0-255 mask, not probabilities
])
def test_bad_probability_maps_are_refused(prob, error):
    with pytest.raises(error):
        masks_to_boxes(prob)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"threshold": 0.0}, {"erode_px": -1},
                                    {"margin_px": 1.5}, {"min_area_px": -3}])
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        masks_to_boxes(np.zeros((8, 8), np.float32), **kwargs)


def test_detection_is_immutable():
    det, = masks_to_boxes(_rect_mask((40, 40), [(5, 5, 30, 20)], 0.9))
    with pytest.raises(dataclasses.FrozenInstanceError):
        det.score = 1.0
    with pytest.raises(ValueError):
        det.polygon[0, 0] = 3.0


def test_offset_detections_shift_is_exact():
    det, = masks_to_boxes(_rect_mask((60, 60), [(10, 12, 40, 30)], 0.9))
    moved, = offset_detections([det], dx=400, dy=800)
    assert moved.box_xyxy == (410, 812, 440, 830)
    np.testing.assert_allclose(moved.polygon, det.polygon + np.array([400, 800]), atol=1e-4)
    assert (moved.score, moved.angle_deg, moved.area_px) == (det.score, det.angle_deg, det.area_px)


def test_offset_detections_scale_matches_a_full_resolution_mask():
    # A crop segmented at half resolution: its boxes mapped with scale=2 equal the boxes of the
    # same mask at full resolution; polygons differ by the half-pixel between the two grids.
    small = _rect_mask((50, 60), [(5, 7, 25, 30), (30, 10, 55, 20)], 0.9)
    full = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    mapped = offset_detections(masks_to_boxes(small, erode_px=0, margin_px=0), dx=100, dy=50, scale=2.0)
    reference = offset_detections(masks_to_boxes(full, erode_px=0, margin_px=0), dx=100, dy=50)
    assert sorted(d.box_xyxy for d in mapped) == sorted(d.box_xyxy for d in reference)
    by_box = {d.box_xyxy: d for d in reference}
    for det in mapped:
        ref = by_box[det.box_xyxy]
        # Each corner within half a pixel in x and in y (a crop pixel's centre is the centre of
        # its 2×2 block, half a full-resolution pixel in from the block's outer pixel centres).
        dist = np.abs(det.polygon[:, None, :] - ref.polygon[None, :, :]).max(axis=2)
        assert dist.min(axis=0).max() <= 0.5 + 1e-3
        assert det.area_px == ref.area_px


@pytest.mark.parametrize("kwargs", [{"scale": 0.0}, {"scale": -1.0}, {"dx": float("nan")}])
def test_offset_detections_refuses_bad_transforms(kwargs):
    det = Detection((0, 0, 2, 2), np.zeros((4, 2), np.float32), 0.0, 1.0, 4.0)
    args = {"dx": 0.0, "dy": 0.0, **kwargs}
    with pytest.raises(InvalidInputError):
        offset_detections([det], **args)
