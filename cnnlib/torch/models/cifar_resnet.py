"""The CIFAR-10 ResNets of He et al. (2015, section 4.2) and their plain twins.

On 32x32 images: a 3x3 conv to 16 channels, then three stages of n basic blocks with 16, 32
and 64 channels on 32x32, 16x16 and 8x8 maps, global average pooling and a 10-way
fully-connected layer: 6n + 2 weight layers (n = 3, 5, 7, 9, 18 for depth 20, 32, 44, 56, 110).

The shortcuts are the paper's option A: parameter-free. Where a stage halves the size and
doubles the channels, the shortcut keeps every other pixel (stride 2) and appends zero channels,
so a ResNet and the plain net of the same depth (the same layers without shortcuts, the paper's
Figure 6 comparison) have exactly the same parameters.
"""

from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from torch import nn

from cnnlib.numpy._checks import check_positive_int

from ._common import init_weights, make_stage
from ._registry import CIFAR, register

__all__ = [
    "CifarBasicBlock",
    "CifarResNet",
    "ZeroPadShortcut",
    "cifar_plain20",
    "cifar_plain32",
    "cifar_plain44",
    "cifar_plain56",
    "cifar_plain110",
    "cifar_resnet20",
    "cifar_resnet32",
    "cifar_resnet44",
    "cifar_resnet56",
    "cifar_resnet110",
]


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride), no parameters.

    Subsamples with `stride` and appends C_out - C_in channels of zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        check_positive_int("stride", stride)
        if out_channels < in_channels:
            raise ValueError(
                f"out_channels must be >= in_channels={in_channels} (zeros are appended), "
                f"got {out_channels}"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        """x: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride))."""
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class CifarBasicBlock(nn.Module):
    """Two 3x3 convs with BN; `residual=True` adds the (option A) shortcut before the last ReLU.

    x: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("stride", stride)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.residual = residual
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = (
            ZeroPadShortcut(in_channels, out_channels, stride) if residual and reshapes else None
        )

    def forward(self, x):
        """x: (N, C_in, H, W) -> relu(F(x) + shortcut(x)), or relu(F(x)) for a plain block."""
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images: (N, 3, 32, 32) -> scores (N, num_classes).

    residual=False builds the plain net of the same depth.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, residual: bool = True):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        depth = check_positive_int("depth", depth, minimum=8)
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        channels = 16
        for stage, width in enumerate((16, 32, 64)):
            make_block = partial(CifarBasicBlock, out_channels=width, residual=residual)
            stride = 1 if stage == 0 else 2
            self.add_module(f"layer{stage + 1}", make_stage(make_block, channels, width, n, stride))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def forward(self, x):
        """x: (N, 3, 32, 32) -> scores (N, num_classes)."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


# Parameter counts with 10 classes, as akamaster/pytorch_resnet_cifar10 (resnet.py, the widely
# used PyTorch port; its table rounds them to 0.27M, 0.46M, 0.66M, 0.85M, 1.7M):
# 20: 269,722   32: 464,154   44: 658,586   56: 853,018   110: 1,727,962.
# The plain nets have the same counts: option A shortcuts have no parameters.


@register(input_shape=CIFAR, num_classes=10)
def cifar_resnet20(num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-20 (n=3), option A shortcuts: 0.27M parameters."""
    return CifarResNet(20, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def cifar_resnet32(num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-32 (n=5), option A shortcuts: 0.46M parameters."""
    return CifarResNet(32, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def cifar_resnet44(num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-44 (n=7), option A shortcuts: 0.66M parameters."""
    return CifarResNet(44, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def cifar_resnet56(num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-56 (n=9), option A shortcuts: 0.85M parameters."""
    return CifarResNet(56, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def cifar_resnet110(num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-110 (n=18), option A shortcuts: 1.7M parameters."""
    return CifarResNet(110, num_classes)


@register(input_shape=CIFAR, num_classes=10)
def cifar_plain20(num_classes: int = 10) -> CifarResNet:
    """CIFAR plain-20: ResNet-20 without shortcuts."""
    return CifarResNet(20, num_classes, residual=False)


@register(input_shape=CIFAR, num_classes=10)
def cifar_plain32(num_classes: int = 10) -> CifarResNet:
    """CIFAR plain-32: ResNet-32 without shortcuts."""
    return CifarResNet(32, num_classes, residual=False)


@register(input_shape=CIFAR, num_classes=10)
def cifar_plain44(num_classes: int = 10) -> CifarResNet:
    """CIFAR plain-44: ResNet-44 without shortcuts."""
    return CifarResNet(44, num_classes, residual=False)


@register(input_shape=CIFAR, num_classes=10)
def cifar_plain56(num_classes: int = 10) -> CifarResNet:
    """CIFAR plain-56: ResNet-56 without shortcuts."""
    return CifarResNet(56, num_classes, residual=False)


@register(input_shape=CIFAR, num_classes=10)
def cifar_plain110(num_classes: int = 10) -> CifarResNet:
    """CIFAR plain-110: ResNet-110 without shortcuts."""
    return CifarResNet(110, num_classes, residual=False)
