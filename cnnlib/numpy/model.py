"""Layer objects and a Sequential model on top of the functional NumPy layers.

The functional layers (`conv_forward`, `relu_backward`, ...) make every array explicit, which is
how the lectures derive them. To train a network you want the opposite: objects that keep their
parameters, caches and gradients to themselves. Each layer here has

    params    dict name -> array (the learnable parameters; empty for ReLU and pooling)
    grads     dict name -> array, filled by backward, the same names and shapes as params
    forward(x, train=True) -> out        (remembers the cache for backward)
    backward(dout) -> dx                 (fills grads)

and `Sequential(*layers, reg=0.0)` chains them into a classifier with a softmax loss and an L2
penalty 0.5 * reg * ||w||^2 on every weight (not on biases or batch-norm parameters). Its
`params` and `grads` are flat dicts with names "<layer index>.<name>", e.g. "0.w", "5.b", which
is what `Solver` updates.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, MutableMapping

import numpy as np

from cnnlib.arithmetic import conv_output_shape, pool_output_shape, same_padding

# The functional layers are looked up as module attributes when a layer runs, not imported by
# name here: this module then imports even while a functional module is being rewritten.
from . import activations as _activations
from . import batchnorm as _batchnorm
from . import conv as _conv
from . import dropout as _dropout
from . import init as _init
from . import layers as _layers
from . import losses as _losses
from . import pool as _pool
from . import regularization as _regularization
from ._checks import as_pair, check_ndim, check_positive_int, check_probability, describe

__all__ = [
    "Affine",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "Dropout",
    "Layer",
    "LeakyReLU",
    "MaxPool",
    "ReLU",
    "Sequential",
    "SpatialBatchNorm",
    "ThreeLayerConvNet",
]


def _initial_weights(shape: tuple[int, ...], weight_scale, rng, dtype) -> np.ndarray:
    """He init for weight_scale=None; 'he', 'xavier' or 'glorot' by name; a float: scale*randn."""
    if weight_scale is None or weight_scale in ("he", "kaiming"):
        return _init.he(shape, rng=rng, dtype=dtype)
    if weight_scale == "xavier":
        return _init.xavier(shape, rng=rng, dtype=dtype)
    if weight_scale == "glorot":
        return _init.glorot(shape, rng=rng, dtype=dtype)
    if isinstance(weight_scale, str):
        raise ValueError(
            f"weight_scale must be None (He), 'he', 'xavier', 'glorot' or a number, "
            f"got {weight_scale!r}"
        )
    return _init.small_random(shape, scale=weight_scale, rng=rng, dtype=dtype)


class Layer:
    """A layer: `params`, `grads`, `forward(x, train=True)`, `backward(dout)`.

    `regularized` names the params that the model's L2 penalty applies to; `state` holds arrays
    that are not learnt by gradient descent but belong to the trained model (batch-norm running
    statistics): a checkpoint saves them alongside the params.
    """

    regularized: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.cache = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _cache(self):
        if self.cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward was called before forward: run forward(x) first"
            )
        return self.cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()})"

    def _describe(self) -> str:
        return ""


class Conv(Layer):
    """Convolution: x (N, C, H, W) -> (N, F, H', W'), weights w (F, C, KH, KW), biases b (F,).

    pad=None keeps H and W for odd kernels at stride 1 ("same" padding, (K - 1) // 2).
    weight_scale None means He initialisation (std sqrt(2 / (C*KH*KW))), a number means
    weight_scale * randn, or name one: 'he', 'xavier', 'glorot'. rng: Generator or int seed.
    """

    regularized = ("w",)

    def __init__(
        self,
        in_channels: int,
        num_filters: int,
        kernel_size: int = 3,
        stride: int = 1,
        pad: int | None = None,
        dilation: int = 1,
        weight_scale=None,
        rng=None,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        num_filters = check_positive_int("num_filters", num_filters)
        kh, kw = as_pair("kernel_size", kernel_size)
        if pad is None:
            if kh != kw or kh % 2 == 0:
                raise ValueError(
                    f"pad=None ('same' padding) needs one odd kernel size, got {kernel_size!r}: "
                    "pass pad explicitly"
                )
            pad = same_padding(kh, dilation)
        self.stride, self.pad, self.dilation = stride, pad, dilation
        shape = (num_filters, in_channels, kh, kw)
        self.params["w"] = _initial_weights(shape, weight_scale, rng, dtype)
        self.params["b"] = np.zeros(num_filters, dtype=dtype)

    def output_shape(self, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(F, H', W') for an input of shape (C, H, W), by cnnlib.arithmetic's floor formula."""
        num_filters, _, kh, kw = self.params["w"].shape
        return conv_output_shape(
            input_shape, num_filters, (kh, kw), self.stride, self.pad, self.dilation
        )

    def forward(self, x, train=True):
        out, self.cache = _conv.conv_forward(
            x, self.params["w"], self.params["b"], stride=self.stride, pad=self.pad,
            dilation=self.dilation,
        )
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = _conv.conv_backward(dout, self._cache())
        return dx

    def _describe(self):
        f, c, kh, kw = self.params["w"].shape
        return f"{c} -> {f}, kernel {kh}x{kw}, stride {self.stride}, pad {self.pad}"


class Affine(Layer):
    """Fully connected: x (N, d1, ..., dk) is flattened to (N, D), out = x @ w + b: (N, M).

    w (D, M), b (M,). weight_scale as for Conv (None: He, std sqrt(2 / D)).
    """

    regularized = ("w",)

    def __init__(self, in_dim: int, out_dim: int, weight_scale=None, rng=None, dtype=np.float64):
        super().__init__()
        in_dim = check_positive_int("in_dim", in_dim)
        out_dim = check_positive_int("out_dim", out_dim)
        self.params["w"] = _initial_weights((in_dim, out_dim), weight_scale, rng, dtype)
        self.params["b"] = np.zeros(out_dim, dtype=dtype)

    def forward(self, x, train=True):
        out, self.cache = _layers.affine_forward(x, self.params["w"], self.params["b"])
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = _layers.affine_backward(dout, self._cache())
        return dx

    def _describe(self):
        return "{} -> {}".format(*self.params["w"].shape)


class ReLU(Layer):
    """max(0, x), elementwise."""

    def forward(self, x, train=True):
        out, self.cache = _activations.relu_forward(x)
        return out

    def backward(self, dout):
        return _activations.relu_backward(dout, self._cache())


class LeakyReLU(Layer):
    """x where x > 0, negative_slope * x elsewhere: a small gradient survives for x < 0."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x, train=True):
        out, self.cache = _activations.leaky_relu_forward(x, self.negative_slope)
        return out

    def backward(self, dout):
        return _activations.leaky_relu_backward(dout, self._cache())

    def _describe(self):
        return f"negative_slope={self.negative_slope}"


class _Pool(Layer):
    kind = "max"  # calls cnnlib.numpy.pool's {kind}_pool_forward / {kind}_pool_backward

    def __init__(self, size: int = 2, stride: int | None = None, pad: int = 0) -> None:
        super().__init__()
        self.size = size
        self.stride = size if stride is None else stride
        self.pad = pad

    def output_shape(self, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(C, H', W') for an input of shape (C, H, W)."""
        return pool_output_shape(input_shape, self.size, self.stride, self.pad)

    def forward(self, x, train=True):
        pool_forward = getattr(_pool, f"{self.kind}_pool_forward")
        out, self.cache = pool_forward(x, size=self.size, stride=self.stride, pad=self.pad)
        return out

    def backward(self, dout):
        return getattr(_pool, f"{self.kind}_pool_backward")(dout, self._cache())

    def _describe(self):
        return f"size={self.size}, stride={self.stride}, pad={self.pad}"


class MaxPool(_Pool):
    """Max pooling over size x size windows (stride defaults to size: no overlap)."""


class AvgPool(_Pool):
    """Average pooling over size x size windows (stride defaults to size: no overlap)."""

    kind = "avg"


class BatchNorm(Layer):
    """Batch normalisation of x (N, D) per feature: params gamma, beta (D,), running statistics in
    `state`. Training normalises with the batch's statistics and updates the running ones;
    evaluation (train=False) uses the running ones.
    """

    kind = ""  # calls cnnlib.numpy.batchnorm's {kind}batchnorm_forward / _backward

    def __init__(
        self, num_features: int, momentum: float = 0.9, eps: float = 1e-5, dtype=np.float64
    ) -> None:
        super().__init__()
        num_features = check_positive_int("num_features", num_features)
        self.momentum, self.eps = momentum, eps
        self.params["gamma"] = np.ones(num_features, dtype=dtype)
        self.params["beta"] = np.zeros(num_features, dtype=dtype)
        self.state["running_mean"] = np.zeros(num_features, dtype=dtype)
        self.state["running_var"] = np.ones(num_features, dtype=dtype)

    def forward(self, x, train=True):
        batchnorm_forward = getattr(_batchnorm, f"{self.kind}batchnorm_forward")
        out, self.cache = batchnorm_forward(
            x, self.params["gamma"], self.params["beta"], self.state, train=train,
            momentum=self.momentum, eps=self.eps,
        )
        return out

    def backward(self, dout):
        batchnorm_backward = getattr(_batchnorm, f"{self.kind}batchnorm_backward")
        dx, self.grads["gamma"], self.grads["beta"] = batchnorm_backward(dout, self._cache())
        return dx

    def _describe(self):
        return f"{self.params['gamma'].shape[0]}, momentum={self.momentum}, eps={self.eps}"


class SpatialBatchNorm(BatchNorm):
    """Batch normalisation of x (N, C, H, W) per channel, with statistics over (N, H, W)."""

    kind = "spatial_"


class Dropout(Layer):
    """Inverted dropout: keeps each unit with probability keep_prob during training and scales
    the survivors by 1/keep_prob, so evaluation (train=False) is the identity.

    `seed` (int, Generator or None) makes the sequence of masks reproducible.
    """

    def __init__(self, keep_prob: float = 0.5, seed=None) -> None:
        super().__init__()
        self.keep_prob = check_probability("keep_prob", keep_prob)
        self.rng = _init.as_generator(seed)

    def forward(self, x, train=True):
        # a fresh mask every call, drawn from this layer's own generator
        mask_seed = int(self.rng.integers(2**31)) if train else None
        out, self.cache = _dropout.dropout_forward(
            x, keep_prob=self.keep_prob, train=train, inverted=True, seed=mask_seed
        )
        return out

    def backward(self, dout):
        return _dropout.dropout_backward(dout, self._cache())

    def _describe(self):
        return f"keep_prob={self.keep_prob}"


class _FlatView(MutableMapping):
    """The arrays of every layer's `params` (or `state`) under names "<index>.<name>".

    Reading gives the layers' own arrays; assigning `model.params["0.w"] = w` puts a new array
    into layer 0 (after checking its shape), which is how Solver updates the model.
    """

    def __init__(self, layers: list[Layer], attribute: str) -> None:
        self._layers, self._attribute = layers, attribute

    def _locate(self, key: str) -> tuple[dict, str]:
        index, _, name = str(key).partition(".")
        if index.isdigit() and int(index) < len(self._layers):
            arrays = getattr(self._layers[int(index)], self._attribute)
            if name in arrays:
                return arrays, name
        raise KeyError(f"{key!r}: the model's {self._attribute} are {list(self)}")

    def __getitem__(self, key):
        arrays, name = self._locate(key)
        return arrays[name]

    def __setitem__(self, key, value):
        arrays, name = self._locate(key)
        old = arrays[name]
        if getattr(value, "shape", None) != old.shape:
            raise ValueError(
                f"{self._attribute}[{key!r}] must have shape {old.shape}, got {describe(value)}"
            )
        arrays[name] = value

    def __delitem__(self, key):
        raise TypeError(f"the model's {self._attribute} cannot be deleted (tried {key!r})")

    def __iter__(self) -> Iterator[str]:
        for index, layer in enumerate(self._layers):
            for name in getattr(layer, self._attribute):
                yield f"{index}.{name}"

    def __len__(self) -> int:
        return sum(len(getattr(layer, self._attribute)) for layer in self._layers)

    def __repr__(self) -> str:
        return repr({key: getattr(value, "shape", value) for key, value in self.items()})


class Sequential:
    """Layers applied one after the other, ending in class scores, trained with a softmax loss.

    loss(X) -> scores (N, num_classes), evaluated with train=False (running batch-norm
    statistics, no dropout). loss(X, y) -> (loss, grads): the mean softmax loss plus
    0.5 * reg * ||w||^2 for every weight, and the gradient of that with respect to every param.
    """

    def __init__(self, *layers: Layer, reg: float = 0.0) -> None:
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{index}] must be a Layer, got {describe(layer)}")
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not reg >= 0:
            raise ValueError(f"reg must be a number >= 0, got {reg!r}")
        self.layers = list(layers)
        self.reg = float(reg)

    @property
    def params(self) -> _FlatView:
        """Every learnable array, by name ("0.w", "0.b", ...); assigning replaces it."""
        return _FlatView(self.layers, "params")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the last `loss(X, y)`, under the names of `params`."""
        return dict(_FlatView(self.layers, "grads"))

    @property
    def state(self) -> _FlatView:
        """Arrays that are part of the trained model but not learnt (batch-norm running stats)."""
        return _FlatView(self.layers, "state")

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """Scores (N, num_classes) if y is None, else (loss, grads) for a training step."""
        if y is None:
            return self.forward(X, train=False)
        scores = self.forward(X, train=True)
        loss, dscores = _losses.softmax_loss(scores, y)
        loss = float(loss)
        self.backward(dscores)
        if self.reg:
            for layer in self.layers:
                for name in layer.regularized:
                    reg_loss, dw = _regularization.l2_regularization(layer.params[name], self.reg)
                    loss += float(reg_loss)
                    layer.grads[name] = layer.grads[name] + dw
        return loss, self.grads

    def predict(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted class of each sample (N,), evaluated `batch_size` samples at a time."""
        batch_size = check_positive_int("batch_size", batch_size)
        scores = [self.loss(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
        return np.concatenate(scores).argmax(axis=1)

    def __repr__(self) -> str:
        lines = [f"  ({index}) {layer!r}" for index, layer in enumerate(self.layers)]
        return f"{type(self).__name__}(reg={self.reg},\n" + "\n".join(lines) + "\n)"


class ThreeLayerConvNet(Sequential):
    """conv - relu - 2x2 max pool - affine - relu - affine, with a softmax loss.

    input_dim: (C, H, W) of one sample. The conv keeps H and W ("same" padding, odd
    filter_size), the pool halves them, the affine layers map C'*H/2*W/2 -> hidden_dim ->
    num_classes. weight_scale None: He initialisation; a number: weight_scale * randn.
    Params: "0.w", "0.b" (conv), "3.w", "3.b" (hidden affine), "5.w", "5.b" (output affine).
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 8, 8),
        num_filters: int = 16,
        filter_size: int = 3,
        hidden_dim: int = 64,
        num_classes: int = 10,
        weight_scale=None,
        reg: float = 0.0,
        dtype=np.float32,
        seed=0,
    ) -> None:
        if not isinstance(input_dim, tuple | list) or len(input_dim) != 3:
            raise ValueError(f"input_dim must be (C, H, W), got {input_dim!r}")
        channels = check_positive_int("input_dim[0]", input_dim[0])
        rng = _init.as_generator(seed)
        conv = Conv(channels, num_filters, filter_size, weight_scale=weight_scale, rng=rng,
                    dtype=dtype)
        pool = MaxPool(2, 2)
        pooled = pool.output_shape(conv.output_shape(tuple(input_dim)))
        flat = int(np.prod(pooled))
        super().__init__(
            conv,
            ReLU(),
            pool,
            Affine(flat, check_positive_int("hidden_dim", hidden_dim), weight_scale, rng, dtype),
            ReLU(),
            Affine(hidden_dim, check_positive_int("num_classes", num_classes), weight_scale,
                   rng, dtype),
            reg=reg,
        )
        self.input_dim = tuple(input_dim)

    def loss(self, X, y=None):
        check_ndim("X", X, 4, "(N, C, H, W)")
        if tuple(X.shape[1:]) != self.input_dim:
            raise ValueError(
                f"X must have shape (N, {', '.join(map(str, self.input_dim))}) for this model, "
                f"got {tuple(X.shape)}"
            )
        return super().loss(X, y)
