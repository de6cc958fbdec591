"""cnnlib.torch: the PyTorch counterparts of cnnlib.numpy (`from cnnlib import torch as ct`).

The same function names, arguments and ``(out, cache)`` / backward contract as `cnnlib.numpy`, on
torch tensors on any device; autograd Functions and nn.Modules built on them; the case-study model
zoo (`cnnlib.torch.models`), `summary`, and the training loop `fit`.
"""

# the zoo: ct.models.create(name) right after `import cnnlib.torch as ct`
from . import models as models
from .activations import *  # noqa: F403
from .batchnorm import *  # noqa: F403
from .conv import *  # noqa: F403
from .device import *  # noqa: F403
from .dropout import *  # noqa: F403
from .functions import *  # noqa: F403
from .layers import *  # noqa: F403
from .losses import *  # noqa: F403
from .modules import *  # noqa: F403
from .pool import *  # noqa: F403
from .summary import *  # noqa: F403
from .train import *  # noqa: F403
