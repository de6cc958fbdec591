"""The architectures of the course's pretrained networks, built by name.

- ``cifar_resnet20``: the zoo's CIFAR ResNet-20 (`cnnlib.torch.models`), module names as in
  torchvision's ResNets (conv1, bn1, layer1 ... layer3, fc).
- ``vgg_small``: a small VGG-style net, `SmallVGG`: three blocks of two 3x3 conv-BN-ReLU layers
  and a 2x2 max pool, with 16, 32 and 64 channels, then global average pooling and one
  fully-connected layer.

Both end in global average pooling, so they take images of any size; their weights were trained
on 3x16x16 images (see the manifest). Every architecture has a `fc` head and a list of `BLOCKS`
(the stages whose outputs the lecture probes).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlib.numpy._checks import check_positive_int
from cnnlib.torch import models as zoo

__all__ = ["ARCHITECTURES", "BLOCKS", "EARLY", "TOP", "SmallVGG", "architecture_of", "build"]


class SmallVGG(nn.Module):
    """VGG in miniature: (N, 3, H, W) -> scores (N, num_classes), H and W divisible by 8.

    block{i} (i = 1, 2, 3): conv{i}_1, bn{i}_1, relu, conv{i}_2, bn{i}_2, relu, pool (2x2, stride
    2), with `widths[i-1]` channels; then avgpool (global), flatten, fc. With the default widths
    (16, 32, 64): 72,954 parameters for 10 classes.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64),
                 in_channels: int = 3):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        channels = check_positive_int("in_channels", in_channels)
        for block, width in enumerate(widths, start=1):
            width = check_positive_int(f"widths[{block - 1}]", width)
            layers = OrderedDict()
            for i in (1, 2):
                layers[f"conv{block}_{i}"] = nn.Conv2d(channels, width, 3, padding=1, bias=False)
                layers[f"bn{block}_{i}"] = nn.BatchNorm2d(width)
                layers[f"relu{block}_{i}"] = nn.ReLU(inplace=True)
                channels = width
            layers[f"pool{block}"] = nn.MaxPool2d(2, stride=2)
            self.add_module(f"block{block}", nn.Sequential(layers))
        self.num_blocks = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        """x: (N, 3, H, W) -> scores (N, num_classes)."""
        for block in range(1, self.num_blocks + 1):
            x = getattr(self, f"block{block}")(x)
        return self.fc(self.flatten(self.avgpool(x)))


ARCHITECTURES = {
    "cifar_resnet20": lambda num_classes: zoo.create("cifar_resnet20", num_classes=num_classes),
    "vgg_small": lambda num_classes: SmallVGG(num_classes),
}

# The stages of each architecture, in order from the input, as {name: module path}: what
# `cnnlib.pretrained.block_features` and the lecture's layer probes look at. ResNet-20's stem is
# conv1, bn1 and its own ReLU (module `relu`, used only there).
BLOCKS = {
    "cifar_resnet20": {"stem": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3"},
    "vgg_small": {"block1": "block1", "block2": "block2", "block3": "block3"},
}


# The parameters that `cnnlib.pretrained.adapt` treats as early (smaller learning rate when
# fine-tuning everything) and as the top stage (trained with the head by how="top").
EARLY = {"cifar_resnet20": ("conv1", "bn1", "layer1"), "vgg_small": ("block1",)}
TOP = {"cifar_resnet20": ("layer3",), "vgg_small": ("block3",)}


def architecture_of(model: nn.Module) -> str:
    """"cifar_resnet20" or "vgg_small" for a network built by `build`; ValueError otherwise."""
    if isinstance(model, SmallVGG):
        return "vgg_small"
    if isinstance(model, zoo.CifarResNet) and len(model.layer1) == 3:
        return "cifar_resnet20"
    names = ", ".join(ARCHITECTURES)
    raise ValueError(f"model must be one of the pretrained architectures ({names}), got a "
                     f"{type(model).__name__}")


def build(architecture: str, num_classes: int) -> nn.Module:
    """A freshly initialised network `architecture` ("cifar_resnet20" or "vgg_small")."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, "
                         f"got {architecture!r}")
    return ARCHITECTURES[architecture](check_positive_int("num_classes", num_classes))
