"""VGG (Simonyan & Zisserman, 2014): configurations A to E of the paper's Table 1.

Only 3x3 convolutions (stride 1, pad 1, so they keep the size) and 2x2 max pooling (stride 2,
halving it), in five blocks of 64, 128, 256, 512, 512 channels, then three fully-connected
layers. The configurations are written in the paper's own notation: "conv3-64" is a 3x3 conv
with 64 filters, "conv1-256" (configuration C) a 1x1 conv with 256, "LRN" a local response
normalisation (A-LRN), "maxpool" the 2x2 pooling that ends each block.

Layers are named as in the VGG team's Caffe models: conv{block}_{i}, pool{block}, fc6-fc8.
The classifier expects 7x7x512 = 25,088 inputs, i.e. a 224x224 image; the paper evaluates
other sizes by turning the fully-connected layers into convolutions, which this module leaves
out to keep the layer list equal to the table.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from torch import nn

from ._common import init_weights
from ._registry import register

__all__ = ["VGG", "VGG_CONFIGS", "vgg11", "vgg11_lrn", "vgg13", "vgg16", "vgg16_c", "vgg19"]

VGG_CONFIGS: dict[str, list[str]] = {
    "A": ["conv3-64", "maxpool", "conv3-128", "maxpool"]
    + ["conv3-256"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"],
    "A-LRN": ["conv3-64", "LRN", "maxpool", "conv3-128", "maxpool"]
    + ["conv3-256"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"],
    "B": ["conv3-64"] * 2 + ["maxpool"] + ["conv3-128"] * 2 + ["maxpool"]
    + ["conv3-256"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"]
    + ["conv3-512"] * 2 + ["maxpool"],
    "C": ["conv3-64"] * 2 + ["maxpool"] + ["conv3-128"] * 2 + ["maxpool"]
    + ["conv3-256"] * 2 + ["conv1-256", "maxpool"]
    + ["conv3-512"] * 2 + ["conv1-512", "maxpool"]
    + ["conv3-512"] * 2 + ["conv1-512", "maxpool"],
    "D": ["conv3-64"] * 2 + ["maxpool"] + ["conv3-128"] * 2 + ["maxpool"]
    + ["conv3-256"] * 3 + ["maxpool"]
    + ["conv3-512"] * 3 + ["maxpool"]
    + ["conv3-512"] * 3 + ["maxpool"],
    "E": ["conv3-64"] * 2 + ["maxpool"] + ["conv3-128"] * 2 + ["maxpool"]
    + ["conv3-256"] * 4 + ["maxpool"]
    + ["conv3-512"] * 4 + ["maxpool"]
    + ["conv3-512"] * 4 + ["maxpool"],
}  # fmt: skip

_CONV = re.compile(r"conv(\d+)-(\d+)")


def make_features(config: list[str], in_channels: int = 3) -> nn.Sequential:
    """The conv blocks of a configuration: each "convK-C" becomes conv + ReLU (pad keeps size)."""
    layers: list[tuple[str, nn.Module]] = []
    block, index = 1, 1
    for item in config:
        if item == "maxpool":
            layers.append((f"pool{block}", nn.MaxPool2d(2, stride=2)))
            block, index = block + 1, 1
        elif item == "LRN":
            # As in AlexNet (the paper's section 2.1 points there): k=2, n=5, beta=0.75, and the
            # paper's alpha=1e-4 on the plain sum is torch's alpha / n, so alpha = 5e-4.
            layers.append((f"norm{block}", nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)))
        elif match := _CONV.fullmatch(item):
            kernel, channels = int(match[1]), int(match[2])
            conv = nn.Conv2d(in_channels, channels, kernel, padding=kernel // 2)
            layers += [(f"conv{block}_{index}", conv), (f"relu{block}_{index}", nn.ReLU(True))]
            in_channels, index = channels, index + 1
        else:
            raise ValueError(f"config: unknown item {item!r}; use 'convK-C', 'maxpool' or 'LRN'")
    return nn.Sequential(OrderedDict(layers))


class VGG(nn.Module):
    """A VGG configuration ("A", "A-LRN", "B", "C", "D", "E"): (N, 3, 224, 224) -> scores."""

    def __init__(self, config: str = "D", num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if config not in VGG_CONFIGS:
            raise ValueError(f"config must be one of {sorted(VGG_CONFIGS)}, got {config!r}")
        self.features = make_features(VGG_CONFIGS[config])
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(512 * 7 * 7, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(dropout),
                fc8=nn.Linear(4096, num_classes),
            )
        )
        init_weights(self, linear_std=0.01)

    def forward(self, x):
        """x: (N, 3, 224, 224) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.features(x)))


# Parameter counts with 1000 classes. A, B, D, E: torchvision's VGG*_Weights num_params
# (vgg11 132,863,336; vgg13 133,047,848; vgg16 138,357,544; vgg19 143,667,240), the paper's
# Table 2 rounds them to 133, 133, 138 and 144 M. A-LRN: LRN has no parameters, so as A.
# C: no reference implementation; D with three 3x3 convs made 1x1 (256->256 once, 512->512
# twice) is 138,357,544 - 8*(65,536 + 2*262,144) = 133,638,952, the paper's "134" M.


@register()
def vgg11(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration A: 11 weight layers."""
    return VGG("A", num_classes=num_classes, **kwargs)


@register()
def vgg11_lrn(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration A-LRN: A with local response normalisation after the first conv."""
    return VGG("A-LRN", num_classes=num_classes, **kwargs)


@register()
def vgg13(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration B: 13 weight layers."""
    return VGG("B", num_classes=num_classes, **kwargs)


@register()
def vgg16_c(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration C: 16 weight layers, 1x1 convs ending the last three blocks."""
    return VGG("C", num_classes=num_classes, **kwargs)


@register()
def vgg16(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration D ("VGG-16"): 16 weight layers, 138M parameters."""
    return VGG("D", num_classes=num_classes, **kwargs)


@register()
def vgg19(num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration E ("VGG-19"): 19 weight layers."""
    return VGG("E", num_classes=num_classes, **kwargs)
