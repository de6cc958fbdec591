"""Convolution arithmetic: output sizes, receptive fields, and what a layer costs.

Everything here is plain integer arithmetic on layer hyperparameters, so lectures, assignments,
the model zoo's accounting and the tests share one definition of each formula.

Conventions (the same as PyTorch's):

- Spatial sizes use the floor formula, one axis at a time::

      H' = (H + 2*pad - K_eff) // stride + 1,    K_eff = dilation*(K - 1) + 1

  `strict=True` raises instead of flooring when the window does not tile the padded input exactly.
- A kernel, stride, padding or dilation is either one int (the same along both axes) or a pair
  `(along H, along W)`.
- Multiply-adds (MACs) count one multiplication and one addition as one operation, as the lecture
  tables do: a conv costs `(C_out * H' * W') * (C_in * KH * KW)`, a fully-connected layer
  `D_in * D_out`, and a pooling layer `KH * KW` per output element.
- Memory is the size of a layer's output activations, in bytes or KiB ("KB" on the slides),
  4 bytes per element (float32) unless told otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Conv",
    "LayerStats",
    "Linear",
    "Pool",
    "activation_memory",
    "conv_macs",
    "conv_output_shape",
    "conv_output_size",
    "conv_params",
    "effective_kernel_size",
    "format_table",
    "layer_table",
    "linear_macs",
    "linear_params",
    "locally_connected_params",
    "memory_kb",
    "pool_flops",
    "pool_output_shape",
    "pool_output_size",
    "receptive_field",
    "receptive_fields",
    "same_padding",
    "total_stride",
    "unread_positions",
    "window_taps",
]


# --------------------------------------------------------------------------------------------
# Argument checking: students call these with all sorts of values, so say exactly what is wrong.


def _int(name: str, value, minimum: int) -> int:
    """`value` as an int, or a TypeError/ValueError that names the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or an (H, W) pair, as an (H, W) pair of checked ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (along H, along W), got {len(value)} values: "
                f"{tuple(value)!r}"
            )
        return _int(f"{name}[0]", value[0], minimum), _int(f"{name}[1]", value[1], minimum)
    v = _int(name, value, minimum)
    return v, v


def _flag(name: str, value) -> bool:
    """`value` if it is True or False; a TypeError naming the argument otherwise.

    `bias='no'` is a non-empty string, so truth-testing it would count the biases silently.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def _shape(name: str, shape, ndim: int | None = None) -> tuple[int, ...]:
    """A shape as a tuple of positive ints; `ndim` demands that many dimensions."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got {len(shape)}: {tuple(shape)!r}")
    return tuple(_int(f"{name}[{i}]", s, 1) for i, s in enumerate(shape))


# --------------------------------------------------------------------------------------------
# Output sizes


def effective_kernel_size(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: `dilation*(kernel - 1) + 1` input positions.

    A 3-wide kernel with dilation 2 touches positions 0, 2 and 4, so it spans 5.
    """
    kernel = _int("kernel", kernel, 1)
    dilation = _int("dilation", dilation, 1)
    return dilation * (kernel - 1) + 1


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    pad: int = 0,
    dilation: int = 1,
    *,
    strict: bool = False,
) -> int:
    """Output size of a convolution along one spatial axis.

    size: H (input), kernel: K, stride: S, pad: P (zeros added on *each* side), dilation: D.
    returns: H' = (H + 2*P - K_eff) // S + 1 with K_eff = D*(K - 1) + 1.

    With `strict=True` a stride that does not tile the padded input exactly raises ValueError
    (the floor formula would silently drop the last rows); by default the floor is taken, as
    PyTorch does.

    >>> conv_output_size(227, 11, stride=4)       # AlexNet conv1
    55
    >>> conv_output_size(32, 5, pad=2)            # "same" padding keeps 32
    32
    """
    size = _int("size", size, 1)
    stride = _int("stride", stride, 1)
    pad = _int("pad", pad, 0)
    strict = _flag("strict", strict)
    k_eff = effective_kernel_size(kernel, dilation)
    span = size + 2 * pad - k_eff  # how far the window can slide
    if span < 0:
        raise ValueError(
            f"kernel: the kernel spans {k_eff} positions but the padded input has only "
            f"{size + 2 * pad} (size={size}, pad={pad}); use a smaller kernel or more padding"
        )
    if strict and span % stride:
        raise ValueError(
            f"stride: (size + 2*pad - kernel) = ({size} + {2 * pad} - {k_eff}) = {span} is not "
            f"a multiple of stride={stride}, so the last {span % stride} position(s) of the padded "
            f"input are never covered; change pad or stride, or pass strict=False to floor"
        )
    return span // stride + 1


def _check_pool_pad(kernel, pad, dilation) -> None:
    """Raise unless 2*pad <= the window's span, PyTorch's rule for pooling (one axis)."""
    span = effective_kernel_size(kernel, dilation)
    pad = _int("pad", pad, 0)
    if 2 * pad > span:
        raise ValueError(
            f"pad must be at most half the pooling window's span {span} (so that every window "
            f"covers some real input, as PyTorch demands), wanted pad <= {span // 2}, got {pad}"
        )


def pool_output_size(
    size: int,
    kernel: int,
    stride: int | None = None,
    pad: int = 0,
    dilation: int = 1,
    *,
    strict: bool = False,
) -> int:
    """Output size of a pooling layer along one axis: the conv formula, stride defaulting to kernel.

    >>> pool_output_size(56, 3, stride=2)         # AlexNet pool1: floor(53/2 + 1)
    27

    As in PyTorch, pad may be at most half the window's span (2*pad <= K_eff), so that every
    window covers some real input; more raises ValueError.
    """
    _check_pool_pad(kernel, pad, dilation)
    return conv_output_size(
        size, kernel, kernel if stride is None else stride, pad, dilation, strict=strict
    )


def conv_output_shape(
    input_shape: Sequence[int],
    out_channels: int,
    kernel,
    stride=1,
    pad=0,
    dilation=1,
    *,
    strict: bool = False,
) -> tuple[int, int, int]:
    """Output shape of a conv layer on one image.

    input_shape: (C, H, W); returns (out_channels, H', W'). kernel, stride, pad and dilation are
    ints or (along H, along W) pairs.
    """
    _, h, w = _shape("input_shape", input_shape, ndim=3)
    out_channels = _int("out_channels", out_channels, 1)
    (kh, kw), (sh, sw) = _pair("kernel", kernel, 1), _pair("stride", stride, 1)
    (ph, pw), (dh, dw) = _pair("pad", pad, 0), _pair("dilation", dilation, 1)
    return (
        out_channels,
        conv_output_size(h, kh, sh, ph, dh, strict=strict),
        conv_output_size(w, kw, sw, pw, dw, strict=strict),
    )


def pool_output_shape(
    input_shape: Sequence[int], kernel, stride=None, pad=0, dilation=1, *, strict: bool = False
) -> tuple[int, int, int]:
    """Output shape of a pooling layer: input_shape (C, H, W) -> (C, H', W'); channels unchanged."""
    c = _shape("input_shape", input_shape, ndim=3)[0]
    for k, p, d in zip(
        _pair("kernel", kernel, 1),
        _pair("pad", pad, 0),
        _pair("dilation", dilation, 1),
        strict=True,
    ):
        _check_pool_pad(k, p, d)
    stride = kernel if stride is None else stride
    return conv_output_shape(input_shape, c, kernel, stride, pad, dilation, strict=strict)


def same_padding(kernel: int, dilation: int = 1) -> int:
    """Zero padding per side that keeps the size at stride 1: P = (K_eff - 1) / 2.

    Only odd effective kernels can be padded symmetrically (3 -> 1, 5 -> 2, 7 -> 3); an even one
    raises ValueError.
    """
    k_eff = effective_kernel_size(kernel, dilation)
    if k_eff % 2 == 0:
        raise ValueError(
            f"kernel: an even effective kernel size ({k_eff}, from kernel={kernel}, "
            f"dilation={dilation}) cannot keep the size with the same padding on both sides; "
            f"use an odd kernel"
        )
    return (k_eff - 1) // 2


# --------------------------------------------------------------------------------------------
# Which input positions each output reads


def window_taps(
    size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1
) -> list[list[int]]:
    """Input positions read by each output of a 1-D convolution.

    size: H, kernel: K, stride: S, pad: P (zeros on each side), dilation: D.
    returns: H' lists (H' from `conv_output_size`) of K input positions each; output i
    reads positions i*S - P + j*D for j = 0..K-1. Positions < 0 or >= H are zero padding.

    >>> window_taps(7, 3, stride=2)
    [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    """
    n_out = conv_output_size(size, kernel, stride, pad, dilation)
    return [[i * stride - pad + j * dilation for j in range(kernel)] for i in range(n_out)]


def unread_positions(
    size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1
) -> list[int]:
    """Real input positions (0..H-1, padding excluded) that no output reads.

    They are the trailing positions the floor in the output-size formula drops, and the gaps left
    when the stride is larger than the kernel (or the dilation leaves holes).

    >>> unread_positions(8, 3, stride=2)      # (8 - 3) // 2 + 1 = 3 windows cover 0..6
    [7]
    """
    read = {t for taps in window_taps(size, kernel, stride, pad, dilation) for t in taps}
    return [x for x in range(size) if x not in read]


# --------------------------------------------------------------------------------------------
# Receptive fields


def _layer_list(layers) -> list:
    """layers as a list, or a TypeError naming the argument."""
    if isinstance(layers, str) or not isinstance(layers, Iterable):
        raise TypeError(f"layers must be a list of layers, got {layers!r}")
    return list(layers)


def _kernel_stride_dilation(layer, i: int = 0) -> tuple[int, int, int]:
    """(kernel, stride, dilation) along one axis from a (k, s[, d]) tuple or a Conv/Pool spec;
    `i`, the layer's index, goes into the messages (layers[i] kernel ...)."""
    if isinstance(layer, Conv | Pool):
        k, s, d = layer.kernel, layer.stride, layer.dilation
        s = k if s is None else s
        if not all(isinstance(v, numbers.Integral) for v in (k, s, d)):
            raise ValueError(
                f"layers: receptive fields are computed along one axis; {layer!r} has "
                f"non-square geometry"
            )
        return int(k), int(s), int(d)
    if isinstance(layer, Sequence) and len(layer) in (2, 3):
        k, s, *rest = layer
        return (
            _int(f"layers[{i}] kernel", k, 1),
            _int(f"layers[{i}] stride", s, 1),
            _int(f"layers[{i}] dilation", rest[0] if rest else 1, 1),
        )
    raise TypeError(
        f"layers: each layer must be a (kernel, stride) or (kernel, stride, dilation) tuple "
        f"or a Conv/Pool spec, got {layer!r}"
    )


def receptive_fields(layers: Iterable) -> list[int]:
    """Receptive field (along one axis, in input pixels) after each layer of a stack.

    layers: (kernel, stride) or (kernel, stride, dilation) tuples, or Conv / Pool specs, first
    layer first.

    Each layer widens the field by (K_eff - 1) times the distance between neighbouring positions
    of its input measured in input pixels (the product of the strides before it):
    r_l = r_{l-1} + (K_eff_l - 1) * (S_1 * ... * S_{l-1}),  r_0 = 1.
    """
    field, jump, out = 1, 1, []
    for i, layer in enumerate(_layer_list(layers)):
        k, s, d = _kernel_stride_dilation(layer, i)
        field += (effective_kernel_size(k, d) - 1) * jump
        jump *= s
        out.append(field)
    return out


def receptive_field(layers: Iterable) -> int:
    """Receptive field of a whole stack (see `receptive_fields`); 1 for an empty stack.

    >>> receptive_field([(3, 1)] * 3)     # three 3x3 convs see as far as one 7x7
    7
    """
    fields = receptive_fields(layers)
    return fields[-1] if fields else 1


def total_stride(layers: Iterable) -> int:
    """Distance in input pixels between neighbouring outputs of a stack: the product of strides."""
    return math.prod(
        _kernel_stride_dilation(layer, i)[1] for i, layer in enumerate(_layer_list(layers))
    )


# --------------------------------------------------------------------------------------------
# Parameters, multiply-adds and memory


def conv_params(
    in_channels: int, out_channels: int, kernel, bias: bool = True, groups: int = 1
) -> int:
    """Learnable parameters of a conv layer: weights (C_out, C_in/groups, KH, KW) plus C_out biases.

    Parameter sharing is why this does not depend on the image size. groups=C_in with
    C_out=C_in is a depthwise convolution.

    >>> conv_params(3, 10, 5)             # 10 filters of 5x5x3, plus 10 biases
    760
    """
    c_in, c_out, g = (
        _int("in_channels", in_channels, 1),
        _int("out_channels", out_channels, 1),
        _int("groups", groups, 1),
    )
    if c_in % g or c_out % g:
        raise ValueError(
            f"groups: in_channels={c_in} and out_channels={c_out} must both be multiples of "
            f"groups={g}"
        )
    kh, kw = _pair("kernel", kernel, 1)
    return c_out * (c_in // g) * kh * kw + (c_out if _flag("bias", bias) else 0)


def conv_macs(in_channels: int, out_channels: int, kernel, output_size, groups: int = 1) -> int:
    """Multiply-adds of a conv layer on one image: (C_out * H' * W') * (C_in/groups * KH * KW).

    output_size: H' (square) or (H', W'). Every output element is one dot product between a
    filter and the window under it.

    >>> conv_macs(3, 10, 5, 32)           # 10*32*32 outputs, 75 multiply-adds each
    768000
    """
    weights = conv_params(in_channels, out_channels, kernel, bias=False, groups=groups)
    h_out, w_out = _pair("output_size", output_size, 1)
    # weights / C_out is the size of one filter: the length of each output's dot product.
    return h_out * w_out * weights


def locally_connected_params(
    in_channels: int, out_channels: int, kernel, output_size, bias: bool = True
) -> int:
    """Parameters of a locally connected layer: a conv layer *without* parameter sharing.

    Every one of the C_out * H' * W' outputs has its own C_in*KH*KW weights (and bias).
    """
    h_out, w_out = _pair("output_size", output_size, 1)
    return h_out * w_out * conv_params(in_channels, out_channels, kernel, bias=bias)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully-connected layer: a (D_out, D_in) weight matrix plus D_out biases."""
    d_in, d_out = _int("in_features", in_features, 1), _int("out_features", out_features, 1)
    return d_in * d_out + (d_out if _flag("bias", bias) else 0)


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-adds of a fully-connected layer on one input vector: D_in * D_out."""
    return linear_params(in_features, out_features, bias=False)


def pool_flops(channels: int, kernel, output_size) -> int:
    """Operations of a pooling layer on one image: KH*KW per output element, C*H'*W' of them."""
    c = _int("channels", channels, 1)
    kh, kw = _pair("kernel", kernel, 1)
    h_out, w_out = _pair("output_size", output_size, 1)
    return c * h_out * w_out * kh * kw


def activation_memory(shape, bytes_per_element: int = 4) -> int:
    """Bytes needed to store one activation tensor of `shape` (4 bytes per float32 element)."""
    return math.prod(_shape("shape", shape)) * _int("bytes_per_element", bytes_per_element, 1)


def memory_kb(shape, bytes_per_element: int = 4) -> float:
    """`activation_memory` in KiB (1024 bytes), the "memory (KB)" column of the lecture tables.

    >>> memory_kb((64, 56, 56))           # AlexNet conv1's output
    784.0
    """
    return activation_memory(shape, bytes_per_element) / 1024


# --------------------------------------------------------------------------------------------
# Layer-by-layer accounting of a small network described by layer specs


@dataclass(frozen=True)
class Conv:
    """A conv layer's hyperparameters (ints or (H, W) pairs)."""

    out_channels: int
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    pad: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    bias: bool = True
    groups: int = 1

    def __post_init__(self):
        # checked when the spec is made, so receptive_field and layer_table never see a
        # stride of 0 or a negative kernel
        _int("Conv out_channels", self.out_channels, 1)
        _pair("Conv kernel", self.kernel, 1)
        _pair("Conv stride", self.stride, 1)
        _pair("Conv pad", self.pad, 0)
        _pair("Conv dilation", self.dilation, 1)
        _flag("Conv bias", self.bias)
        _int("Conv groups", self.groups, 1)


@dataclass(frozen=True)
class Pool:
    """A max or average pooling layer; stride defaults to the kernel size."""

    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None
    pad: int | tuple[int, int] = 0
    dilation: int = 1
    kind: str = "max"

    def __post_init__(self):
        kernel = _pair("Pool kernel", self.kernel, 1)
        if self.stride is not None:
            _pair("Pool stride", self.stride, 1)
        pad = _pair("Pool pad", self.pad, 0)
        dilation = _int("Pool dilation", self.dilation, 1)
        for k, p in zip(kernel, pad, strict=True):
            _check_pool_pad(k, p, dilation)
        if self.kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {self.kind!r}")


@dataclass(frozen=True)
class Linear:
    """A fully-connected layer; it flattens its input, so it can follow a conv stack directly."""

    out_features: int
    bias: bool = True

    def __post_init__(self):
        _int("Linear out_features", self.out_features, 1)
        _flag("Linear bias", self.bias)


@dataclass(frozen=True)
class LayerStats:
    """One row of a layer table: output shape (one image), activation memory, parameters, MACs."""

    name: str
    output_shape: tuple[int, ...]
    memory_kb: float
    params: int
    flops: int


def layer_table(
    input_shape: Sequence[int],
    layers: Sequence[Conv | Pool | Linear],
    names: Sequence[str] | None = None,
    bytes_per_element: int = 4,
) -> list[LayerStats]:
    """Walk a network layer by layer and account for each layer, as the lecture's AlexNet table.

    input_shape: (C, H, W) of one image; layers: Conv / Pool / Linear specs in order; names: one
    per layer (default: conv1, pool1, fc1, ... numbered by kind).
    flops counts multiply-adds (see the module docstring).
    """
    shape = _shape("input_shape", input_shape, ndim=3)
    layers = _layer_list(layers)
    if names is not None and len(names) != len(layers):
        raise ValueError(f"names: got {len(names)} names for {len(layers)} layers")
    counts: dict[str, int] = {}
    rows = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv | Pool) and len(shape) != 3:
            raise ValueError(
                f"layers[{i}]: a {type(layer).__name__} needs a (C, H, W) input, got {shape}"
            )
        if isinstance(layer, Conv):
            kind = "conv"
            out = conv_output_shape(
                shape, layer.out_channels, layer.kernel, layer.stride, layer.pad, layer.dilation
            )
            params = conv_params(
                shape[0], layer.out_channels, layer.kernel, layer.bias, layer.groups
            )
            flops = conv_macs(shape[0], layer.out_channels, layer.kernel, out[1:], layer.groups)
        elif isinstance(layer, Pool):
            kind = "pool"
            out = pool_output_shape(shape, layer.kernel, layer.stride, layer.pad, layer.dilation)
            params, flops = 0, pool_flops(out[0], layer.kernel, out[1:])
        elif isinstance(layer, Linear):
            kind = "fc"
            d_in = math.prod(shape)
            out = (_int("out_features", layer.out_features, 1),)
            params = linear_params(d_in, layer.out_features, layer.bias)
            flops = linear_macs(d_in, layer.out_features)
        else:
            raise TypeError(f"layers[{i}] must be a Conv, Pool or Linear spec, got {layer!r}")
        counts[kind] = counts.get(kind, 0) + 1
        name = names[i] if names is not None else f"{kind}{counts[kind]}"
        rows.append(LayerStats(name, out, memory_kb(out, bytes_per_element), params, flops))
        shape = out
    return rows


def format_table(rows: Sequence[LayerStats]) -> str:
    """A printable table of `layer_table` rows with totals (params in units, MACs in millions)."""
    header = f"{'layer':<10} {'output shape':<16} {'memory (KB)':>12} {'params':>12} {'MMACs':>10}"
    lines = [header, "-" * len(header)]
    rows = list(rows) if isinstance(rows, Iterable) and not isinstance(rows, str) else None
    if rows is None or not all(isinstance(r, LayerStats) for r in rows):
        raise TypeError("rows must be a list of LayerStats, as layer_table returns")
    for r in rows:
        shape = "x".join(map(str, r.output_shape))
        lines.append(
            f"{r.name:<10} {shape:<16} {r.memory_kb:>12,.1f} {r.params:>12,} "
            f"{r.flops / 1e6:>10,.1f}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<10} {'':<16} {sum(r.memory_kb for r in rows):>12,.1f} "
        f"{sum(r.params for r in rows):>12,} {sum(r.flops for r in rows) / 1e6:>10,.1f}"
    )
    return "\n".join(lines)
