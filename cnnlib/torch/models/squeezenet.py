"""SqueezeNet (Iandola et al., 2016): AlexNet-level accuracy with 50x fewer parameters.

Its building block, the fire module, first *squeezes* the channels with 1x1 convs, then
*expands* them again with 1x1 and 3x3 convs side by side, concatenated. Fewer 3x3 filters, and
fewer input channels for them, is where the savings come from. There are no fully-connected
layers: a final 1x1 conv gives one map per class and global average pooling the scores.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlib.numpy._checks import check_positive_int

from ._common import init_weights
from ._registry import register

__all__ = ["Fire", "SqueezeNet", "squeezenet1_0"]


class Fire(nn.Module):
    """Fire module: (N, C_in, H, W) -> (N, expand1x1 + expand3x3, H, W).

    squeeze: 1x1 conv to `squeeze` channels + ReLU; expand: a 1x1 conv and a 3x3 conv (pad 1)
    on the squeezed map, each + ReLU, concatenated along channels.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("squeeze", squeeze),
                            ("expand1x1", expand1x1), ("expand3x3", expand3x3)):  # fmt: skip
            check_positive_int(name, value)
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_relu = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_relu = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_relu = nn.ReLU(inplace=True)
        self.out_channels = expand1x1 + expand3x3

    def forward(self, x):
        """x: (N, C_in, H, W) -> (N, out_channels, H, W)."""
        s = self.squeeze_relu(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_relu(self.expand1x1(s)), self.expand3x3_relu(self.expand3x3(s))], 1
        )


class SqueezeNet(nn.Module):
    """SqueezeNet 1.0: (N, 3, 224, 224) -> scores (N, num_classes)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        check_positive_int("num_classes", num_classes)

        def pool():
            return nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 96, 7, stride=2),
                relu1=nn.ReLU(inplace=True),
                pool1=pool(),
                fire2=Fire(96, 16, 64, 64),
                fire3=Fire(128, 16, 64, 64),
                fire4=Fire(128, 32, 128, 128),
                pool4=pool(),
                fire5=Fire(256, 32, 128, 128),
                fire6=Fire(256, 48, 192, 192),
                fire7=Fire(384, 48, 192, 192),
                fire8=Fire(384, 64, 256, 256),
                pool8=pool(),
                fire9=Fire(512, 64, 256, 256),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                dropout=nn.Dropout(dropout),
                conv10=nn.Conv2d(512, num_classes, 1),
                relu10=nn.ReLU(inplace=True),
                avgpool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
            )
        )
        init_weights(self)
        # The class-score conv starts small (as the reference code), so scores start near 0.
        nn.init.normal_(self.classifier.conv10.weight, 0.0, 0.01)

    def forward(self, x):
        """x: (N, 3, 224, 224) -> scores (N, num_classes)."""
        return self.classifier(self.features(x))


@register()
def squeezenet1_0(num_classes: int = 1000, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.0: fire modules, no fully-connected layers, 1.25M parameters."""
    # 1,248,424 parameters with 1000 classes: torchvision's SqueezeNet1_0_Weights num_params.
    return SqueezeNet(num_classes=num_classes, **kwargs)
