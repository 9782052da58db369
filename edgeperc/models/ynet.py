"""Y-Net (dissertation ch. 3 and App. B): a regular-convolution branch and a dilated branch with
pyramid pooling, merged residually at every scale, decoded by transposed convolutions (or 1x1 conv + nearest 2x) with skips.

Shapes: input (B, C_in, H, W) float32 with H, W divisible by 16 (400x400 crops -> 25x25 at 1/16).
Heads: ``mask`` (sigmoid probability, barcodes) or ``depth`` (softplus, metres) + ``log_var``
(aleatoric log-variance, App. B eq. B.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeperc.models.ynet_config import YNetConfig

LEVELS = 5  # full, 1/2, 1/4, 1/8, 1/16
DILATION_RATES = (1, 2, 4, 8, 16)


def wrap_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad W circularly (longitude wraps at +-180 deg): Slice + Concat, which every exporter and
    TensorRT take. H (the poles do not meet) is zero-padded by the convolution itself."""
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


class WrapConv2d(nn.Conv2d):
    """A 3x3 conv whose padding wraps along W and is zero along H; same parameters (and state-dict
    keys) as Conv2d. The H padding stays inside the Conv (no separate Pad op: in INT8 graphs a Pad
    between the Q/DQ pair and the conv is a float copy of the whole activation)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int) -> None:
        super().__init__(in_ch, out_ch, 3, stride=stride, padding=(dilation, 0), dilation=dilation)
        self.wrap = dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(wrap_pad(x, self.wrap))


def _conv(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, wrap: bool = False) -> nn.Sequential:
    conv = (WrapConv2d(in_ch, out_ch, stride, dilation) if wrap
            else nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation))
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """Global context at several scales (global mean + avg pools), upsampled and concatenated."""

    def __init__(self, channels: int, kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.kernels = kernels
        branch_ch = max(1, channels // 2)
        self.reduce = nn.ModuleList(nn.Conv2d(channels, branch_ch, 1) for _ in range(len(kernels) + 1))
        self.out_channels = channels + branch_ch * (len(kernels) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [x.mean(dim=(2, 3), keepdim=True)] + [F.avg_pool2d(x, k, k) for k in self.kernels]
        parts = [x]
        for reduce, p in zip(self.reduce, pooled):
            parts.append(F.interpolate(F.relu(reduce(p)), size=size, mode="bilinear", align_corners=False))
        return torch.cat(parts, dim=1)


class NearestUp(nn.Conv2d):
    """1x1 conv, then nearest 2x: the same map as conv after upsampling (a 1x1 conv commutes with
    nearest), at a quarter of the cost; Conv + Resize quantize to int8 where ConvTranspose cannot."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(super().forward(x), scale_factor=2.0, mode="nearest")


def _upsampler(kind: str, in_ch: int, out_ch: int) -> nn.Module:
    return NearestUp(in_ch, out_ch) if kind == "nearest" else nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)


class YNet(nn.Module):
    def __init__(self, config: YNetConfig) -> None:
        super().__init__()
        self.config = config
        w, dw = config.base_width, int(config.dilated_width or config.base_width // 2)
        widths = [w * 2**level for level in range(LEVELS)]
        # Regular convolution module: conv, then (max-pool, conv) down to 1/16, doubling channels.
        wrap = config.wrap_longitude
        self.regular = nn.ModuleList(
            _conv(config.in_channels if level == 0 else widths[level - 1], widths[level], wrap=wrap) for level in range(LEVELS)
        )
        # Dilated convolution module: constant width, stride 2 after the first, rates 1..16.
        self.dilated = nn.ModuleList(
            _conv(config.in_channels if level == 0 else dw, dw, stride=1 if level == 0 else 2, dilation=rate, wrap=wrap)
            for level, rate in enumerate(DILATION_RATES)
        )
        self.pyramid = PyramidPooling(dw, config.pyramid_kernels)
        self.right_merge = _conv(self.pyramid.out_channels, widths[-1], wrap=wrap)
        # Residual correction of the regular branch by the dilated branch at the finer scales.
        self.lateral = nn.ModuleList(nn.Conv2d(dw, widths[level], 1) for level in range(LEVELS - 1))
        self.up = nn.ModuleList(_upsampler(config.upsample, widths[level + 1], widths[level]) for level in range(LEVELS - 1))
        self.decode = nn.ModuleList(_conv(2 * widths[level], widths[level], wrap=wrap) for level in range(LEVELS - 1))
        self.heads = nn.ModuleDict({name: nn.Conv2d(w, 1, 1) for name in config.heads})

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        reg, dil = image, image
        nodes = []
        for level in range(LEVELS):
            if level:
                reg = F.max_pool2d(reg, 2)
            reg = self.regular[level](reg)
            dil = self.dilated[level](dil)
            if level < LEVELS - 1:
                nodes.append(reg + self.lateral[level](dil))
        x = reg + self.right_merge(self.pyramid(dil))
        for level in reversed(range(LEVELS - 1)):
            x = self.decode[level](torch.cat([self.up[level](x), nodes[level]], dim=1))
        outputs = []
        for name in self.config.heads:
            y = self.heads[name](x)
            if name == "mask":
                y = torch.sigmoid(y)
            elif name == "depth":
                y = F.softplus(y)
            outputs.append(y)
        return tuple(outputs)
