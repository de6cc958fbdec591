"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) in its two historical shapes.

`alexnet2012` is the network of the paper as Caffe's reference model (bvlc_alexnet) trains it:
96-256-384-384-256 filters, local response normalisation after conv1 and conv2, and the "two
towers" that split the model over two 3 GB GPUs. A tower only sees its own half of the channels
in conv2, conv4 and conv5, which is exactly a grouped convolution with groups=2; conv3 and the
fully-connected layers talk across both GPUs and are ordinary layers.

`alexnet` is the single-tower 64-192-384-256-256 variant of Krizhevsky's "One weird trick"
(2014), the one torchvision ships and the lecture's table walks through layer by layer
(on a 227x227 input: conv1 64x56x56, 784 KB, 23k parameters, 73 M multiply-adds, ...).

Neither uses adaptive pooling: pool5 gives 6x6 on a 227x227 input (and, for `alexnet`, on
224x224 too), so fc6 always sees 256*6*6 = 9216 (or 9216 split into two towers) inputs.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ._registry import register

__all__ = ["AlexNet", "AlexNet2012", "alexnet", "alexnet2012"]

ALEXNET_INPUT = (3, 227, 227)


def _classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """fc6 and fc7 (4096 units, ReLU, dropout), then fc8 to the class scores."""
    return nn.Sequential(
        OrderedDict(
            drop6=nn.Dropout(dropout),
            fc6=nn.Linear(in_features, 4096),
            relu6=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout),
            fc7=nn.Linear(4096, 4096),
            relu7=nn.ReLU(inplace=True),
            fc8=nn.Linear(4096, num_classes),
        )
    )


class AlexNet(nn.Module):
    """Single-tower AlexNet, (N, 3, 227, 227) -> (N, num_classes); the lecture's table.

    conv1 64@11x11/4 pad 2 -> pool 3/2 -> conv2 192@5x5 pad 2 -> pool 3/2 -> conv3 384@3x3 ->
    conv4 256@3x3 -> conv5 256@3x3 -> pool 3/2 -> flatten 9216 -> fc6 4096 -> fc7 4096 -> fc8.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 64, 11, stride=4, padding=2),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(3, stride=2),
                conv2=nn.Conv2d(64, 192, 5, padding=2),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(3, stride=2),
                conv3=nn.Conv2d(192, 384, 3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 256, 3, padding=1),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(256, 256, 3, padding=1),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(3, stride=2),
            )
        )
        self.flatten = nn.Flatten()
        self.classifier = _classifier(256 * 6 * 6, num_classes, dropout)

    def forward(self, x):
        """x: (N, 3, 227, 227) (224x224 works too) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.features(x)))


class AlexNet2012(nn.Module):
    """The 2012 AlexNet with its two towers as groups=2 convs, (N, 3, 227, 227) -> scores.

    conv1 96@11x11/4 -> LRN -> pool 3/2 -> conv2 256@5x5 pad 2 (2 groups) -> LRN -> pool 3/2 ->
    conv3 384@3x3 -> conv4 384@3x3 (2 groups) -> conv5 256@3x3 (2 groups) -> pool 3/2 -> fc6
    4096 -> fc7 4096 -> fc8. The input must be 227x227 (the paper's "224" does not give 55x55).

    Local response normalisation divides each activation by (k + alpha/n * sum of squares of n
    neighbouring channels)^beta with the paper's k=2, n=5, beta=0.75; the paper's alpha=1e-4
    multiplies the plain sum, and torch divides alpha by n, hence alpha=5e-4 here.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()

        def lrn():
            return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 96, 11, stride=4),
                relu1=nn.ReLU(inplace=True),
                norm1=lrn(),
                pool1=nn.MaxPool2d(3, stride=2),
                conv2=nn.Conv2d(96, 256, 5, padding=2, groups=2),
                relu2=nn.ReLU(inplace=True),
                norm2=lrn(),
                pool2=nn.MaxPool2d(3, stride=2),
                conv3=nn.Conv2d(256, 384, 3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, 3, padding=1, groups=2),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, 3, padding=1, groups=2),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(3, stride=2),
            )
        )
        self.flatten = nn.Flatten()
        self.classifier = _classifier(256 * 6 * 6, num_classes, dropout)

    def forward(self, x):
        """x: (N, 3, 227, 227) -> scores (N, num_classes)."""
        return self.classifier(self.flatten(self.features(x)))


@register(input_shape=ALEXNET_INPUT)
def alexnet(num_classes: int = 1000, **kwargs) -> AlexNet:
    """Single-tower AlexNet (64-192-384-256-256), as torchvision and the lecture's table."""
    # 61,100,840 parameters with 1000 classes: torchvision's AlexNet_Weights num_params.
    return AlexNet(num_classes=num_classes, **kwargs)


@register(input_shape=ALEXNET_INPUT)
def alexnet2012(num_classes: int = 1000, **kwargs) -> AlexNet2012:
    """The 2012 paper's AlexNet: two towers (grouped conv2/4/5), LRN, 227x227 input."""
    # 60,965,224 parameters with 1000 classes: Caffe's models/bvlc_alexnet/deploy.prototxt,
    # layer by layer: conv1 34,944 + conv2 307,456 + conv3 885,120 + conv4 663,936 + conv5
    # 442,624 + fc6 37,752,832 + fc7 16,781,312 + fc8 4,097,000.
    return AlexNet2012(num_classes=num_classes, **kwargs)
