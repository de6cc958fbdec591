"""ResNeXt (Xie, Girshick, Dollár, Tu & He, 2017): ResNet with grouped bottlenecks.

A ResNeXt bottleneck aggregates `cardinality` parallel paths, each a 1x1 -> 3x3 -> 1x1 stack of
width `base_width`; the paths' 3x3 convs are exactly one grouped conv with groups=cardinality,
so the block is a Bottleneck whose middle is wider (cardinality * base_width * planes/64) and
grouped. ResNeXt-50 (32x4d) costs about what ResNet-50 costs (25.0M parameters against 25.6M,
4.2 G multiply-adds against 4.1 G with the stride in the same place) and is more accurate. As
in the paper's code (fb.resnet.torch), the 3x3 conv does the striding.
"""

from __future__ import annotations

from ._registry import register
from .resnet import Bottleneck, ResNet

__all__ = ["ResNeXtBottleneck", "resnext50_32x4d"]


class ResNeXtBottleneck(Bottleneck):
    """Grouped bottleneck: (N, C_in, H, W) -> (N, 4*planes, H/stride, W/stride).

    The 3x3 conv has cardinality * base_width * planes/64 channels in `cardinality` groups (for
    the first stage of ResNeXt-50 32x4d: 32 groups of 4 channels = 128).
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        cardinality: int = 32,
        base_width: int = 4,
        stride_in_3x3: bool = True,
    ):
        super().__init__(
            in_channels, planes, stride, groups=cardinality, base_width=base_width,
            stride_in_3x3=stride_in_3x3,
        )  # fmt: skip


@register()
def resnext50_32x4d(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50's layout with 32-group bottlenecks of width 4."""
    # 25,028,904 parameters with 1000 classes: torchvision's ResNeXt50_32X4D_Weights num_params.
    return ResNet(ResNeXtBottleneck, [3, 4, 6, 3], num_classes, **kwargs)
