"""GoogLeNet / Inception v1 (Szegedy et al., 2014), as Caffe's bvlc_googlenet.

The network is the paper's Table 1: a stem of plain convolutions, nine inception modules, global
average pooling and one fully-connected layer, 22 weight layers deep. There is no batch norm
(it came a year later, with Inception v2); local response normalisation follows the first two
convs as in Caffe's reference model, and max pools round up ("ceil mode") as Caffe does, which
is what takes 112 -> 56 -> 28 -> 14 -> 7.

An inception module runs four branches side by side on the same input and concatenates their
outputs along the channels: a 1x1 conv; a 1x1 "reduce" conv then a 3x3; a 1x1 reduce then a
5x5; a 3x3 max pool (stride 1) then a 1x1 "pool projection". The 1x1 reductions are what keep
the 3x3 and 5x5 convs affordable.

During training two auxiliary classifiers on inception (4a) and (4d) add their losses (weighted
0.3) to push gradient into the middle of the network; `aux_logits=True` builds them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from cnnlib.numpy._checks import check_positive_int

from ._registry import register

__all__ = ["GOOGLENET_TABLE", "GoogLeNet", "GoogLeNetOutput", "Inception", "InceptionAux",
           "googlenet"]  # fmt: skip


def _conv_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1):
    """A conv with "same" padding followed by ReLU (Inception v1 has no batch norm)."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2),
            relu=nn.ReLU(inplace=True),
        )
    )


class Inception(nn.Module):
    """An inception module: four parallel branches, concatenated along channels.

    x: (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    Arguments are the columns of the paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce,
    #5x5, pool proj.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
    ):
        super().__init__()
        widths = dict(
            in_channels=in_channels, ch1x1=ch1x1, ch3x3_reduce=ch3x3_reduce, ch3x3=ch3x3,
            ch5x5_reduce=ch5x5_reduce, ch5x5=ch5x5, pool_proj=pool_proj,
        )  # fmt: skip
        for name, value in widths.items():
            check_positive_int(name, value)
        self.branch1x1 = _conv_relu(in_channels, ch1x1, 1)
        self.branch3x3 = nn.Sequential(
            OrderedDict(
                reduce=_conv_relu(in_channels, ch3x3_reduce, 1),
                conv=_conv_relu(ch3x3_reduce, ch3x3, 3),
            )
        )
        self.branch5x5 = nn.Sequential(
            OrderedDict(
                reduce=_conv_relu(in_channels, ch5x5_reduce, 1),
                conv=_conv_relu(ch5x5_reduce, ch5x5, 5),
            )
        )
        self.branch_pool = nn.Sequential(
            OrderedDict(
                pool=nn.MaxPool2d(3, stride=1, padding=1),
                proj=_conv_relu(in_channels, pool_proj, 1),
            )
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        """x: (N, C, H, W) -> (N, out_channels, H, W): the four branches side by side."""
        branches = (self.branch1x1, self.branch3x3, self.branch5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionAux(nn.Module):
    """An auxiliary classifier: (N, C, 14, 14) -> (N, num_classes).

    5x5 average pool with stride 3 (-> 4x4), a 1x1 conv to 128 channels, a 1024-unit
    fully-connected layer, 70% dropout, and the class scores.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = _conv_relu(in_channels, 128, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        """x: (N, C, 14, 14) -> scores (N, num_classes)."""
        x = self.flatten(self.conv(self.pool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNetOutput(NamedTuple):
    """What GoogLeNet returns while training with auxiliary classifiers."""

    logits: torch.Tensor
    aux1: torch.Tensor  # from inception (4a)
    aux2: torch.Tensor  # from inception (4d)


# The paper's Table 1, inception rows: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
# pool proj). The input channels follow from the row before.
GOOGLENET_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """Inception v1: (N, 3, 224, 224) -> scores (N, num_classes).

    In training mode with `aux_logits=True` it returns GoogLeNetOutput(logits, aux1, aux2); in
    eval mode (or without the auxiliary heads) just the logits.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, dropout: float = 0.4):
        super().__init__()
        check_positive_int("num_classes", num_classes)

        def lrn():
            # Caffe's bvlc_googlenet: local_size 5, alpha 1e-4 (already divided by n), beta 0.75
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)

        def max_pool():
            return nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.conv1 = _conv_relu(3, 64, 7, stride=2)
        self.pool1 = max_pool()
        self.norm1 = lrn()
        self.conv2_reduce = _conv_relu(64, 64, 1)
        self.conv2 = _conv_relu(64, 192, 3)
        self.norm2 = lrn()
        self.pool2 = max_pool()
        channels = 192
        for name, widths in GOOGLENET_TABLE.items():
            module = Inception(channels, *widths)
            self.add_module(f"inception{name}", module)
            channels = module.out_channels
            if name == "3b":
                self.pool3 = max_pool()
            elif name == "4e":
                self.pool4 = max_pool()
        self.avgpool = nn.AvgPool2d(7, stride=1)
        self.dropout = nn.Dropout(dropout)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(1024, num_classes)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None

    def forward(self, x):
        """x: (N, 3, 224, 224) -> scores, or GoogLeNetOutput while training with aux heads."""
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.norm2(self.conv2(self.conv2_reduce(self.norm1(x)))))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.flatten(self.dropout(self.avgpool(x))))
        if aux1 is not None:
            return GoogLeNetOutput(logits, aux1, aux2)
        return logits


@register()
def googlenet(num_classes: int = 1000, aux_logits: bool = False, **kwargs) -> GoogLeNet:
    """GoogLeNet (Inception v1, no batch norm); aux_logits=True adds the two auxiliary heads."""
    # Parameters with 1000 classes: 13,378,280 with both auxiliary heads, the figure NVIDIA
    # DIGITS reports for its GoogLeNet (bvlc_googlenet's train_val.prototxt;
    # github.com/NVIDIA/DIGITS/pull/221). Without them 6,998,552 = 13,378,280 - aux1 3,188,840
    # (conv 65,664 + fc 2,098,176 + fc 1,025,000) - aux2 3,190,888 (conv 67,712 + the same fcs),
    # i.e. bvlc_googlenet's deploy.prototxt, which drops the auxiliary heads.
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, **kwargs)
