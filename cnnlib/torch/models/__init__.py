"""cnnlib.torch.models: the case-study architectures, written with plain torch.nn.

    >>> from cnnlib.torch import models
    >>> models.available()[:3]
    ['alexnet', 'alexnet2012', 'cifar_plain110']
    >>> net = models.create("cifar_resnet20")           # 10 classes, for 3x32x32 images

Every model's parameter count equals the published one (the sources are cited next to each
builder, and the tests assert them). The building blocks are classes of their own, to be reused
and inspected: LeNet-5 (1998)'s `ConnectionTableConv2d`, `Subsampling`, `ScaledTanh` and
`EuclideanRBF`, `Inception`, `BasicBlock`, `Bottleneck`, `ResNeXtBottleneck`, `CifarBasicBlock`,
`WideBasicBlock`, `DenseLayer` / `DenseBlock` / `Transition`, `Fire`, `DepthwiseSeparable`,
`SqueezeExcitation`, `SEBasicBlock`, `SEBottleneck`.

`cnnlib.summary(model, input_shape)` tabulates any of them layer by layer; from a terminal,
``python -m cnnlib summary resnet50``.
"""

from ._registry import *  # noqa: F403
from .alexnet import *  # noqa: F403
from .cifar_resnet import *  # noqa: F403
from .densenet import *  # noqa: F403
from .googlenet import *  # noqa: F403
from .lenet import *  # noqa: F403
from .lenet1998 import *  # noqa: F403
from .mobilenet import *  # noqa: F403
from .resnet import *  # noqa: F403
from .resnext import *  # noqa: F403
from .senet import *  # noqa: F403
from .squeezenet import *  # noqa: F403
from .vgg import *  # noqa: F403
from .wide_resnet import *  # noqa: F403
