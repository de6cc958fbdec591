"""Squeeze-and-excitation (Hu, Shen & Sun, 2018) and the SE-ResNet blocks built on it.

An SE block re-weights the channels of a feature map by how useful they look for this image:
squeeze each channel to one number (global average pooling), let two small fully-connected
layers (C -> C/r -> C, ReLU between) turn those numbers into gates in (0, 1) (sigmoid), and
multiply each channel by its gate. In an SE-ResNet block it acts on the residual branch, just
before the shortcut is added, for about 10% more parameters and well under 1% more
multiply-adds than the plain ResNet.
"""

from __future__ import annotations

from torch import nn

from cnnlib.numpy._checks import check_positive_int

from ._registry import register
from .resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["SEBasicBlock", "SEBottleneck", "SqueezeExcitation", "se_resnet18", "se_resnet50"]


class SqueezeExcitation(nn.Module):
    """Channel gating: x (N, C, H, W) -> x * gate (N, C, 1, 1), gates in (0, 1).

    The hidden layer has max(1, C // reduction) units; reduction=16 is the paper's default.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        check_positive_int("channels", channels)
        check_positive_int("reduction", reduction)
        hidden = max(1, channels // reduction)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.gate = nn.Sigmoid()

    def gates(self, x):
        """x: (N, C, H, W) -> per-channel gates (N, C) in (0, 1)."""
        return self.gate(self.fc2(self.relu(self.fc1(self.flatten(self.squeeze(x))))))

    def forward(self, x):
        """x: (N, C, H, W) -> x with channel c scaled by gate c."""
        return x * self.gates(x)[:, :, None, None]


class SEBasicBlock(BasicBlock):
    """ResNet basic block with squeeze-and-excitation on the residual branch."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, reduction: int = 16):
        super().__init__(in_channels, planes, stride)
        self.se = SqueezeExcitation(planes * self.expansion, reduction)

    def residual(self, x):
        """SE(F(x))."""
        return self.se(super().residual(x))


class SEBottleneck(Bottleneck):
    """ResNet bottleneck with squeeze-and-excitation on the residual branch."""

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        reduction: int = 16,
        stride_in_3x3: bool = False,
    ):
        super().__init__(in_channels, planes, stride, stride_in_3x3=stride_in_3x3)
        self.se = SqueezeExcitation(planes * self.expansion, reduction)

    def residual(self, x):
        """SE(F(x))."""
        return self.se(super().residual(x))


# Parameter counts with 1000 classes, as in osmr's imgclsmob model tests (pytorchcv, the
# Gluon/Chainer/TF ports share them): seresnet18 11,778,592 and seresnet50 28,088,024. Their SE
# layers are 1x1 convs with biases, which have exactly the parameters of our nn.Linear layers.


@register()
def se_resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """SE-ResNet-18: ResNet-18 with squeeze-and-excitation in every block."""
    return ResNet(SEBasicBlock, [2, 2, 2, 2], num_classes, **kwargs)


@register()
def se_resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    """SE-ResNet-50: ResNet-50 with squeeze-and-excitation in every bottleneck."""
    return ResNet(SEBottleneck, [3, 4, 6, 3], num_classes, **kwargs)
