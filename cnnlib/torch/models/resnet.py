"""ResNet for ImageNet (He, Zhang, Ren & Sun, 2015): ResNet-18, 34, 50, 101 and 152.

A residual block learns a correction F(x) to its input and adds it back: out = relu(F(x) + x).
When F changes the shape (stride 2, more channels) the shortcut becomes a 1x1 conv with stride
and batch norm ("projection", the paper's option B). Two kinds of F:

- BasicBlock (ResNet-18/34): 3x3 conv, BN, ReLU, 3x3 conv, BN.
- Bottleneck (ResNet-50/101/152): 1x1 conv squeezing to `planes` channels, 3x3 conv, 1x1 conv
  expanding to 4*planes, so the 3x3 conv works on 4x fewer channels.

The paper's bottleneck downsamples in its first 1x1 conv; torchvision's ("ResNet v1.5", after
fb.resnet.torch) in the 3x3 conv, which costs about 6% more multiply-adds for the same
parameters and is slightly more accurate. `stride_in_3x3` picks; the default is the paper's, whose
multiply-adds are the slides' figures (1.8, 3.6, 3.8, 7.6, 11.3 G).

Module names follow torchvision's (conv1, bn1, layer1.0.conv1, ..., downsample, fc), so its
state dicts load into these models.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from cnnlib.numpy._checks import check_positive_int

from ._common import init_weights, make_stage
from ._registry import register

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 conv, pad 1, no bias (a batch norm follows)."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride, padding=1, groups=groups, bias=False
    )  # fmt: skip


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv, no bias: mixes channels at each position (strided: keeps every other one)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """The shortcut: identity (None) when shapes match, else 1x1 conv + BN (option B)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut: (N, C_in, H, W) -> (N, planes, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("planes", planes)
        check_positive_int("stride", stride)
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = projection(in_channels, planes, stride)

    def residual(self, x):
        """F(x): conv, BN, ReLU, conv, BN."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        """x: (N, C_in, H, W) -> relu(F(x) + shortcut(x))."""
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + shortcut)


class Bottleneck(nn.Module):
    """1x1 squeeze, 3x3, 1x1 expand: (N, C_in, H, W) -> (N, 4*planes, H/stride, W/stride).

    groups and base_width generalise it to ResNeXt: the 3x3 conv has
    width = planes * base_width/64 * groups channels split into `groups` groups (64 and 1 give
    ResNet's width = planes).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        groups: int = 1,
        base_width: int = 64,
        stride_in_3x3: bool = False,
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("planes", planes), ("stride", stride),
                            ("groups", groups), ("base_width", base_width)):  # fmt: skip
            check_positive_int(name, value)
        width = planes * base_width // 64 * groups
        out_channels = planes * self.expansion
        self.conv1 = conv1x1(in_channels, width, 1 if stride_in_3x3 else stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride if stride_in_3x3 else 1, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(in_channels, out_channels, stride)

    def residual(self, x):
        """F(x): 1x1 conv, BN, ReLU, 3x3 conv, BN, ReLU, 1x1 conv, BN."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        """x: (N, C_in, H, W) -> relu(F(x) + shortcut(x))."""
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + shortcut)


class ResNet(nn.Module):
    """An ImageNet ResNet: (N, 3, 224, 224) -> scores (N, num_classes).

    Stem: 7x7/2 conv (64), BN, ReLU, 3x3/2 max pool (224 -> 56). Then four stages of `layers[i]`
    blocks with 64, 128, 256, 512 planes, the first block of stages 2-4 halving the size
    (56 -> 28 -> 14 -> 7), global average pooling and one fully-connected layer.
    block_kwargs go to every block (e.g. stride_in_3x3, or groups/base_width for ResNeXt).
    """

    def __init__(self, block: type[nn.Module], layers, num_classes: int = 1000, **block_kwargs):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        if len(layers) != 4:
            raise ValueError(f"layers must give the number of blocks of 4 stages, got {layers!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            check_positive_int(f"layers[{stage}]", blocks)
            make_block = partial(block, planes=planes, **block_kwargs)
            out_channels = planes * block.expansion
            self.add_module(
                f"layer{stage + 1}",
                make_stage(make_block, channels, out_channels, blocks, 1 if stage == 0 else 2),
            )
            channels = out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x):
        """x: (N, 3, H, W) -> scores (N, num_classes); H = W = 224 in the paper."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


# Parameter counts with 1000 classes, torchvision's ResNet*_Weights num_params (where the stride
# sits does not change them): resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032;
# resnet101 44,549,160; resnet152 60,192,808.


@register()
def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2], 11.7M parameters, 1.8 G multiply-adds."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kwargs)


@register()
def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3], 21.8M parameters, 3.6 G multiply-adds."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kwargs)


@register()
def resnet50(num_classes: int = 1000, stride_in_3x3: bool = False, **kwargs) -> ResNet:
    """ResNet-50: bottlenecks [3, 4, 6, 3], 25.6M parameters, 3.8 G multiply-adds."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, stride_in_3x3=stride_in_3x3, **kwargs)


@register()
def resnet101(num_classes: int = 1000, stride_in_3x3: bool = False, **kwargs) -> ResNet:
    """ResNet-101: bottlenecks [3, 4, 23, 3], 44.5M parameters, 7.6 G multiply-adds."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, stride_in_3x3=stride_in_3x3, **kwargs)


@register()
def resnet152(num_classes: int = 1000, stride_in_3x3: bool = False, **kwargs) -> ResNet:
    """ResNet-152: bottlenecks [3, 8, 36, 3], 60.2M parameters, 11.3 G multiply-adds."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, stride_in_3x3=stride_in_3x3, **kwargs)
