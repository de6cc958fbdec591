"""nn.Modules built on our autograd Functions: drop-in twins of torch.nn's layers.

Each module takes torch.nn's constructor arguments and keeps torch.nn's parameter and buffer names
and shapes (Conv2d.weight is (F, C, KH, KW), Linear.weight is (out, in), BatchNorm2d has
running_mean / running_var / num_batches_tracked), with the same default initialisation, so a
state_dict moves freely between the two and, from the same seed, both start from the same
weights. Only the arithmetic differs: the forward and backward passes are the course's own.

`swap_layers(model)` replaces torch.nn layers inside an existing network by these (and
``to="torch"`` back again), copying weights and buffers, so a real network can be trained on our
layers and compared with itself.

Two deliberate differences from torch.nn:

- ``Dropout(keep_prob)`` takes the probability of KEEPING a unit; torch.nn.Dropout(p) takes the
  probability of DROPPING one. ``torch.nn.Dropout(p=0.2)`` is ``Dropout(keep_prob=0.8)``.
- BatchNorm's ``momentum`` is torch's (weight of the *new* batch statistic, default 0.1), for
  drop-in use; the functional layer `batchnorm_forward` uses the course's (weight of the *old*
  running value, default 0.9) and the module converts.

``inplace=True`` is accepted where torch.nn accepts it and ignored: our layers never overwrite
their input.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import init

from cnnlib.arithmetic import same_padding
from cnnlib.numpy._checks import (
    as_pair,
    check_number,
    check_positive_int,
    check_probability,
    describe,
)
from cnnlib.numpy.init import as_generator

from .functions import (
    affine,
    apply_dropout,
    avg_pool2d,
    batch_norm,
    conv2d,
    elu,
    gelu,
    leaky_relu,
    max_pool2d,
    maxout,
    prelu,
    relu,
    selu,
    sigmoid,
    tanh,
)

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Maxout",
    "PReLU",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "init_weights",
    "set_weights",
    "swap_layers",
]


def _reset_like_torch(weight: nn.Parameter, bias: nn.Parameter | None) -> None:
    """torch.nn.Linear's and Conv2d's default initialisation: weights and bias uniform in
    ±1/sqrt(fan_in) (kaiming_uniform_ with a = sqrt(5) is exactly that), drawn in the same order
    from the same generator, so a seed gives torch's numbers."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


def _factory(module: nn.Module) -> dict:
    """device and dtype of a module's first floating-point parameter or buffer (for copies)."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return {"device": tensor.device, "dtype": tensor.dtype}
    return {}


class _Unsupported(ValueError):
    """A torch.nn layer with an option our layers do not implement."""


def _require(module: nn.Module, **defaults) -> None:
    """Raise _Unsupported unless each named attribute of `module` has the given value."""
    for name, wanted in defaults.items():
        got = getattr(module, name)
        if got != wanted and not (isinstance(got, tuple) and set(got) == {wanted}):
            raise _Unsupported(f"{name}={got!r} is not implemented (only {name}={wanted!r})")


def _check_last_axis(x, layer: nn.Module) -> None:
    """x must be a tensor (..., in_features) for `layer`, which maps its last axis."""
    if not isinstance(x, torch.Tensor) or x.ndim == 0 or x.shape[-1] != layer.in_features:
        raise ValueError(
            f"x must have shape (..., {layer.in_features}) for {type(layer).__name__}("
            f"{layer.in_features}, {layer.out_features}), got {describe(x)}"
        )


def _copied(new: nn.Module, old: nn.Module) -> nn.Module:
    """`new` with `old`'s parameters, buffers and train/eval mode."""
    new.load_state_dict(old.state_dict())
    return new.train(old.training)


# ---------------------------------------------------------------- conv and linear


class Conv2d(nn.Module):
    """2-D convolution with our forward and backward (conv_forward / conv_backward).

    Arguments as torch.nn.Conv2d (no groups, dilation and padding ints or pairs, zero padding):
    in_channels C, out_channels F, kernel_size KH x KW, stride, padding, dilation, bias.
    weight: (F, C, KH, KW), bias: (F,) or None. x (N, C, H, W) -> (N, F, H', W').
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, device=None, dtype=None):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = as_pair("kernel_size", kernel_size)
        self.stride = as_pair("stride", stride)
        self.padding = as_pair("padding", padding, 0)
        self.dilation = as_pair("dilation", dilation)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty((self.out_channels, self.in_channels, *self.kernel_size), **factory)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            _reset_like_torch(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_torch(cls, module: nn.Conv2d) -> Conv2d:
        _require(module, groups=1, padding_mode="zeros")
        padding = module.padding
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if module.stride != (1, 1):
                raise _Unsupported("padding='same' with a stride > 1 is not implemented")
            try:
                padding = tuple(map(same_padding, module.kernel_size, module.dilation))
            except ValueError as error:
                raise _Unsupported(f"padding='same' with an even kernel: {error}") from error
        new = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                  padding, module.dilation, bias=module.bias is not None, **_factory(module))
        return _copied(new, module)

    def to_torch(self) -> nn.Conv2d:
        new = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                        self.padding, self.dilation, bias=self.bias is not None,
                        **_factory(self))
        return _copied(new, self)


class Linear(nn.Module):
    """Fully-connected layer with our forward and backward (affine_forward / affine_backward).

    Arguments and parameters as torch.nn.Linear: weight (out_features, in_features), bias
    (out_features,) or None. Like torch.nn.Linear it maps the last axis, x (..., in_features) ->
    (..., out_features); the affine layer wants w as (in, out), so it gets weight.T.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty((self.out_features, self.in_features), **factory)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            _reset_like_torch(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_axis(x, self)
        rows = x.reshape(-1, self.in_features)
        out = affine(rows, self.weight.T, self.bias)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_torch(cls, module: nn.Linear) -> Linear:
        new = cls(module.in_features, module.out_features, bias=module.bias is not None,
                  **_factory(module))
        return _copied(new, module)

    def to_torch(self) -> nn.Linear:
        new = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        **_factory(self))
        return _copied(new, self)


# ---------------------------------------------------------------- pooling


class _Pool2d(nn.Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = as_pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else as_pair("stride", stride)
        self.padding = as_pair("padding", padding, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def to_torch(self) -> nn.Module:
        return self.torch_class(self.kernel_size, self.stride, self.padding).train(self.training)


class MaxPool2d(_Pool2d):
    """Max pooling with our forward and backward. Arguments as torch.nn.MaxPool2d (kernel_size,
    stride defaulting to kernel_size, padding; no dilation or ceil_mode)."""

    torch_class = nn.MaxPool2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    @classmethod
    def from_torch(cls, module: nn.MaxPool2d) -> MaxPool2d:
        _require(module, dilation=1, ceil_mode=False, return_indices=False)
        return cls(module.kernel_size, module.stride, module.padding).train(module.training)


class AvgPool2d(_Pool2d):
    """Average pooling with our forward and backward. Arguments as torch.nn.AvgPool2d
    (kernel_size, stride defaulting to kernel_size, padding); padding zeros count in the mean
    (torch's default count_include_pad=True)."""

    torch_class = nn.AvgPool2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    @classmethod
    def from_torch(cls, module: nn.AvgPool2d) -> AvgPool2d:
        _require(module, ceil_mode=False, count_include_pad=True, divisor_override=None)
        return cls(module.kernel_size, module.stride, module.padding).train(module.training)


# ---------------------------------------------------------------- batch normalisation


class _BatchNorm(nn.Module):
    """Arguments, parameters and buffers as torch.nn.BatchNorm1d/2d.

    momentum: torch's convention, the weight of the NEW batch statistic (default 0.1), or None
    for a plain average over all batches seen; converted to the course's convention (the weight
    of the old value, 1 - momentum) for batchnorm_forward.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.eps = check_number("eps", eps, 0.0, strict_minimum=True)
        self.momentum = None if momentum is None else check_number("momentum", momentum, 0.0, 1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        factory = {"device": device, "dtype": dtype}
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(self.num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features, **factory))
            self.register_buffer("running_var", torch.ones(self.num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.affine:
            gamma, beta = self.weight, self.bias
        else:
            gamma = torch.ones(self.num_features, dtype=x.dtype, device=x.device)
            beta = torch.zeros_like(gamma)
        if not self.track_running_stats:  # batch statistics always, nothing remembered
            return batch_norm(x, gamma, beta, {}, True, 0.0, self.eps)
        old_weight = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the running value is the mean over the batches so far
                old_weight = 1 - 1 / float(self.num_batches_tracked)
            else:
                old_weight = 1 - self.momentum
        state = {"running_mean": self.running_mean, "running_var": self.running_var}
        return batch_norm(x, gamma, beta, state, self.training, old_weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    @classmethod
    def from_torch(cls, module):
        if module.affine and module.bias is None:
            raise _Unsupported("bias=False with affine=True is not implemented")
        new = cls(module.num_features, module.eps, module.momentum, module.affine,
                  module.track_running_stats, **_factory(module))
        return _copied(new, module)

    def to_torch(self):
        new = self.torch_class(self.num_features, self.eps, self.momentum, self.affine,
                               self.track_running_stats, **_factory(self))
        return _copied(new, self)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of x (N, C) per feature, or of x (N, C, L) per channel over (N, L),
    with our forward and backward. See _BatchNorm for the arguments (torch.nn's)."""

    torch_class = nn.BatchNorm1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3):
            raise ValueError(
                f"x must have shape (N, {self.num_features}) or (N, {self.num_features}, L) for "
                f"BatchNorm1d, got {describe(x)}"
            )
        if x.ndim == 3:  # a sequence: one more spatial axis, per-channel statistics
            return self._normalise(x.unsqueeze(-1)).squeeze(-1)
        return self._normalise(x)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of x (N, C, H, W) per channel over (N, H, W) (spatial batchnorm),
    with our forward and backward. See _BatchNorm for the arguments (torch.nn's)."""

    torch_class = nn.BatchNorm2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(
                f"x must have shape (N, {self.num_features}, H, W) for BatchNorm2d, "
                f"got {describe(x)}"
            )
        return self._normalise(x)


# ---------------------------------------------------------------- dropout


class Dropout(nn.Module):
    """Dropout with our forward and backward.

    !!! keep_prob is the probability of KEEPING a unit, NOT torch.nn.Dropout's p (the probability
    !!! of DROPPING one). torch.nn.Dropout(p=0.2) is Dropout(keep_prob=0.8); Dropout(0.2) keeps
    !!! only one unit in five.

    In train mode each unit is kept with probability keep_prob (inverted scaling by default: kept
    units are divided by keep_prob, so eval mode is the identity); in eval mode nothing is dropped.
    Passing torch's ``p=`` raises a TypeError that says how to convert it.
    """

    def __init__(self, keep_prob=0.5, inverted=True, *, p=None):
        super().__init__()
        if p is not None:
            raise TypeError(
                f"Dropout takes keep_prob, the probability of KEEPING a unit, not torch's p (the "
                f"probability of dropping one): torch.nn.Dropout(p={p}) is "
                f"Dropout(keep_prob={1 - p:g})"
            )
        self.keep_prob = check_probability("keep_prob", keep_prob)
        self.inverted = bool(inverted)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_dropout(x, self.keep_prob, self.training, self.inverted)

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}, inverted={self.inverted}"

    @classmethod
    def from_torch(cls, module: nn.Dropout) -> Dropout:
        if module.p >= 1:
            raise _Unsupported(f"p={module.p} drops every unit (keep_prob would be 0)")
        return cls(keep_prob=1 - module.p).train(module.training)

    def to_torch(self) -> nn.Dropout:
        if not self.inverted:
            raise _Unsupported("torch.nn.Dropout has no vanilla (test-time scaling) mode")
        return nn.Dropout(p=1 - self.keep_prob).train(self.training)


# ---------------------------------------------------------------- activations


class _Activation(nn.Module):
    """An activation without parameters: `options` names the constructor arguments it keeps."""

    options: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self.options)

    @classmethod
    def from_torch(cls, module: nn.Module):
        return cls(**{name: getattr(module, name) for name in cls.options}).train(module.training)

    def to_torch(self) -> nn.Module:
        return self.torch_class(**{name: getattr(self, name) for name in self.options}).train(
            self.training
        )


class ReLU(_Activation):
    """max(0, x) with our backward. inplace is accepted for torch.nn.ReLU's signature, ignored."""

    torch_class = nn.ReLU

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu(x)


class LeakyReLU(_Activation):
    """x for x > 0, negative_slope * x otherwise, with our backward (inplace ignored)."""

    torch_class = nn.LeakyReLU
    options = ("negative_slope",)

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = check_number("negative_slope", negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_relu(x, self.negative_slope)


class ELU(_Activation):
    """ELU with our backward (inplace ignored)."""

    torch_class = nn.ELU
    options = ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = check_number("alpha", alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x, self.alpha)


class SELU(_Activation):
    """SELU (SELU_SCALE * elu(x, SELU_ALPHA)) with our backward (inplace ignored)."""

    torch_class = nn.SELU

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return selu(x)


class GELU(_Activation):
    """GELU, exact or approximate="tanh", with our backward."""

    torch_class = nn.GELU
    options = ("approximate",)

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f'approximate must be "none" or "tanh", got {approximate!r}')
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(x, self.approximate)


class Sigmoid(_Activation):
    """The logistic sigmoid with our backward."""

    torch_class = nn.Sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid(x)


class Tanh(_Activation):
    """tanh with our backward."""

    torch_class = nn.Tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


class PReLU(nn.Module):
    """Parametric ReLU with our backward. Arguments and parameter as torch.nn.PReLU:
    weight (num_parameters,) initialised to `init`; num_parameters is 1 (one slope shared by
    every unit) or the number of channels C (axis 1 of x)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = check_positive_int("num_parameters", num_parameters)
        self.init = check_number("init", init)
        self.weight = nn.Parameter(
            torch.full((self.num_parameters,), self.init, device=device, dtype=dtype)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one shared slope is a (1,) parameter, as in torch; prelu wants it as shape ()
        alpha = self.weight.reshape(()) if self.num_parameters == 1 else self.weight
        return prelu(x, alpha)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    @classmethod
    def from_torch(cls, module: nn.PReLU) -> PReLU:
        new = cls(module.num_parameters, module.init, **_factory(module))
        return _copied(new, module)

    def to_torch(self) -> nn.PReLU:
        return _copied(nn.PReLU(self.num_parameters, self.init, **_factory(self)), self)


class Maxout(nn.Module):
    """Maxout over num_pieces affine pieces (no torch.nn twin): x (..., in_features) ->
    (..., out_features). weight (num_pieces, in_features, out_features), bias (num_pieces,
    out_features), each piece initialised as a torch.nn.Linear would be (uniform in
    ±1/sqrt(in_features))."""

    def __init__(self, in_features, out_features, num_pieces=2, device=None, dtype=None):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.num_pieces = check_positive_int("num_pieces", num_pieces)
        factory = {"device": device, "dtype": dtype}
        shape = (self.num_pieces, self.in_features, self.out_features)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(shape[0], shape[2], **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_features)
        with torch.no_grad():
            init.uniform_(self.weight, -bound, bound)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_axis(x, self)
        out = maxout(x.reshape(-1, self.in_features), self.weight, self.bias)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"num_pieces={self.num_pieces}")


# ---------------------------------------------------------------- weights from cnnlib.numpy


def _numpy_layout(layer: nn.Module) -> str | None:
    """How `layer` stores its weight, read in cnnlib.numpy's layout: "conv" (F, C, KH, KW) as
    is, "linear" (in, out) = torch's (out, in) transposed, "maxout" (K, D, M) as is; None for a
    layer without such a weight."""
    if isinstance(layer, Conv2d | nn.Conv2d):
        return "conv"
    if isinstance(layer, Linear | nn.Linear):
        return "linear"
    if isinstance(layer, Maxout):
        return "maxout"
    return None


def set_weights(layer: nn.Module, weight, bias=None) -> nn.Module:
    """Load a weight array in cnnlib.numpy's layout into a Conv2d, Linear or Maxout (ours or
    torch.nn's), converting to the layer's dtype and device; bias=None sets the bias to zero.

    weight: (F, C, KH, KW) for a conv layer; (in, out) for a linear layer, as cnnlib.numpy's
    affine layer and initialisers use it (torch keeps the transpose); (K, D, M) for maxout.
    returns: the layer, so that ``set_weights(Linear(64, 10), cn.he((64, 10), rng))`` builds one.
    """
    layout = _numpy_layout(layer)
    if layout is None:
        raise TypeError(f"layer must be a Conv2d, Linear or Maxout, got {type(layer).__name__}")
    weight = torch.as_tensor(weight)
    wanted = tuple(layer.weight.shape)
    if layout == "linear":
        wanted = wanted[::-1]
    if tuple(weight.shape) != wanted:
        raise ValueError(
            f"weight must have shape {wanted} for {type(layer).__name__} in cnnlib.numpy's "
            f"layout, got {tuple(weight.shape)}"
        )
    with torch.no_grad():
        layer.weight.copy_(weight.T if layout == "linear" else weight)
        if layer.bias is not None and bias is None:
            layer.bias.zero_()
        elif layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(bias))
    return layer


def init_weights(model: nn.Module, initialiser, rng=None) -> nn.Module:
    """Re-initialise every Conv2d, Linear and Maxout in `model` (itself included) with a
    cnnlib.numpy initialiser, biases zero: the slides' schemes on a torch network.

    initialiser: a function (shape, rng) -> array, such as cn.xavier, cn.he or
    ``lambda shape, rng: cn.small_random(shape, 0.01, rng)``. It gets the weight's shape in
    cnnlib.numpy's layout (see set_weights), so its fan-in is the layer's: C*KH*KW for a conv
    layer, `in` for a linear one; a maxout layer gets one (D, M) draw per piece. Layers are drawn
    in module order from one generator (rng: a Generator or an int seed), so a seed gives the
    same network every time. returns: the model.
    """
    rng = as_generator(rng)
    for layer in model.modules():
        layout = _numpy_layout(layer)
        if layout == "maxout":
            pieces, d, m = layer.weight.shape
            set_weights(layer, np.stack([initialiser((d, m), rng) for _ in range(pieces)]))
        elif layout == "linear":
            set_weights(layer, initialiser((layer.in_features, layer.out_features), rng))
        elif layout == "conv":
            set_weights(layer, initialiser(tuple(layer.weight.shape), rng))
    return model


# ---------------------------------------------------------------- swapping layers

# torch.nn class -> our class; exact types only, so a subclass with its own forward is left alone
_OURS = {
    nn.Conv2d: Conv2d,
    nn.Linear: Linear,
    nn.MaxPool2d: MaxPool2d,
    nn.AvgPool2d: AvgPool2d,
    nn.BatchNorm1d: BatchNorm1d,
    nn.BatchNorm2d: BatchNorm2d,
    nn.Dropout: Dropout,
    nn.ReLU: ReLU,
    nn.LeakyReLU: LeakyReLU,
    nn.PReLU: PReLU,
    nn.ELU: ELU,
    nn.SELU: SELU,
    nn.GELU: GELU,
    nn.Sigmoid: Sigmoid,
    nn.Tanh: Tanh,
}
_TORCH = {ours: theirs for theirs, ours in _OURS.items()}


def _convert(module: nn.Module, to: str) -> nn.Module | None:
    """The converted twin of `module`, or None if it is not a layer of the other family."""
    if to == "cnnlib" and type(module) in _OURS:
        return _OURS[type(module)].from_torch(module)
    if to == "torch" and type(module) in _TORCH:
        return module.to_torch()
    return None


def swap_layers(model: nn.Module, to: str = "cnnlib") -> nn.Module:
    """Replace the torch.nn layers of `model` by ours (to="cnnlib"), or ours by torch.nn's
    (to="torch"), copying parameters, buffers and train/eval mode.

    Swapped: Conv2d, Linear, MaxPool2d, AvgPool2d, BatchNorm1d/2d, Dropout, ReLU, LeakyReLU,
    PReLU, ELU, SELU, GELU, Sigmoid, Tanh. Everything else (nn.Flatten, a custom block's own
    code, functional calls inside a forward such as torch.relu) stays as it is. A layer using an
    option ours lack (groups, ceil_mode, dilated pooling, ...) is left as it was, with a warning.

    The model is changed in place and returned; if `model` is itself one of the swapped layers,
    its twin is returned instead. Example::

        net = torchvision.models.resnet18()        # or any nn.Module
        swap_layers(net)                           # now trains on the course's backward passes
    """
    if to not in ("cnnlib", "torch"):
        raise ValueError(f'to must be "cnnlib" or "torch", got {to!r}')
    try:
        converted = _convert(model, to)
    except _Unsupported as reason:
        warnings.warn(f"swap_layers: kept {model!r}: {reason}", stacklevel=2)
        return model
    if converted is not None:
        return converted
    for name, child in model.named_children():
        try:
            converted = _convert(child, to)
        except _Unsupported as reason:
            warnings.warn(f"swap_layers: kept {name} = {child!r}: {reason}", stacklevel=2)
            continue
        if converted is None:
            swap_layers(child, to)
        else:
            setattr(model, name, converted)
    return model
