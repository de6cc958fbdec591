"""The course slides' modern LeNet-5 variant: [conv, ReLU, pool] x 2, flatten, [fc, ReLU], fc.

This is *not* the network of LeCun et al. (1998); that one is `lenet5_1998` (lenet1998.py).
It keeps the 1998 pattern (convolution, downsampling, convolution, downsampling, fully-connected
layers) with the sizes that Caffe's MNIST example popularised under the name "LeNet": 20 and 50
filters instead of 6 and 16, every conv reading every map (no connection table), ReLU and max
pooling instead of a scaled tanh and trainable subsampling, a 500-unit hidden layer and a plain
linear output instead of C5, F6 and the RBF units; and "same" padding (pad 2) so each 5x5 conv
keeps its input's size. 1,256,080 parameters against the original's 60,000:

    input  1 x 28 x 28
    conv1  20 filters 5x5, pad 2  -> 20 x 28 x 28     weights 20 x 1 x 5 x 5
    pool1  max 2x2, stride 2      -> 20 x 14 x 14
    conv2  50 filters 5x5, pad 2  -> 50 x 14 x 14     weights 50 x 20 x 5 x 5
    pool2  max 2x2, stride 2      -> 50 x 7 x 7
    flatten                       -> 2450
    fc1    2450 -> 500                                weights 2450 x 500
    fc2    500 -> 10                                  weights 500 x 10
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlib.arithmetic import conv_output_size, pool_output_size
from cnnlib.numpy._checks import check_positive_int

from ._registry import register

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """The slides' modern LeNet-5 variant on (N, 1, 28, 28) digits -> (N, num_classes) scores.

    padding=2 (the slides) keeps 28x28 through conv1 and gives 520 + 25,050 + 1,225,500 +
    5,010 = 1,256,080 parameters (cnnlib.arithmetic's LeNet-5 table). padding=0 is Caffe's MNIST
    "LeNet" (28 -> 24 -> 12 -> 8 -> 4, fc1 sees 800 inputs): 431,080 parameters, the figure
    NVIDIA DIGITS reports for it (github.com/NVIDIA/DIGITS/pull/221).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, padding: int = 2):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_positive_int("padding", padding, minimum=0)
        side = 28  # conv 5x5 (pad p), pool 2x2, twice
        for _ in range(2):
            side = pool_output_size(conv_output_size(side, 5, pad=padding), 2)
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 20, 5, padding=padding),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(2, 2),
                conv2=nn.Conv2d(20, 50, 5, padding=padding),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(2, 2),
            )
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(50 * side * side, 500),
                relu3=nn.ReLU(inplace=True),
                fc2=nn.Linear(500, num_classes),
            )
        )

    def forward(self, x):
        """x: (N, 1, 28, 28) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.features(x)))


@register(input_shape=(1, 28, 28), num_classes=10)
def lenet5(num_classes: int = 10, **kwargs) -> LeNet5:
    """The slides' modern LeNet-5 variant (20-50-500, ReLU, max pooling, pad 2): 1,256,080
    parameters for 10 classes. The 1998 original is `lenet5_1998`."""
    return LeNet5(num_classes=num_classes, **kwargs)
