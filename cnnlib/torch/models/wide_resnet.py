"""Wide residual networks (Zagoruyko & Komodakis, 2016) for CIFAR.

WRN-d-k is the CIFAR ResNet made shallower and k times wider: three stages of (d - 4)/6 wide
basic blocks with 16k, 32k and 64k channels. The blocks are pre-activation (BN and ReLU come
before each conv, as He et al.'s "identity mappings" paper recommends), optionally with dropout
between the two convs, and the shortcut is a 1x1 conv wherever the shape changes.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from cnnlib.numpy._checks import check_number, check_positive_int

from ._common import init_weights, make_stage
from ._registry import CIFAR, register

__all__ = ["WideBasicBlock", "WideResNet", "wrn_16_4", "wrn_16_10", "wrn_28_10"]


class WideBasicBlock(nn.Module):
    """Pre-activation block: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride).

    F(x) = conv3x3(dropout(relu(bn(conv3x3(relu(bn(x))))))); out = F(x) + shortcut(x), where the
    shortcut is x itself, or a strided 1x1 conv of relu(bn(x)) when the shape changes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0
    ):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("stride", stride)
        dropout = check_number("dropout", dropout, 0.0, 1.0)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if reshapes else None
        )

    def forward(self, x):
        """x: (N, C_in, H, W) -> F(x) + shortcut(x)."""
        activated = self.relu1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.relu2(self.bn2(self.conv1(activated)))
        if self.dropout is not None:
            out = self.dropout(out)
        return self.conv2(out) + shortcut


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 images: (N, 3, 32, 32) -> scores (N, num_classes)."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        dropout: float = 0.0,
        num_classes: int = 10,
    ):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("widen_factor", widen_factor)
        depth = check_positive_int("depth", depth, minimum=10)
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        channels = 16
        for stage, width in enumerate((16, 32, 64)):
            width *= widen_factor
            make_block = partial(WideBasicBlock, out_channels=width, dropout=dropout)
            stride = 1 if stage == 0 else 2
            self.add_module(f"layer{stage + 1}", make_stage(make_block, channels, width, n, stride))
            channels = width
        self.bn = nn.BatchNorm2d(channels)  # the last block's output is not yet activated
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x):
        """x: (N, 3, 32, 32) -> scores (N, num_classes)."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(self.flatten(self.avgpool(self.relu(self.bn(x)))))


# Parameter counts with 10 classes, as osmr's imgclsmob (wrn_cifar.py model tests, the same
# architecture: bias-free convs, 1x1 projection shortcuts, final BN + ReLU):
# WRN-16-10 17,116,634 and WRN-28-10 36,479,194 (the paper's Table 4 rounds the latter to 36.5M).
# WRN-16-4: no published count we could confirm; it is what this code builds (2,748,890).


@register(input_shape=CIFAR, num_classes=10)
def wrn_16_4(num_classes: int = 10, dropout: float = 0.0) -> WideResNet:
    """WRN-16-4: 16 layers, 4x wider than the CIFAR ResNet (2.7M parameters)."""
    return WideResNet(16, 4, dropout, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def wrn_16_10(num_classes: int = 10, dropout: float = 0.0) -> WideResNet:
    """WRN-16-10: 16 layers, 10x wider than the CIFAR ResNet (17.1M parameters)."""
    return WideResNet(16, 10, dropout, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def wrn_28_10(num_classes: int = 10, dropout: float = 0.0) -> WideResNet:
    """WRN-28-10: 28 layers, 10x wider than the CIFAR ResNet (36.5M parameters)."""
    return WideResNet(28, 10, dropout, num_classes)
