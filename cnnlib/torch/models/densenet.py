"""DenseNet (Huang, Liu, van der Maaten & Weinberger, 2017).

Inside a dense block every layer sees the feature maps of *all* layers before it, concatenated,
and adds `growth_rate` new channels of its own: after L layers a block that started with C
channels holds C + L*k. Each dense layer is BN-ReLU-1x1 conv (to 4k channels, the "bottleneck"
that keeps the 3x3 cheap) then BN-ReLU-3x3 conv (to k). Between blocks a transition layer halves
the channels (1x1 conv, "compression" 0.5) and the size (2x2 average pooling).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlib.numpy._checks import check_number, check_positive_int

from ._common import init_weights
from ._registry import register

__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "Transition", "densenet121"]


class DenseLayer(nn.Module):
    """x: (N, C, H, W) -> (N, C + growth_rate, H, W): the input with k new channels appended."""

    def __init__(
        self, in_channels: int, growth_rate: int, bn_size: int = 4, dropout: float = 0.0
    ):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("growth_rate", growth_rate)
        check_positive_int("bn_size", bn_size)
        dropout = check_number("dropout", dropout, 0.0, 1.0)
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x):
        """x: (N, C, H, W) -> cat([x, new features], channels)."""
        new = self.conv1(self.relu1(self.norm1(x)))
        new = self.conv2(self.relu2(self.norm2(new)))
        if self.dropout is not None:
            new = self.dropout(new)
        return torch.cat([x, new], dim=1)


class DenseBlock(nn.Sequential):
    """num_layers dense layers: (N, C, H, W) -> (N, C + num_layers * growth_rate, H, W)."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,
        dropout: float = 0.0,
    ):
        check_positive_int("num_layers", num_layers)
        super().__init__(
            *(
                DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, dropout)
                for i in range(num_layers)
            )
        )
        self.out_channels = in_channels + num_layers * growth_rate


class Transition(nn.Sequential):
    """Between dense blocks: (N, C_in, H, W) -> (N, C_out, H/2, W/2), BN-ReLU-1x1 conv-avgpool."""

    def __init__(self, in_channels: int, out_channels: int):
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet: (N, 3, 224, 224) -> scores (N, num_classes).

    Stem 7x7/2 conv (2k channels) + 3x3/2 max pool, dense blocks of `block_config` layers with
    transitions (compression 0.5) between them, a final BN-ReLU, global average pooling, one
    fully-connected layer.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config=(6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        dropout: float = 0.0,
        num_classes: int = 1000,
    ):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("num_init_features", num_init_features)
        layers: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, dropout)
            layers.append((f"denseblock{i + 1}", block))
            channels = block.out_channels
            if i < len(block_config) - 1:
                layers.append((f"transition{i + 1}", Transition(channels, channels // 2)))
                channels //= 2
        layers += [("norm5", nn.BatchNorm2d(channels)), ("relu5", nn.ReLU(inplace=True))]
        self.features = nn.Sequential(OrderedDict(layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        """x: (N, 3, 224, 224) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register()
def densenet121(num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-121 (k=32, blocks of 6, 12, 24, 16 layers)."""
    # 7,978,856 parameters with 1000 classes: torchvision's DenseNet121_Weights num_params.
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, **kwargs)
