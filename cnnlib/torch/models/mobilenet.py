"""MobileNet v1 (Howard et al., 2017): depthwise separable convolutions.

A standard KxK conv from C_in to C_out channels costs C_in*C_out*K*K multiply-adds per pixel.
MobileNet factors it into a *depthwise* KxK conv (one filter per input channel, groups=C_in:
C_in*K*K) and a *pointwise* 1x1 conv that mixes channels (C_in*C_out): for 3x3 kernels and many
channels, 8 to 9 times cheaper. Each of the two is followed by batch norm and ReLU.
"""

from __future__ import annotations

from torch import nn

from cnnlib.numpy._checks import check_number, check_positive_int

from ._common import init_weights
from ._registry import register

__all__ = ["DepthwiseSeparable", "MobileNetV1", "mobilenet_v1"]


class DepthwiseSeparable(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H/stride, W/stride): depthwise 3x3, BN, ReLU, 1x1, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("stride", stride)
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x):
        """x: (N, C_in, H, W) -> (N, C_out, H', W')."""
        x = self.relu1(self.bn1(self.depthwise(x)))
        return self.relu2(self.bn2(self.pointwise(x)))


# The paper's Table 1 after the first conv: (output channels, stride) of each separable block.
MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [
    (512, 1)
] * 5 + [(1024, 2), (1024, 1)]  # fmt: skip


class MobileNetV1(nn.Module):
    """MobileNet v1: (N, 3, 224, 224) -> scores (N, num_classes).

    width_multiplier (the paper's alpha) scales every layer's channels (0.25, 0.5, 0.75, 1).
    """

    def __init__(self, num_classes: int = 1000, width_multiplier: float = 1.0):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        alpha = check_number("width_multiplier", width_multiplier, 0.0, None, strict_minimum=True)

        def width(channels: int) -> int:
            return max(1, int(channels * alpha))

        channels = width(32)
        self.conv1 = nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        blocks = []
        for out_channels, stride in MOBILENET_V1_BLOCKS:
            blocks.append(DepthwiseSeparable(channels, width(out_channels), stride))
            channels = width(out_channels)
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x):
        """x: (N, 3, 224, 224) -> scores (N, num_classes)."""
        x = self.blocks(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


@register()
def mobilenet_v1(num_classes: int = 1000, **kwargs) -> MobileNetV1:
    """MobileNet v1 (1.0, 224): depthwise separable convs, 4.2M parameters."""
    # 4,231,976 parameters with 1000 classes: osmr's imgclsmob model tests (mobilenet_w1), and
    # the trainable parameters Keras reports for MobileNet(alpha=1.0) (BN moving statistics
    # are buffers in PyTorch, not parameters).
    return MobileNetV1(num_classes=num_classes, **kwargs)
