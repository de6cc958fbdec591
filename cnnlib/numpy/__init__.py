"""cnnlib.numpy: the NumPy reference layers of the course (`from cnnlib import numpy as cn`).

Every forward returns ``(out, cache)``; every backward takes ``(dout, cache)`` and returns the
gradients in the order of the forward's array arguments. ``*_naive`` functions are the lecture's
loops, kept for teaching; the plain names are vectorised and agree with them to ~1e-12 in float64.
"""

from .activations import *  # noqa: F403
from .batchnorm import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .ensemble import *  # noqa: F403
from .gradcheck import *  # noqa: F403
from .init import *  # noqa: F403
from .layers import *  # noqa: F403
from .losses import *  # noqa: F403
from .model import *  # noqa: F403
from .optim import *  # noqa: F403
from .pool import *  # noqa: F403
from .regularization import *  # noqa: F403
from .search import *  # noqa: F403
from .solver import *  # noqa: F403
