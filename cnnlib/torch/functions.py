"""Our layers as autograd Functions: torch's autograd calls *our* backward passes.

A ``torch.autograd.Function`` is the hook for a hand-written backward: its ``forward`` computes
the output and saves what the backward will need, its ``backward`` maps dL/dout to the gradients
of the inputs. Each layer of cnnlib.torch already is such a pair (``*_forward`` returning
``(out, cache)``, ``*_backward`` taking ``(dout, cache)``), so every Function here is the same
few lines: run the forward, keep the cache, hand the cache to the backward::

    class Conv2dFunction(LayerFunction):
        @staticmethod
        def forward(ctx, x, w, b, stride=1, pad=0, dilation=1):
            return LayerFunction.run(ctx, conv_forward, conv_backward, x, w, b, stride, pad,
                                     dilation)

After that, ``Conv2dFunction.apply(x, w, b, 1, 1)`` is a conv layer that autograd can train, and
``torch.autograd.gradcheck`` can check our backward against finite differences.

The lowercase helpers (`conv2d`, `max_pool2d`, `relu`, `cross_entropy`, ...) call ``.apply``
with keyword defaults (``apply`` itself takes positional arguments only). Their names avoid
those of cnnlib.torch's submodules, which is why dropout's is `apply_dropout`.

The backward passes are not themselves differentiable by autograd (no double backward, so no
gradient penalties or Hessian-vector products through these layers): asking for one raises.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import torch
from torch.autograd.function import once_differentiable

from .activations import (
    elu_backward,
    elu_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    maxout_backward,
    maxout_forward,
    prelu_backward,
    prelu_forward,
    relu_backward,
    relu_forward,
    selu_backward,
    selu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .batchnorm import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .conv import conv_backward, conv_forward
from .dropout import dropout_backward, dropout_forward
from .layers import affine_backward, affine_forward
from .losses import softmax_loss, svm_loss
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward

__all__ = [
    "AffineFunction",
    "AvgPool2dFunction",
    "BatchNormFunction",
    "Conv2dFunction",
    "DropoutFunction",
    "ELUFunction",
    "GELUFunction",
    "LayerFunction",
    "LeakyReLUFunction",
    "MaxPool2dFunction",
    "MaxoutFunction",
    "PReLUFunction",
    "ReLUFunction",
    "SELUFunction",
    "SVMLossFunction",
    "SigmoidFunction",
    "SoftmaxLossFunction",
    "TanhFunction",
    "affine",
    "apply_dropout",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "elu",
    "gelu",
    "leaky_relu",
    "max_pool2d",
    "maxout",
    "prelu",
    "relu",
    "selu",
    "sigmoid",
    "svm_hinge_loss",
    "tanh",
]


class _Slot(int):
    """Where a tensor of the cache went in ctx.saved_tensors."""


def _rebuilt(item, parts):
    """A tuple, named tuple (ConvCache) or list like `item`, holding `parts`."""
    if hasattr(item, "_fields"):
        return type(item)(*parts)
    return type(item)(parts)


def _take_tensors(item, tensors: list):
    """The cache with every tensor replaced by a _Slot (tensors appended to `tensors`)."""
    if isinstance(item, torch.Tensor):
        tensors.append(item)
        return _Slot(len(tensors) - 1)
    if isinstance(item, tuple | list):
        return _rebuilt(item, [_take_tensors(part, tensors) for part in item])
    return item


def _put_tensors(item, tensors):
    """Inverse of _take_tensors."""
    if isinstance(item, _Slot):
        return tensors[item]
    if isinstance(item, tuple | list):
        return _rebuilt(item, [_put_tensors(part, tensors) for part in item])
    return item


class LayerFunction(torch.autograd.Function):
    """Base of the layer Functions: the backward is the layer's own ``*_backward(dout, cache)``.

    The cache's tensors go through ``ctx.save_for_backward``, not onto ctx directly: a cache
    that holds the output (sigmoid's does) would otherwise tie the output to its own graph node
    in a reference cycle, and autograd could not warn when a saved input is modified in place.
    """

    @staticmethod
    def run(ctx, layer_forward, layer_backward, *args):
        """Call ``layer_forward(*args)``, keep its cache and backward on ctx; return the output."""
        out, cache = layer_forward(*args)
        tensors: list[torch.Tensor] = []
        ctx.cache_skeleton = _take_tensors(cache, tensors)
        ctx.save_for_backward(*tensors)
        ctx.layer_backward = layer_backward
        ctx.num_args = len(args)
        # autograd forbids in-place changes (nn.ReLU(inplace=True) after the layer) to an
        # output that is a view made inside a Function, or one of its inputs returned as is:
        # such an output leaves as a fresh tensor
        if out._base is not None or any(out is arg for arg in args):
            out = out.clone()
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):
        cache = _put_tensors(ctx.cache_skeleton, ctx.saved_tensors)
        grads = ctx.layer_backward(dout, cache)
        if isinstance(grads, torch.Tensor):
            grads = (grads,)
        # one entry per argument of forward; the non-tensor options get None
        return (*grads, *(None,) * (ctx.num_args - len(grads)))


# ---------------------------------------------------------------- the Functions


class Conv2dFunction(LayerFunction):
    """apply(x, w, b, stride=1, pad=0, dilation=1): conv_forward / conv_backward.
    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> (N, F, H', W')."""

    @staticmethod
    def forward(ctx, x, w, b, stride=1, pad=0, dilation=1):
        return LayerFunction.run(ctx, conv_forward, conv_backward, x, w, b, stride, pad, dilation)


class MaxPool2dFunction(LayerFunction):
    """apply(x, size=2, stride=2, pad=0): max_pool_forward / max_pool_backward."""

    @staticmethod
    def forward(ctx, x, size=2, stride=2, pad=0):
        return LayerFunction.run(ctx, max_pool_forward, max_pool_backward, x, size, stride, pad)


class AvgPool2dFunction(LayerFunction):
    """apply(x, size=2, stride=2, pad=0): avg_pool_forward / avg_pool_backward."""

    @staticmethod
    def forward(ctx, x, size=2, stride=2, pad=0):
        return LayerFunction.run(ctx, avg_pool_forward, avg_pool_backward, x, size, stride, pad)


class AffineFunction(LayerFunction):
    """apply(x, w, b): affine_forward / affine_backward. x (N, ...), w (D, M), b (M,) -> (N, M)."""

    @staticmethod
    def forward(ctx, x, w, b):
        return LayerFunction.run(ctx, affine_forward, affine_backward, x, w, b)


class BatchNormFunction(LayerFunction):
    """apply(x, gamma, beta, state, train=True, momentum=0.9, eps=1e-5): batch normalisation of
    x (N, D) (batchnorm_forward) or, per channel, of x (N, C, H, W) (spatial_batchnorm_forward).
    state's running statistics are updated in place in train mode."""

    @staticmethod
    def forward(ctx, x, gamma, beta, state, train=True, momentum=0.9, eps=1e-5):
        if getattr(x, "ndim", None) == 4:
            pair = (spatial_batchnorm_forward, spatial_batchnorm_backward)
        else:
            pair = (batchnorm_forward, batchnorm_backward)
        return LayerFunction.run(ctx, *pair, x, gamma, beta, state, train, momentum, eps)


class DropoutFunction(LayerFunction):
    """apply(x, keep_prob=0.5, train=True, inverted=True, seed=None): dropout_forward /
    dropout_backward. keep_prob is the probability of KEEPING a unit."""

    @staticmethod
    def forward(ctx, x, keep_prob=0.5, train=True, inverted=True, seed=None):
        return LayerFunction.run(
            ctx, dropout_forward, dropout_backward, x, keep_prob, train, inverted, seed
        )


class SigmoidFunction(LayerFunction):
    """apply(x): sigmoid_forward / sigmoid_backward."""

    @staticmethod
    def forward(ctx, x):
        return LayerFunction.run(ctx, sigmoid_forward, sigmoid_backward, x)


class TanhFunction(LayerFunction):
    """apply(x): tanh_forward / tanh_backward."""

    @staticmethod
    def forward(ctx, x):
        return LayerFunction.run(ctx, tanh_forward, tanh_backward, x)


class ReLUFunction(LayerFunction):
    """apply(x): relu_forward / relu_backward."""

    @staticmethod
    def forward(ctx, x):
        return LayerFunction.run(ctx, relu_forward, relu_backward, x)


class LeakyReLUFunction(LayerFunction):
    """apply(x, negative_slope=0.01): leaky_relu_forward / leaky_relu_backward."""

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        return LayerFunction.run(ctx, leaky_relu_forward, leaky_relu_backward, x, negative_slope)


class PReLUFunction(LayerFunction):
    """apply(x, alpha): prelu_forward / prelu_backward; alpha of shape () or (C,)."""

    @staticmethod
    def forward(ctx, x, alpha):
        return LayerFunction.run(ctx, prelu_forward, prelu_backward, x, alpha)


class ELUFunction(LayerFunction):
    """apply(x, alpha=1.0): elu_forward / elu_backward."""

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        return LayerFunction.run(ctx, elu_forward, elu_backward, x, alpha)


class SELUFunction(LayerFunction):
    """apply(x): selu_forward / selu_backward."""

    @staticmethod
    def forward(ctx, x):
        return LayerFunction.run(ctx, selu_forward, selu_backward, x)


class GELUFunction(LayerFunction):
    """apply(x, approximate="none"): gelu_forward / gelu_backward."""

    @staticmethod
    def forward(ctx, x, approximate="none"):
        return LayerFunction.run(ctx, gelu_forward, gelu_backward, x, approximate)


class MaxoutFunction(LayerFunction):
    """apply(x, w, b): maxout_forward / maxout_backward. x (N, D), w (K, D, M), b (K, M)."""

    @staticmethod
    def forward(ctx, x, w, b):
        return LayerFunction.run(ctx, maxout_forward, maxout_backward, x, w, b)


class _LossFunction(torch.autograd.Function):
    """The losses compute dscores in the forward: the backward only scales it by dL/dloss."""

    @staticmethod
    @once_differentiable
    def backward(ctx, dloss):
        (dscores,) = ctx.saved_tensors
        return (dloss * dscores, *(None,) * (ctx.num_args - 1))


class SoftmaxLossFunction(_LossFunction):
    """apply(scores, y): softmax_loss as a differentiable 0-dim loss (mean over the batch)."""

    @staticmethod
    def forward(ctx, scores, y):
        loss, dscores = softmax_loss(scores, y)
        ctx.save_for_backward(dscores)
        ctx.num_args = 2
        return loss


class SVMLossFunction(_LossFunction):
    """apply(scores, y, margin=1.0): svm_loss as a differentiable 0-dim loss."""

    @staticmethod
    def forward(ctx, scores, y, margin=1.0):
        loss, dscores = svm_loss(scores, y, margin)
        ctx.save_for_backward(dscores)
        ctx.num_args = 3
        return loss


# ---------------------------------------------------------------- functional helpers


def _zeros_bias(w: torch.Tensor, size: int) -> torch.Tensor:
    """A constant zero bias for layers called with b=None."""
    return torch.zeros(size, dtype=w.dtype, device=w.device)


def conv2d(x, w, b=None, stride=1, pad=0, dilation=1):
    """Convolution with our backward. x (N, C, H, W), w (F, C, KH, KW), b (F,) or None."""
    b = _zeros_bias(w, w.shape[0]) if b is None else b
    return Conv2dFunction.apply(x, w, b, stride, pad, dilation)


def max_pool2d(x, size=2, stride=2, pad=0):
    """Max pooling with our backward. x (N, C, H, W) -> (N, C, H', W')."""
    return MaxPool2dFunction.apply(x, size, stride, pad)


def avg_pool2d(x, size=2, stride=2, pad=0):
    """Average pooling (zero padding counted) with our backward."""
    return AvgPool2dFunction.apply(x, size, stride, pad)


def affine(x, w, b=None):
    """x.reshape(N, D) @ w + b with our backward; w is (D, M), the transpose of nn.Linear's."""
    b = _zeros_bias(w, w.shape[1]) if b is None else b
    return AffineFunction.apply(x, w, b)


def batch_norm(x, gamma, beta, state: MutableMapping, train=True, momentum=0.9, eps=1e-5):
    """Batch normalisation of x (N, D) or (N, C, H, W), with our convention for momentum (the
    weight of the old running value)."""
    return BatchNormFunction.apply(x, gamma, beta, state, train, momentum, eps)


def apply_dropout(x, keep_prob=0.5, train=True, inverted=True, seed=None):
    """Dropout with our backward. keep_prob is the probability of KEEPING a unit."""
    return DropoutFunction.apply(x, keep_prob, train, inverted, seed)


def sigmoid(x):
    """The logistic sigmoid with our backward."""
    return SigmoidFunction.apply(x)


def tanh(x):
    """tanh with our backward."""
    return TanhFunction.apply(x)


def relu(x):
    """max(0, x) with our backward."""
    return ReLUFunction.apply(x)


def leaky_relu(x, negative_slope=0.01):
    """Leaky ReLU with our backward."""
    return LeakyReLUFunction.apply(x, negative_slope)


def prelu(x, alpha):
    """Parametric ReLU with our backward; alpha of shape () or (C,), C = x.shape[1]."""
    return PReLUFunction.apply(x, alpha)


def elu(x, alpha=1.0):
    """ELU with our backward."""
    return ELUFunction.apply(x, alpha)


def selu(x):
    """SELU with our backward."""
    return SELUFunction.apply(x)


def gelu(x, approximate="none"):
    """GELU (exact, or approximate="tanh") with our backward."""
    return GELUFunction.apply(x, approximate)


def maxout(x, w, b):
    """Maxout with our backward. x (N, D), w (K, D, M), b (K, M) -> (N, M)."""
    return MaxoutFunction.apply(x, w, b)


def cross_entropy(scores, y):
    """Mean softmax cross-entropy (softmax_loss) as a differentiable 0-dim tensor: the same value
    as torch.nn.functional.cross_entropy(scores, y)."""
    return SoftmaxLossFunction.apply(scores, y)


def svm_hinge_loss(scores, y, margin=1.0):
    """Mean multiclass hinge loss (svm_loss) as a differentiable 0-dim tensor; equal to
    C * torch.nn.functional.multi_margin_loss(scores, y, margin=margin)."""
    return SVMLossFunction.apply(scores, y, margin)
