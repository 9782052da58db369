"""The modified Region Proposal Network (dissertation ch. 3, after Faster R-CNN's RPN): a small
fully-convolutional backbone on the 256x256 low-resolution copy, with a dilated context layer,
predicting per anchor an objectness probability and (dx, dy, dw, dh) box deltas.

Outputs: ``objectness`` (B, A, H/8, W/8) float32 in [0, 1]; ``deltas`` (B, 4A, H/8, W/8).
Anchor generation, delta decoding and NMS are numpy (runtime/pipelines/barcode/proposals.py).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeperc.models.rpn_config import BarcodeRPNConfig


def _block(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class BarcodeRPN(nn.Module):
    def __init__(self, config: BarcodeRPNConfig) -> None:
        super().__init__()
        self.config = config
        w = config.base_width
        self.backbone = nn.Sequential(
            _block(config.in_channels, w), _block(w, w, stride=2),
            _block(w, 2 * w), _block(2 * w, 2 * w, stride=2),
            _block(2 * w, 4 * w), _block(4 * w, 4 * w, stride=2),
            _block(4 * w, 4 * w, dilation=2), _block(4 * w, 4 * w, dilation=4),
        )
        anchors = config.anchors_per_cell
        self.objectness = nn.Conv2d(4 * w, anchors, 1)
        self.deltas = nn.Conv2d(4 * w, 4 * anchors, 1)
        nn.init.constant_(self.objectness.bias, -4.0)  # rare positives: start near p = 0.02
        nn.init.normal_(self.deltas.weight, std=0.001)
        nn.init.zeros_(self.deltas.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(image)
        return torch.sigmoid(self.objectness(features)), self.deltas(features)
