"""The scanner pipeline: UHR frame -> 256x256 copy -> RPN proposals -> 400x400 windows ->
Y-Net masks -> boxes -> decoded symbols. Composes pure stages and two backends, nothing else.

Pre-processing (the low-res copies, native-size crops) runs on the kernels backend chosen once
at start (`edgeperc.kernels.select_backend`: CUDA when a GPU answers, OpenCV otherwise); the
choice is reported with every scan.

Small frames (phone photos) skip the RPN: the whole frame is one window (downscaled to the
crop size when larger) plus native-resolution tiles, so a 300x300 photo is not shrunk and lost.
Proposals larger than a window are segmented in one downscaled window instead of cut in pieces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from edgeperc.kernels import BackendChoice, area_downsample, roi_warp_normalise, select_backend
from edgeperc.runtime.backends.base import Backend
from edgeperc.runtime.pipelines.barcode.boxes import Detection, masks_to_boxes, offset_detections
from edgeperc.runtime.pipelines.barcode.crops import plan_crops, plan_lr_tiles, remap_boxes
from edgeperc.runtime.pipelines.barcode.decode import decode_region
from edgeperc.runtime.pipelines.barcode.nms import merge_duplicates, nms_xyxy
from edgeperc.runtime.pipelines.barcode.proposals import make_anchors, propose_regions
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeperc.preprocess import normalise_images


class ScanConfig(BaseModel):
    """Pipeline knobs; defaults follow the dissertation (256 px copy, 400 px crops)."""

    model_config = ConfigDict(extra="forbid")

    crop_px: int = Field(400, ge=64, le=2048)
    context_px: int = Field(24, ge=0, le=512)
    small_frame_px: int = Field(1600, ge=0, le=8192, description="frames up to this side skip the RPN")
    lr_tile_px: int = Field(10240, ge=256, description="frames longer than this are proposed in overlapping tiles")
    lr_tile_overlap_px: int = Field(1024, ge=0, description="tiles overlap by at least this (longer than a code)")
    rpn_score_threshold: float = Field(0.3, gt=0, lt=1)
    proposal_grow_lr_px: float = Field(4.0, ge=0, le=64, description="proposals widened by this many low-res pixels")
    rpn_nms_iou: float = Field(0.3, gt=0, le=1)
    max_proposals: int = Field(64, ge=1, le=1024)
    mask_threshold: float = Field(0.5, gt=0, lt=1)
    erode_px: int = Field(2, ge=0, le=32)
    margin_px: int = Field(2, ge=0, le=64)
    min_area_px: int = Field(40, ge=1)
    min_score: float = Field(0.5, ge=0, le=1)
    min_undecoded_score: float = Field(0.85, ge=0, le=1, description="undecoded detections need a confident mask")
    min_edge_density: float = Field(0.15, ge=0, le=1, description="undecoded regions with fewer edge pixels are dropped")
    fragment_overlap: float = Field(0.5, ge=0, le=1, description="undecoded boxes this much inside a decoded one are dropped")
    ynet_batch: int = Field(8, ge=1, le=256)
    decode: bool = True

    @model_validator(mode="after")
    def _tiles(self) -> "ScanConfig":
        if 2 * self.lr_tile_overlap_px > self.lr_tile_px:
            raise ValueError(f"lr_tile_overlap_px ({self.lr_tile_overlap_px}) must be at most half of lr_tile_px ({self.lr_tile_px})")
        return self


@dataclass(frozen=True)
class Window:
    """A square region of the frame, segmented after scaling by crop_px / side_px."""

    x0: int
    y0: int
    side_px: int


@dataclass
class FoundBarcode:
    box_xyxy: tuple[int, int, int, int]
    polygon: np.ndarray
    score: float
    format: str | None = None
    text: str | None = None

    def as_json(self) -> dict:
        return {"box": list(self.box_xyxy), "polygon": np.round(self.polygon, 1).tolist(), "score": round(float(self.score), 4),
                "format": self.format, "text": self.text}


@dataclass
class ScanResult:
    width: int
    height: int
    barcodes: list[FoundBarcode]
    latency_ms: dict[str, float]
    proposals_uhr: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    windows: list[Window] = field(default_factory=list)
    window_masks: list[np.ndarray] = field(default_factory=list)
    kernels: dict[str, str] = field(default_factory=dict)


def square_window(box: np.ndarray, frame_hw: tuple[int, int], crop_px: int, context_px: int) -> Window:
    """The smallest square >= crop_px holding ``box`` +- context, slid inside the frame if it fits."""
    height, width = frame_hw
    x0, y0, x1, y1 = box
    side = int(np.ceil(max(crop_px, x1 - x0 + 2 * context_px, y1 - y0 + 2 * context_px)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), 0, max(0, width - side)))
    top = int(np.clip(round(cy - side / 2), 0, max(0, height - side)))
    return Window(left, top, side)


def plan_windows(proposals: np.ndarray, frame_hw: tuple[int, int], config: ScanConfig) -> list[Window]:
    """Proposals that fit a crop share native-resolution crops; larger ones get one scaled window."""
    sides = np.maximum(proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]) + 2 * config.context_px
    small = proposals[sides <= config.crop_px]
    windows = [Window(int(x0), int(y0), config.crop_px)
               for x0, y0, _, _ in plan_crops(small, frame_hw, config.crop_px, config.context_px)] if len(small) else []
    windows += [square_window(box, frame_hw, config.crop_px, config.context_px) for box in proposals[sides > config.crop_px]]
    return windows


def small_frame_windows(frame_hw: tuple[int, int], config: ScanConfig) -> list[Window]:
    """Whole frame as one window, plus native tiles when the frame is larger than one crop."""
    height, width = frame_hw
    windows = [Window(0, 0, max(height, width, config.crop_px))]
    if max(height, width) > config.crop_px:
        whole = np.array([[0, 0, width, height]], np.float64)
        windows += [Window(int(x0), int(y0), config.crop_px) for x0, y0, _, _ in plan_crops(whole, frame_hw, config.crop_px, config.context_px)]
    return windows


def edge_density(frame: np.ndarray, box_xyxy: tuple[int, int, int, int], threshold: float = 40.0) -> float:
    """Share of pixels in the box's central half whose Sobel gradient magnitude exceeds
    ``threshold``: bars and modules are edge-dense inside, solid blobs and smudges are not (the
    centre excludes a blob's own outline)."""
    x0, y0, x1, y1 = box_xyxy
    qx, qy = (x1 - x0) // 4, (y1 - y0) // 4
    x0, y0, x1, y1 = x0 + qx, y0 + qy, x1 - qx, y1 - qy
    region = frame[max(0, y0) : y1, max(0, x0) : x1]
    if region.size < 9:
        return 0.0
    step = max(1, int(np.sqrt(region.size / 250_000)))  # bounded work on huge boxes
    region = region[::step, ::step].astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(region, cv2.CV_32F, 1, 0), cv2.Sobel(region, cv2.CV_32F, 0, 1))
    return float(np.mean(magnitude > threshold * 4 / step))


def drop_fragments(barcodes: list["FoundBarcode"], overlap: float) -> list["FoundBarcode"]:
    """Undecoded boxes lying mostly inside a decoded one are pieces of it cut by a crop edge."""
    decoded = np.array([b.box_xyxy for b in barcodes if b.text], np.float64).reshape(-1, 4)
    kept = []
    for barcode in barcodes:
        if not barcode.text and len(decoded):
            x0, y0, x1, y1 = barcode.box_xyxy
            ix = np.clip(np.minimum(x1, decoded[:, 2]) - np.maximum(x0, decoded[:, 0]), 0, None)
            iy = np.clip(np.minimum(y1, decoded[:, 3]) - np.maximum(y0, decoded[:, 1]), 0, None)
            if (ix * iy).max() >= overlap * max((x1 - x0) * (y1 - y0), 1):
                continue
        kept.append(barcode)
    return kept


def cut_window(frame: np.ndarray, window: Window, crop_px: int) -> np.ndarray:
    """(crop_px, crop_px) uint8: the window (zero-padded past the frame) scaled to the crop size."""
    height, width = frame.shape
    x1, y1 = min(width, window.x0 + window.side_px), min(height, window.y0 + window.side_px)
    region = np.zeros((window.side_px, window.side_px), np.uint8)
    region[: y1 - window.y0, : x1 - window.x0] = frame[window.y0 : y1, window.x0 : x1]
    if window.side_px == crop_px:
        return region
    return cv2.resize(region, (crop_px, crop_px), interpolation=cv2.INTER_AREA)


class BarcodeScanner:
    """Holds the two backends and the config; ``scan(frame)`` runs the whole pipeline."""

    def __init__(self, rpn: Backend, ynet: Backend, config: ScanConfig | None = None,
                 kernels: BackendChoice | None = None) -> None:
        self.rpn, self.ynet = rpn, ynet
        self.config = config or ScanConfig()
        self.kernels = kernels or select_backend()
        rpn_manifest, ynet_manifest = rpn.manifest, ynet.manifest
        self.rpn_norm, self.ynet_norm = rpn_manifest.normalisation, ynet_manifest.normalisation
        self.rpn_input, self.ynet_input = rpn.inputs[0].name, ynet.inputs[0].name
        self.lr_hw = tuple(int(d) for d in rpn.inputs[0].shape[2:4])
        rpn_config = rpn_manifest.family_config
        grid = (self.lr_hw[0] // rpn_config["stride_px"], self.lr_hw[1] // rpn_config["stride_px"])
        self.anchors = make_anchors(grid, rpn_config["stride_px"], tuple(rpn_config["anchor_sizes_px"]), tuple(rpn_config["anchor_ratios"]))
        crop_hw = tuple(int(d) for d in ynet.inputs[0].shape[2:4])
        if crop_hw != (self.config.crop_px, self.config.crop_px):
            self.config = self.config.model_copy(update={"crop_px": crop_hw[0]})

    def propose(self, frame: np.ndarray) -> np.ndarray:
        """(H, W) uint8 -> (K, 4) proposals in frame pixels, best first.

        Up to ``lr_tile_px`` the whole frame is one low-res copy; larger frames give one copy per
        overlapping tile (one RPN batch), and the tiles' proposals are merged by NMS."""
        cfg = self.config
        tiles = plan_lr_tiles(frame.shape, cfg.lr_tile_px, cfg.lr_tile_overlap_px)
        low_res = np.stack([area_downsample(frame[y0:y1, x0:x1], self.lr_hw, backend=self.kernels.name)
                            for x0, y0, x1, y1 in tiles])
        out = self.rpn.infer({self.rpn_input: normalise_images(low_res, self.rpn_norm)})
        boxes, scores = [], []
        for index, (x0, y0, x1, y1) in enumerate(tiles):
            tile_boxes, tile_scores = propose_regions(out["objectness"][index], out["deltas"][index], self.anchors, self.lr_hw,
                                                      cfg.rpn_score_threshold, cfg.rpn_nms_iou, cfg.max_proposals,
                                                      cfg.proposal_grow_lr_px)
            boxes.append(remap_boxes(tile_boxes, self.lr_hw, (int(y1 - y0), int(x1 - x0))) + np.array([x0, y0, x0, y0]))
            scores.append(tile_scores)
        if len(tiles) == 1:
            return boxes[0]
        boxes_all, scores_all = np.concatenate(boxes), np.concatenate(scores)
        return boxes_all[nms_xyxy(boxes_all, scores_all, cfg.rpn_nms_iou)[: cfg.max_proposals * len(tiles)]]

    def segment(self, frame: np.ndarray, windows: list[Window]) -> list[np.ndarray]:
        """One (crop, crop) float32 probability map per window, in batches."""
        maps: list[np.ndarray] = []
        for start in range(0, len(windows), self.config.ynet_batch):
            batch = self.network_input(frame, windows[start : start + self.config.ynet_batch])
            out = self.ynet.infer({self.ynet_input: batch})
            maps.extend(out["mask"][:, 0])
        return maps

    def network_input(self, frame: np.ndarray, windows: list[Window]) -> np.ndarray:
        """(B, 1, crop, crop) float32 Y-Net input. Off the CPU, native-size windows are cut and
        normalised in one kernel (RoI warp with a translation); scaled windows keep INTER_AREA."""
        crop, norm = self.config.crop_px, self.ynet_norm
        if self.kernels.name != "opencv" and all(w.side_px == crop for w in windows) and len(norm.mean) == 1:
            shifts = np.array([[[1, 0, w.x0], [0, 1, w.y0], [0, 0, 1]] for w in windows], np.float32)
            return roi_warp_normalise(frame, shifts, (crop, crop), norm.scale, norm.mean[0], norm.std[0],
                                      max_rois=len(windows), backend=self.kernels.name)
        return normalise_images(np.stack([cut_window(frame, w, crop) for w in windows]), norm)

    def scan(self, frame: np.ndarray) -> ScanResult:
        cfg = self.config
        height, width = frame.shape
        latency: dict[str, float] = {}
        start = time.perf_counter()
        if max(height, width) <= cfg.small_frame_px:
            proposals = np.zeros((0, 4))
            windows = small_frame_windows((height, width), cfg)
        else:
            proposals = self.propose(frame)
            windows = plan_windows(proposals, (height, width), cfg)
        latency["proposals"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        maps = self.segment(frame, windows)
        latency["segmentation"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        detections: list[Detection] = []
        for window, prob in zip(windows, maps):
            found = masks_to_boxes(prob, cfg.mask_threshold, cfg.erode_px, cfg.margin_px, cfg.min_area_px)
            detections += offset_detections(found, window.x0, window.y0, window.side_px / cfg.crop_px)
        detections = [d for d in merge_duplicates(detections) if d.score >= cfg.min_score]
        latency["boxes"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        barcodes = []
        for det in detections:
            x0, y0, x1, y1 = det.box_xyxy
            box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
            found = FoundBarcode(box, det.polygon, det.score)
            if cfg.decode:
                decoded = decode_region(frame, det.polygon)
                if decoded is not None:
                    found.format, found.text = decoded.format, decoded.text
            if found.text or (det.score >= cfg.min_undecoded_score and edge_density(frame, box) >= cfg.min_edge_density):
                barcodes.append(found)
        barcodes = drop_fragments(barcodes, cfg.fragment_overlap)
        latency["decode"] = (time.perf_counter() - start) * 1e3
        return ScanResult(width, height, barcodes, latency, proposals, windows, maps, self.kernels.as_dict())
