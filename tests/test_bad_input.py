"""Every public function of cnnlib.arithmetic, cnnlib.numpy and cnnlib.torch under bad input.

The library's promise (DESIGN.md, "Layer contract"): bad input gets a ValueError or TypeError
whose message names the argument; anything it accepts gives the result torch gives (NaN
propagating as torch propagates it), in the dtype it was given, and leaves its inputs as they
were. Never a crash deep inside NumPy, never a silently wrong number, never a mutated input.

How the walk works. Each walked function has a `Spec`: a valid call (its arguments, built
fresh for every case), the role of each argument, and, for the layers, the torch reference that
computes what the function must return. `cases(spec)` turns the roles into the families of bad
input, one case each:

    array       wrong ndim, int / bool / complex arrays, a list, None, a string
    batch       empty batch (N = 0): an error naming it, or the reference's empty result
    values      a NaN, an inf: the reference's result, NaN where torch has NaN
    float16     the whole call in half precision: an error, or float16 out
    float32     the whole call in single precision: float32 out, equal to the reference
    int / pair  zero, negative, float, bool, None, str geometry (and a pair with a bad entry)
    flag        'False', None, 0: strings and ints are not booleans
    number      None, a string, a complex, NaN
    state       integer running statistics, not a dict: an error, and the state unchanged
    cache       None, another layer's cache, a short tuple: an error naming `cache`
    seed        1.5, '1', True, -1

`check(spec, case)` runs the call and returns what broke the contract (None if nothing did).
Every public callable must be walked or listed in NOT_WALKED with the reason, so a new
function fails `test_every_public_function_is_known` until someone says how to walk it.
`test_walker_catches_a_planted_wrong_answer` plants a max pooling that drops NaN (the bug this
walk found in cnnlib.numpy) and a relu that returns the wrong dtype, and proves the walk fails.

The command line (`python -m cnnlib ...`) is walked at the end: bad arguments give a message
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import subprocess
import sys
import types
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from course import ROOT

import cnnlib.arithmetic as ar
import cnnlib.numpy as cn
import cnnlib.torch as ct

MODULES = {"ar": ar, "cn": cn, "ct": ct}

# NaN and inf cases make NumPy warn ("invalid value encountered"): expected, and not the point
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# --------------------------------------------------------------------------------------------
# Roles and the families of bad input they get


@dataclasses.dataclass(frozen=True)
class Role:
    """What an argument is. kind: array, int, pair, flag, number, state, cache, seed, choice,
    labels, shape, layers, dout, any (not mutated: no family).

    ndim: an array's fixed number of dimensions (None: any), batch: axis 0 is the batch,
    values: NaN / inf go in (the reference says what must come out), minimum: the smallest
    allowed int, none_ok: None is a valid value.
    """

    kind: str
    ndim: int | None = None
    batch: bool = False
    values: bool = False
    minimum: int = 1
    none_ok: bool = False


X4 = Role("array", ndim=4, batch=True, values=True)  # an (N, C, H, W) input
X2 = Role("array", ndim=2, batch=True, values=True)  # an (N, D) input
XANY = Role("array", values=True)  # any shape (activations)
PARAM = Role("array")  # weights, biases: shape fixed by the other arguments
GEOM = Role("pair")  # int or (H, W) pair >= 1
PAD = Role("pair", minimum=0)
INT = Role("int")
INT0 = Role("int", minimum=0)
FLAG = Role("flag")
NUMBER = Role("number")
DOUT = Role("dout")
CACHE = Role("cache")
ANY = Role("any")

BAD_INT = {  # label: (value, applies to minimum <= this)
    "zero": 0,
    "negative": -1,
    "float": 1.5,
    "bool": True,
    "None": None,
    "str": "2",
    "nan": float("nan"),
}


@dataclasses.dataclass
class Spec:
    """How to walk one public function.

    make: () -> dict of valid keyword arguments (NumPy arrays; the torch twin gets them as
        tensors). reference: kwargs (torch tensors, float64) -> the expected first output, or
        None where there is none (dropout draws at random). backward_of: for a backward, the
        forward whose cache it takes (the cache is made by calling it on make()'s arguments
        with `dout` replaced by the forward's output gradient). mutates: arguments the function
        may change when it succeeds (batchnorm's state). first: compare only the first output
        (forwards return (out, cache), losses (loss, dscores)).
    """

    name: str
    function: Callable
    make: Callable[[], dict]
    roles: dict[str, Role]
    reference: Callable | None = None
    torch_twin: bool = False
    mutates: tuple[str, ...] = ()
    first: bool = True
    extra: dict[str, Callable[[dict], tuple[str, dict]]] = dataclasses.field(
        default_factory=dict
    )  # label -> kwargs -> (argument named, bad kwargs): mismatched channels and the like
    make_in: Callable[[str], dict] | None = None  # a backward's valid call in another dtype


# --------------------------------------------------------------------------------------------
# Arrays: NumPy or torch, the same code


def _rng():
    return np.random.default_rng(0)


def _as_torch(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _as_torch(v) for k, v in value.items()}
    return value


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray | torch.Tensor)


def _astype(value, kind: str):
    """value (array or tensor) converted: int64, bool, complex128, float16/32/64."""
    if isinstance(value, torch.Tensor):
        dtypes = {
            "int": torch.int64,
            "complex": torch.complex128,
            "float16": torch.float16,
            "float32": torch.float32,
            "float64": torch.float64,
        }
        return value > 0 if kind == "bool" else value.to(dtypes[kind])
    dtypes = {
        "int": np.int64,
        "complex": np.complex128,
        "float16": np.float16,
        "float32": np.float32,
        "float64": np.float64,
    }
    return value > 0 if kind == "bool" else value.astype(dtypes[kind])


def _is_float(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (
            type(value)(_snapshot(v) for v in value)
            if not hasattr(value, "_fields")
            else type(value)(*(_snapshot(v) for v in value))
        )
    return copy.copy(value)


def _same(a, b) -> bool:
    """Equal, arrays included (NaN equal to NaN, dtype and shape too)."""
    if _is_array(a) or _is_array(b):
        if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        a_np = a.detach().numpy() if isinstance(a, torch.Tensor) else a
        b_np = b.detach().numpy() if isinstance(b, torch.Tensor) else b
        return bool(np.array_equal(a_np, b_np, equal_nan=a_np.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _to_reference(value):
    """An argument as the reference wants it: a float64 tensor (ints stay ints)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value.copy())
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(torch.float64) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _to_reference(v) for k, v in value.items()}
    return value


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The specs: every walked function, its valid call and its reference


def _x(*shape, scale=1.0):
    return _rng().standard_normal(shape) * scale


def _conv_args():
    return {
        "x": _x(2, 3, 5, 5),
        "w": _x(4, 3, 3, 3),
        "b": _x(4),
        "stride": 1,
        "pad": 1,
        "dilation": 1,
    }


def _conv_reference(k):
    return F.conv2d(
        k["x"], k["w"], k["b"], stride=k["stride"], padding=k["pad"], dilation=k["dilation"]
    )


def _pool_args():
    return {"x": _x(2, 3, 5, 5), "size": 3, "stride": 2, "pad": 1}


def _channels_mismatch(array_name, axis=1):
    def make_bad(kwargs):
        bad = dict(kwargs)
        array = bad[array_name]
        if isinstance(array, torch.Tensor):
            bad[array_name] = torch.cat([array, array.narrow(axis, 0, 1)], dim=axis)
        else:
            bad[array_name] = np.concatenate([array, array.take([0], axis=axis)], axis=axis)
        return array_name, bad

    return make_bad


def _bn_args(shape):
    d = shape[1]
    return {
        "x": _x(*shape),
        "gamma": _x(d) + 2,
        "beta": _x(d),
        "state": {},
        "train": True,
        "momentum": 0.9,
        "eps": 1e-5,
    }


def _bn_reference(spatial):
    def reference(k):
        state = k["state"]
        d = k["x"].shape[1]
        mean = state.get("running_mean", torch.zeros(d, dtype=torch.float64)).clone()
        var = state.get("running_var", torch.ones(d, dtype=torch.float64)).clone()
        return F.batch_norm(
            k["x"],
            mean,
            var,
            k["gamma"],
            k["beta"],
            training=k["train"],
            momentum=1 - k["momentum"],
            eps=k["eps"],
        )

    return reference


def _svm_reference(k):
    """The hinge loss by its formula. (F.multi_margin_loss would do, times C, but it drops a
    NaN score where clamp keeps it: a NaN score must give a NaN loss.)"""
    scores, y = k["scores"], k["y"]
    correct = scores.gather(1, y[:, None])
    margins = (scores - correct + k["margin"]).clamp(min=0)
    margins = margins.scatter(1, y[:, None], 0.0)
    return margins.sum() / scores.shape[0]


def _layer_specs(m, prefix: str, twin: bool) -> list[Spec]:
    """The layers of cnnlib.numpy (m = cn) or cnnlib.torch (m = ct), forward and backward."""
    specs = []

    def add(name, make, roles, reference=None, **more):
        specs.append(
            Spec(
                f"{prefix}.{name}",
                getattr(m, name),
                make,
                roles,
                reference,
                torch_twin=twin,
                **more,
            )
        )

    conv_roles = {"x": X4, "w": PARAM, "b": PARAM, "stride": GEOM, "pad": PAD, "dilation": GEOM}
    for name in ("conv_forward", "conv_forward_naive"):
        add(
            name,
            _conv_args,
            conv_roles,
            _conv_reference,
            extra={"channels": _channels_mismatch("w"), "filters": _channels_mismatch("b", 0)},
        )
    for name in ("max_pool_forward", "max_pool_forward_naive"):
        add(
            name,
            _pool_args,
            {"x": X4, "size": GEOM, "stride": GEOM, "pad": PAD},
            lambda k: F.max_pool2d(k["x"], k["size"], k["stride"], k["pad"]),
        )
    for name in ("avg_pool_forward", "avg_pool_forward_naive"):
        add(
            name,
            _pool_args,
            {"x": X4, "size": GEOM, "stride": GEOM, "pad": PAD},
            lambda k: F.avg_pool2d(k["x"], k["size"], k["stride"], k["pad"]),
        )
    add(
        "im2col",
        lambda: {"x": _x(2, 3, 5, 5), "kernel": 3, "stride": 2, "pad": 1, "dilation": 1},
        {"x": X4, "kernel": GEOM, "stride": GEOM, "pad": PAD, "dilation": GEOM},
        lambda k: (
            F.unfold(k["x"], k["kernel"], k["dilation"], k["pad"], k["stride"])
            .permute(1, 0, 2)
            .reshape(3 * 9, -1)
        ),
    )
    add(
        "col2im",
        lambda: {
            "cols": _x(27, 2 * 9),
            "x_shape": (2, 3, 5, 5),
            "kernel": 3,
            "stride": 2,
            "pad": 1,
            "dilation": 1,
        },
        {
            "cols": Role("array", ndim=2),
            "x_shape": Role("shape"),
            "kernel": GEOM,
            "stride": GEOM,
            "pad": PAD,
            "dilation": GEOM,
        },
        lambda k: F.fold(
            k["cols"].reshape(27, 2, 9).permute(1, 0, 2),
            (5, 5),
            k["kernel"],
            k["dilation"],
            k["pad"],
            k["stride"],
        ),
    )
    add(
        "window_view",
        lambda: {"x_padded": _x(2, 3, 5, 5), "kernel": 3, "stride": 2, "dilation": 1},
        {"x_padded": X4, "kernel": GEOM, "stride": GEOM, "dilation": GEOM},
        lambda k: k["x_padded"].unfold(2, 3, 2).unfold(3, 3, 2),
    )
    add(
        "affine_forward",
        lambda: {"x": _x(4, 2, 3), "w": _x(6, 5), "b": _x(5)},
        {"x": Role("array", batch=True, values=True), "w": Role("array", ndim=2), "b": PARAM},
        lambda k: k["x"].reshape(k["x"].shape[0], k["w"].shape[0]) @ k["w"] + k["b"],
        extra={"features": _channels_mismatch("w", 0)},
    )
    simple = {
        "relu_forward": torch.relu,
        "sigmoid_forward": torch.sigmoid,
        "tanh_forward": torch.tanh,
        "selu_forward": F.selu,
    }
    for name, function in simple.items():
        add(
            name,
            lambda: {"x": _x(3, 4)},
            {"x": XANY},
            lambda k, function=function: function(k["x"]),
        )
    add(
        "leaky_relu_forward",
        lambda: {"x": _x(3, 4), "negative_slope": 0.1},
        {"x": XANY, "negative_slope": NUMBER},
        lambda k: F.leaky_relu(k["x"], k["negative_slope"]),
    )
    add(
        "elu_forward",
        lambda: {"x": _x(3, 4), "alpha": 1.5},
        {"x": XANY, "alpha": NUMBER},
        lambda k: F.elu(k["x"], k["alpha"]),
    )
    add(
        "gelu_forward",
        lambda: {"x": _x(3, 4), "approximate": "tanh"},
        {"x": XANY, "approximate": Role("choice")},
        lambda k: F.gelu(k["x"], approximate=k["approximate"]),
    )
    add(
        "prelu_forward",
        lambda: {"x": _x(3, 4, 2), "alpha": np.full(4, 0.2)},
        {"x": Role("array", batch=True, values=True), "alpha": PARAM},
        lambda k: F.prelu(k["x"], k["alpha"]),
    )
    add(
        "maxout_forward",
        lambda: {"x": _x(3, 4), "w": _x(2, 4, 5), "b": _x(2, 5)},
        {"x": X2, "w": Role("array", ndim=3), "b": Role("array", ndim=2)},
        lambda k: (torch.einsum("nd,kdm->nkm", k["x"], k["w"]) + k["b"]).amax(dim=1),
        extra={"features": _channels_mismatch("w", 1)},
    )
    bn_roles = {
        "x": X2,
        "gamma": PARAM,
        "beta": PARAM,
        "state": Role("state"),
        "train": FLAG,
        "momentum": NUMBER,
        "eps": NUMBER,
    }
    add(
        "batchnorm_forward",
        lambda: _bn_args((6, 3)),
        bn_roles,
        _bn_reference(False),
        mutates=("state",),
        extra={"features": _channels_mismatch("gamma", 0)},
    )
    add(
        "spatial_batchnorm_forward",
        lambda: _bn_args((2, 3, 2, 2)),
        {**bn_roles, "x": X4},
        lambda k: _bn_reference(True)(k),
        mutates=("state",),
        extra={"channels": _channels_mismatch("beta", 0)},
    )
    add(
        "dropout_forward",
        lambda: {"x": _x(3, 4), "keep_prob": 0.7, "train": True, "inverted": True, "seed": 0},
        {
            "x": Role("array", batch=True),
            "keep_prob": NUMBER,
            "train": FLAG,
            "inverted": FLAG,
            "seed": Role("seed"),
        },
    )
    add(
        "softmax_loss",
        lambda: {"scores": _x(4, 3), "y": np.array([0, 2, 1, 2])},
        {"scores": Role("array", ndim=2, values=True), "y": Role("labels")},
        lambda k: F.cross_entropy(k["scores"], k["y"]),
    )
    add(
        "svm_loss",
        lambda: {"scores": _x(4, 3), "y": np.array([0, 2, 1, 2]), "margin": 1.0},
        {"scores": Role("array", ndim=2, values=True), "y": Role("labels"), "margin": NUMBER},
        _svm_reference,
    )
    add(
        "activation_and_derivative",
        lambda: {"name": "tanh", "x": _x(3, 4)},
        {"name": Role("choice"), "x": XANY},
        lambda k: torch.tanh(k["x"]),
    )

    # the backward passes: made from the forward specs above
    forwards = {spec.name.split(".")[1]: spec for spec in specs}
    pairs = {
        "conv_backward": "conv_forward",
        "conv_backward_naive": "conv_forward_naive",
        "max_pool_backward": "max_pool_forward",
        "max_pool_backward_naive": "max_pool_forward_naive",
        "avg_pool_backward": "avg_pool_forward",
        "avg_pool_backward_naive": "avg_pool_forward_naive",
        "affine_backward": "affine_forward",
        "relu_backward": "relu_forward",
        "sigmoid_backward": "sigmoid_forward",
        "tanh_backward": "tanh_forward",
        "selu_backward": "selu_forward",
        "leaky_relu_backward": "leaky_relu_forward",
        "elu_backward": "elu_forward",
        "gelu_backward": "gelu_forward",
        "prelu_backward": "prelu_forward",
        "maxout_backward": "maxout_forward",
        "batchnorm_backward": "batchnorm_forward",
        "batchnorm_backward_naive": "batchnorm_forward",
        "spatial_batchnorm_backward": "spatial_batchnorm_forward",
        "dropout_backward": "dropout_forward",
    }
    for backward, forward in pairs.items():
        specs.append(
            _backward_spec(f"{prefix}.{backward}", getattr(m, backward), forwards[forward], twin)
        )

    if twin:  # the autograd wrappers: the forward's arguments, the output alone
        wrappers = {
            "conv2d": ("conv_forward", {"pad": "pad"}),
            "max_pool2d": ("max_pool_forward", {}),
            "avg_pool2d": ("avg_pool_forward", {}),
            "affine": ("affine_forward", {}),
            "relu": ("relu_forward", {}),
            "sigmoid": ("sigmoid_forward", {}),
            "tanh": ("tanh_forward", {}),
            "selu": ("selu_forward", {}),
            "leaky_relu": ("leaky_relu_forward", {}),
            "elu": ("elu_forward", {}),
            "gelu": ("gelu_forward", {}),
            "prelu": ("prelu_forward", {}),
            "maxout": ("maxout_forward", {}),
            "batch_norm": ("batchnorm_forward", {}),
            "apply_dropout": ("dropout_forward", {}),
            "cross_entropy": ("softmax_loss", {}),
            "svm_hinge_loss": ("svm_loss", {}),
        }
        for wrapper, (forward, _) in wrappers.items():
            base = forwards[forward]
            roles = dict(base.roles)
            if wrapper in ("conv2d", "affine"):  # b=None: no bias, as in torch
                roles["b"] = Role("array", none_ok=True)
            specs.append(
                dataclasses.replace(
                    base,
                    name=f"ct.{wrapper}",
                    roles=roles,
                    function=getattr(ct, wrapper),
                    first=False,
                )
            )
    return specs


def _backward_spec(name, function, forward: Spec, twin: bool) -> Spec:
    """A backward's spec: dout shaped like the forward's output, the forward's cache; in the
    float32 / float16 cases the forward runs in that dtype too."""

    def make(dtype="float64"):
        kwargs = forward.make()
        if twin:
            kwargs = {k: _as_torch(v) for k, v in kwargs.items()}
        kwargs = {k: _astype(v, dtype) if _is_float(v) else v for k, v in kwargs.items()}
        out, cache = forward.function(**kwargs)
        dout = _rng().standard_normal(tuple(out.shape))
        dout = _astype(dout if not twin else torch.from_numpy(dout), dtype)
        return {"dout": dout, "cache": cache}

    return Spec(
        name,
        function,
        make,
        {"dout": DOUT, "cache": CACHE},
        None,
        torch_twin=twin,
        first=False,
        make_in=make,
    )


def _arithmetic_specs() -> list[Spec]:
    def add(name, make, roles, **more):
        specs.append(Spec(f"ar.{name}", getattr(ar, name), make, roles, **more))

    specs: list[Spec] = []
    size = {"size": Role("int"), "kernel": INT, "stride": INT, "pad": INT0, "dilation": INT}
    add(
        "conv_output_size",
        lambda: {"size": 9, "kernel": 3, "stride": 2, "pad": 1, "dilation": 1, "strict": False},
        {**size, "strict": FLAG},
    )
    add(
        "pool_output_size",
        lambda: {"size": 9, "kernel": 3, "stride": 2, "pad": 1, "dilation": 1, "strict": False},
        {**size, "stride": Role("int", none_ok=True), "strict": FLAG},
    )
    add("window_taps", lambda: {"size": 9, "kernel": 3, "stride": 2, "pad": 1, "dilation": 1}, size)
    add(
        "unread_positions",
        lambda: {"size": 9, "kernel": 3, "stride": 2, "pad": 1, "dilation": 1},
        size,
    )
    add(
        "effective_kernel_size",
        lambda: {"kernel": 3, "dilation": 2},
        {"kernel": INT, "dilation": INT},
    )
    add("same_padding", lambda: {"kernel": 3, "dilation": 2}, {"kernel": INT, "dilation": INT})
    shape3 = Role("shape", ndim=3)
    add(
        "conv_output_shape",
        lambda: {
            "input_shape": (3, 9, 9),
            "out_channels": 4,
            "kernel": 3,
            "stride": 2,
            "pad": 1,
            "dilation": 1,
            "strict": False,
        },
        {
            "input_shape": shape3,
            "out_channels": INT,
            "kernel": GEOM,
            "stride": GEOM,
            "pad": PAD,
            "dilation": GEOM,
            "strict": FLAG,
        },
    )
    add(
        "pool_output_shape",
        lambda: {
            "input_shape": (3, 9, 9),
            "kernel": 3,
            "stride": 2,
            "pad": 1,
            "dilation": 1,
            "strict": False,
        },
        {
            "input_shape": shape3,
            "kernel": GEOM,
            "stride": Role("pair", none_ok=True),
            "pad": PAD,
            "dilation": GEOM,
            "strict": FLAG,
        },
    )
    add(
        "conv_params",
        lambda: {"in_channels": 3, "out_channels": 8, "kernel": 3, "bias": True, "groups": 1},
        {"in_channels": INT, "out_channels": INT, "kernel": GEOM, "bias": FLAG, "groups": INT},
    )
    add(
        "conv_macs",
        lambda: {
            "in_channels": 3,
            "out_channels": 8,
            "kernel": 3,
            "output_size": (4, 4),
            "groups": 1,
        },
        {
            "in_channels": INT,
            "out_channels": INT,
            "kernel": GEOM,
            "output_size": GEOM,
            "groups": INT,
        },
    )
    add(
        "locally_connected_params",
        lambda: {"in_channels": 3, "out_channels": 8, "kernel": 3, "output_size": 4, "bias": True},
        {
            "in_channels": INT,
            "out_channels": INT,
            "kernel": GEOM,
            "output_size": GEOM,
            "bias": FLAG,
        },
    )
    add(
        "linear_params",
        lambda: {"in_features": 10, "out_features": 3, "bias": False},
        {"in_features": INT, "out_features": INT, "bias": FLAG},
    )
    add(
        "linear_macs",
        lambda: {"in_features": 10, "out_features": 3},
        {"in_features": INT, "out_features": INT},
    )
    add(
        "pool_flops",
        lambda: {"channels": 3, "kernel": 2, "output_size": 4},
        {"channels": INT, "kernel": GEOM, "output_size": GEOM},
    )
    add(
        "activation_memory",
        lambda: {"shape": (3, 4, 4), "bytes_per_element": 4},
        {"shape": Role("shape"), "bytes_per_element": INT},
    )
    add(
        "memory_kb",
        lambda: {"shape": (3, 4, 4), "bytes_per_element": 4},
        {"shape": Role("shape"), "bytes_per_element": INT},
    )
    for name in ("receptive_field", "receptive_fields", "total_stride"):
        add(
            name,
            lambda: {"layers": [(3, 1), ar.Conv(8, 3, stride=2), ar.Pool(2)]},
            {"layers": Role("layers")},
        )
    add(
        "layer_table",
        lambda: {
            "input_shape": (3, 8, 8),
            "layers": [ar.Conv(4, 3, pad=1), ar.Pool(2), ar.Linear(5)],
            "names": None,
            "bytes_per_element": 4,
        },
        {"input_shape": shape3, "layers": Role("layers"), "names": ANY, "bytes_per_element": INT},
    )
    add(
        "format_table",
        lambda: {"rows": ar.layer_table((3, 8, 8), [ar.Conv(4, 3)])},
        {"rows": Role("rows")},
    )
    add(
        "Conv",
        lambda: {
            "out_channels": 8,
            "kernel": 3,
            "stride": 1,
            "pad": 0,
            "dilation": 1,
            "bias": True,
            "groups": 1,
        },
        {
            "out_channels": INT,
            "kernel": GEOM,
            "stride": GEOM,
            "pad": PAD,
            "dilation": GEOM,
            "bias": FLAG,
            "groups": INT,
        },
    )
    add(
        "Pool",
        lambda: {"kernel": 3, "stride": 2, "pad": 1, "dilation": 1, "kind": "max"},
        {
            "kernel": GEOM,
            "stride": Role("pair", none_ok=True),
            "pad": PAD,
            "dilation": INT,
            "kind": Role("choice"),
        },
        extra={"pad>kernel/2": lambda k: ("pad", {**k, "pad": 2})},
    )
    add("Linear", lambda: {"out_features": 5, "bias": True}, {"out_features": INT, "bias": FLAG})
    return specs


def _numpy_only_specs() -> list[Spec]:
    """cnnlib.numpy's functions without a torch twin: softmax, update rules, regularisers,
    schedules, initialisers."""
    specs: list[Spec] = []

    def add(name, make, roles, reference=None, **more):
        specs.append(Spec(f"cn.{name}", getattr(cn, name), make, roles, reference, **more))

    add(
        "softmax",
        lambda: {"scores": _x(4, 3)},
        {"scores": Role("array", ndim=2, values=True)},
        lambda k: torch.softmax(k["scores"], dim=1),
        first=False,
    )
    config = Role("config")
    for rule in ("sgd", "sgd_momentum", "nesterov", "rmsprop", "adam"):
        add(
            rule,
            lambda: {"w": _x(3, 4), "dw": _x(3, 4), "config": None},
            {"w": PARAM, "dw": PARAM, "config": config},
            extra={"shape": _channels_mismatch("dw", 0)},
        )
    w = Role("array", values=True)
    add(
        "l2_regularization",
        lambda: {"w": _x(3, 4), "reg": 0.1},
        {"w": w, "reg": NUMBER},
        lambda k: 0.5 * k["reg"] * (k["w"] ** 2).sum(),
        first=True,
    )
    add(
        "l1_regularization",
        lambda: {"w": _x(3, 4), "reg": 0.1},
        {"w": w, "reg": NUMBER},
        lambda k: k["reg"] * k["w"].abs().sum(),
        first=True,
    )
    add(
        "elastic_net_regularization",
        lambda: {"w": _x(3, 4), "l1": 0.1, "l2": 0.2},
        {"w": w, "l1": NUMBER, "l2": NUMBER},
    )
    add(
        "soft_threshold",
        lambda: {"w": _x(3, 4), "threshold": 0.1},
        {"w": w, "threshold": NUMBER},
        lambda k: torch.sign(k["w"]) * torch.clamp(k["w"].abs() - k["threshold"], min=0),
        first=False,
    )
    add(
        "max_norm",
        lambda: {"w": _x(3, 4), "max_norm": 1.0, "axis": 0},
        {"w": PARAM, "max_norm": NUMBER, "axis": Role("axis")},
        first=False,
    )
    schedule = {"lr0": NUMBER, "epoch": NUMBER}
    add(
        "step_decay",
        lambda: {"lr0": 0.1, "epoch": 3, "step_size": 2, "gamma": 0.5},
        {**schedule, "step_size": INT, "gamma": NUMBER},
        first=False,
    )
    add(
        "exponential_decay",
        lambda: {"lr0": 0.1, "epoch": 3, "gamma": 0.5},
        {**schedule, "gamma": NUMBER},
        first=False,
    )
    add(
        "inverse_time_decay",
        lambda: {"lr0": 0.1, "epoch": 3, "k": 0.5},
        {**schedule, "k": NUMBER},
        first=False,
    )
    add(
        "cosine_decay",
        lambda: {"lr0": 0.1, "epoch": 3, "total_epochs": 10, "lr_min": 0.0},
        {**schedule, "total_epochs": NUMBER, "lr_min": NUMBER},
        first=False,
    )
    add(
        "cosine_restarts",
        lambda: {"lr0": 0.1, "epoch": 3, "period": 2, "period_mult": 1, "lr_min": 0.0},
        {**schedule, "period": INT, "period_mult": INT, "lr_min": NUMBER},
        first=False,
    )
    add(
        "linear_warmup",
        lambda: {"lr0": 0.1, "epoch": 1, "warmup_epochs": 3, "start_factor": 0.1},
        {**schedule, "warmup_epochs": NUMBER, "start_factor": NUMBER},
        first=False,
    )
    add("default_config", lambda: {"name": "adam"}, {"name": Role("choice")}, first=False)
    add("get_update_rule", lambda: {"name": "adam"}, {"name": Role("choice")}, first=False)
    add("fan_in", lambda: {"shape": (4, 3, 3, 3)}, {"shape": Role("shape")}, first=False)
    add("fan_out", lambda: {"shape": (4, 3, 3, 3)}, {"shape": Role("shape")}, first=False)
    for init in ("glorot", "xavier", "he", "kaiming"):
        add(
            init,
            lambda: {"shape": (4, 3, 3, 3), "rng": 0},
            {"shape": Role("shape"), "rng": Role("seed")},
            first=False,
        )
    add(
        "small_random",
        lambda: {"shape": (4, 3), "scale": 0.01, "rng": 0},
        {"shape": Role("shape"), "scale": NUMBER, "rng": Role("seed")},
        first=False,
    )
    add("as_generator", lambda: {"rng": 0}, {"rng": Role("seed", none_ok=True)}, first=False)
    add(
        "update_ratio",
        lambda: {"w": _x(3, 4), "next_w": _x(3, 4)},
        {"w": PARAM, "next_w": PARAM},
        first=False,
        extra={"shape": _channels_mismatch("next_w", 0)},
    )
    add(
        "rel_error",
        lambda: {"a": _x(3, 4), "b": _x(3, 4)},
        {"a": ANY, "b": ANY},
        first=False,
        extra={"shape": _channels_mismatch("b", 0)},
    )
    return specs


SPECS = (
    _arithmetic_specs()
    + _layer_specs(cn, "cn", False)
    + _layer_specs(ct, "ct", True)
    + _numpy_only_specs()
)
BY_NAME = {spec.name: spec for spec in SPECS}

# Public names the walk does not call, and why: classes whose methods are the walked functions,
# records, and the training / search / grading machinery, whose arguments are models, data and
# callables rather than arrays and geometry (their own tests give them bad input).
_LAYER_CLASSES = "a class wrapping walked layer functions; its methods call them"
_MACHINERY = "training / search / tooling: takes models, callables and data (own tests)"
NOT_WALKED = {
    "ar.LayerStats": "a record (the rows of layer_table), no checks to make",
    **{
        f"cn.{n}": _LAYER_CLASSES
        for n in (
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
        )
    },
    **{
        f"cn.{n}": "a record (a forward's cache or a search's result)"
        for n in ("ConvCache", "PoolCache", "SearchResult", "Trial")
    },
    **{
        f"cn.{n}": _MACHINERY
        for n in (
            "LogUniform",
            "Uniform",
            "Solver",
            "average_params",
            "check_layer_gradients",
            "ensemble_predict",
            "grad_check_sparse",
            "grid_search",
            "numeric_gradient",
            "numeric_gradient_array",
            "random_search",
            "with_warmup",
        )
    },
    **{
        f"ct.{n}": _LAYER_CLASSES
        for n in (
            "AvgPool2d",
            "BatchNorm1d",
            "BatchNorm2d",
            "Conv2d",
            "Dropout",
            "ELU",
            "GELU",
            "LeakyReLU",
            "Linear",
            "MaxPool2d",
            "Maxout",
            "PReLU",
            "ReLU",
            "SELU",
            "Sigmoid",
            "Tanh",
        )
    },
    **{
        f"ct.{n}": "an autograd Function: .apply is the walked wrapper of the same name"
        for n in (
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
        )
    },
    **{
        f"ct.{n}": "a record (a forward's cache, a summary, a training history)"
        for n in ("ConvCache", "PoolCache", "Evaluation", "History", "ModelSummary", "SummaryRow")
    },
    **{
        f"ct.{n}": _MACHINERY
        for n in (
            "device",
            "evaluate",
            "fit",
            "init_weights",
            "load_checkpoint",
            "predict",
            "set_weights",
            "summary",
            "swap_layers",
            "to_loader",
        )
    },
}


def public_callables() -> set[str]:
    """Every public function and class of the three modules, as 'ar.name', 'cn.name', ..."""
    names = set()
    for short, module in MODULES.items():
        listed = getattr(module, "__all__", None) or [
            n for n in dir(module) if not n.startswith("_")
        ]
        for name in listed:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) or not callable(value):
                continue  # submodules and constants (ACTIVATIONS, SELU_ALPHA, ...)
            names.add(f"{short}.{name}")
    return names


# --------------------------------------------------------------------------------------------
# Cases: the families of bad input, from the roles


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    argument: str  # the argument made bad (the error must name it)
    expect: str  # "raise": must raise naming it; "match": raise naming it, or match reference


def cases(spec: Spec) -> list[Case]:
    out = [Case("valid", "", "match")]
    float_arrays = [a for a, r in spec.roles.items() if r.kind in ("array", "dout")]
    for argument, role in spec.roles.items():
        kind = role.kind
        if kind in ("array", "dout"):
            for label in ("int", "bool", "complex", "list", "None", "str"):
                if label == "None" and role.none_ok:
                    continue
                out.append(Case(f"{argument}={label}", argument, "raise"))
            if role.ndim is not None or kind == "dout":
                out.append(Case(f"{argument}=ndim+1", argument, "raise"))
                out.append(Case(f"{argument}=ndim-1", argument, "raise"))
            if role.batch:
                out.append(Case(f"{argument}=empty batch", argument, "match"))
            if role.values and spec.reference is not None:
                out.append(Case(f"{argument}=nan", argument, "match"))
                out.append(Case(f"{argument}=inf", argument, "match"))
        elif kind in ("int", "pair"):
            for label in BAD_INT:
                if label == "zero" and role.minimum == 0:
                    continue
                if label == "None" and role.none_ok:
                    continue
                out.append(Case(f"{argument}={label}", argument, "raise"))
            if kind == "pair":
                out.append(Case(f"{argument}=(1, bad)", argument, "raise"))
                out.append(Case(f"{argument}=triple", argument, "raise"))
        elif kind == "flag":
            for label in ("'False'", "None", "0"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "number":
            for label in ("None", "str", "complex", "nan"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "state":
            for label in ("int arrays", "not a dict", "wrong length"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "cache":
            for label in ("None", "other layer", "short tuple"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "seed":
            for label in ("float", "str", "bool"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "choice":
            for label in ("unknown", "None", "int"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "labels":
            for label in ("float", "out of range", "wrong length", "None"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "shape":
            for label in ("zero", "negative", "float", "None", "str", "bool"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "layers":
            for label in ("None", "stride 0", "negative kernel", "float stride", "str"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "axis":
            for label in ("float", "str", "bool", "out of range"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "rows":
            for label in ("None", "ints"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
        elif kind == "config":
            for label in ("not a dict", "negative rate", "str rate"):
                out.append(Case(f"{argument}={label}", argument, "raise"))
    if float_arrays:
        out.append(Case("float32", "", "match"))
        out.append(Case("float16", "", "match"))
    for label in spec.extra:
        out.append(Case(label, "", "raise"))
    return out


def _bad_value(spec: Spec, case: Case, kwargs: dict):
    """kwargs with case.argument made bad as case.label says."""
    argument = case.argument
    value = kwargs[argument]
    label = case.label.split("=", 1)[1]
    role = spec.roles[argument]
    if role.kind in ("array", "dout"):
        if label in ("int", "bool", "complex"):
            return _astype(value, label)
        if label == "list":
            return value.tolist()
        if label == "None":
            return None
        if label == "str":
            return "x"
        if label == "ndim+1":
            return value[None]
        if label == "ndim-1":
            return value[0]
        if label == "empty batch":
            return value[:0]
        if label in ("nan", "inf"):
            value = _snapshot(value)
            flat = value.reshape(-1)
            flat[len(flat) // 2] = float(label)
            if label == "inf":
                flat[0] = -float("inf")
            return value
    if role.kind in ("int", "pair"):
        if label == "(1, bad)":
            return (1, 0 if role.minimum == 1 else -1)
        if label == "triple":
            return (1, 1, 1)
        return BAD_INT[label]
    if role.kind == "flag":
        return {"'False'": "False", "None": None, "0": 0}[label]
    if role.kind == "number":
        return {"None": None, "str": "0.5", "complex": 0.5j, "nan": float("nan")}[label]
    if role.kind == "state":
        d = kwargs["x"].shape[1]
        if label == "int arrays":
            state = {
                "running_mean": np.zeros(d, dtype=np.int64),
                "running_var": np.ones(d, dtype=np.int64),
            }
            return _as_torch(state) if spec.torch_twin else state
        if label == "not a dict":
            return [1, 2]
        state = {"running_mean": np.zeros(d + 1), "running_var": np.ones(d + 1)}
        return _as_torch(state) if spec.torch_twin else state
    if role.kind == "cache":
        if label == "None":
            return None
        if label == "short tuple":
            return tuple(value)[:-1] if isinstance(value, tuple) else (value,)
        # another layer's cache: conv's for everyone, relu's for conv
        twin = ct if spec.torch_twin else cn
        args = {k: _as_torch(v) if spec.torch_twin else v for k, v in _conv_args().items()}
        if "conv" in spec.name:
            return twin.dropout_forward(args["x"], seed=0)[1]
        return twin.conv_forward(**args)[1]
    if role.kind == "seed":
        return {"float": 1.5, "str": "1", "bool": True}[label]
    if role.kind == "choice":
        return {"unknown": "no such thing", "None": None, "int": 3}[label]
    if role.kind == "labels":
        y = value
        if label == "float":
            return _astype(y, "float64")
        if label == "out of range":
            y = _snapshot(y)
            y[0] = 99
            return y
        if label == "wrong length":
            return y[:-1]
        return None
    if role.kind == "shape":
        bad = {"zero": 0, "negative": -1, "float": 1.5, "None": None, "str": "3", "bool": True}
        if label in ("None", "str"):
            return bad[label]
        return (*value[:-1], bad[label])
    if role.kind == "layers":
        return {
            "None": None,
            "stride 0": [(3, 0)],
            "negative kernel": [(-3, 1)],
            "float stride": [(3, 1.5)],
            "str": "33",
        }[label]
    if role.kind == "axis":
        return {"float": 1.5, "str": "0", "bool": True, "out of range": 5}[label]
    if role.kind == "rows":
        return {"None": None, "ints": [1, 2]}[label]
    if role.kind == "config":
        rate_key = "learning_rate"
        return {
            "not a dict": [0.1],
            "negative rate": {rate_key: -1.0},
            "str rate": {rate_key: "0.1"},
        }[label]
    raise AssertionError(f"no bad value for {case}")


def _kwargs(spec: Spec) -> dict:
    kwargs = spec.make()
    if spec.torch_twin:
        kwargs = {k: _as_torch(v) for k, v in kwargs.items()}
    return kwargs


def _call_kwargs(spec: Spec, case: Case) -> dict:
    kwargs = _kwargs(spec)
    if case.label == "valid":
        return kwargs
    if case.label in ("float32", "float16") and spec.make_in is not None:
        return spec.make_in(case.label)
    if case.label in ("float32", "float16"):
        return {k: _astype(v, case.label) if _is_float(v) else v for k, v in kwargs.items()}
    if case.argument:
        return {**kwargs, case.argument: _bad_value(spec, case, kwargs)}
    return spec.extra[case.label](kwargs)[1]


# --------------------------------------------------------------------------------------------
# The contract


def _names(message: str, argument: str) -> bool:
    return argument in message


def _outputs(result, spec: Spec):
    if spec.first and isinstance(result, tuple):
        return result[0]
    return result


def _arrays_in(value):
    if _is_array(value):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _arrays_in(item)


def check(spec: Spec, case: Case) -> str | None:
    """Run one case; what broke the contract, or None."""
    kwargs = _call_kwargs(spec, case)
    before = _snapshot(kwargs)
    arrays_in = [v for v in kwargs.values() if _is_array(v)]
    if case.argument:
        bad_arg = case.argument
    elif case.label in spec.extra:
        bad_arg = spec.extra[case.label](_kwargs(spec))[0]
    else:
        bad_arg = None
    try:
        result = spec.function(**kwargs)
    except (ValueError, TypeError) as error:
        message = str(error)
        if case.label == "valid" or case.label == "float32":
            return f"a valid call raised {type(error).__name__}: {message}"
        changed = [k for k in kwargs if not _same(before[k], kwargs[k])]
        if changed:
            return f"raised, but changed its inputs {changed} first"
        wanted = [bad_arg] if bad_arg else [a for a in spec.roles]
        if not any(_names(message, a) for a in wanted):
            return f"{type(error).__name__} does not name {wanted}: {message!r}"
        return None
    except Exception as error:
        return f"leaked {type(error).__name__}: {error}"
    if case.expect == "raise":
        return f"accepted the bad input and returned {_short(result)}"
    changed = [k for k in kwargs if k not in spec.mutates and not _same(before[k], kwargs[k])]
    if changed:
        return f"changed its inputs {changed}"
    out = _outputs(result, spec)
    # dtype kept: every float array out has the dtype of the float arrays in
    float_in = {a.dtype for a in arrays_in if _is_float(a)}
    if len(float_in) == 1:
        (dtype,) = float_in
        for array in _arrays_in(out if spec.first else result):
            if _is_float(array) and array.dtype != dtype:
                return f"returned {array.dtype} for {dtype} input"
    if spec.reference is None:
        return None
    reference_kwargs = {k: _to_reference(v) for k, v in before.items()}
    if "state" in reference_kwargs:  # the reference must see the state as it was
        reference_kwargs["state"] = _to_reference(before["state"])
    expected = spec.reference(reference_kwargs)
    got = _as_numpy(out)
    expected = _as_numpy(expected)
    if got.shape != expected.shape:
        return f"returned shape {got.shape}, torch gives {expected.shape}"
    tolerance = {"float16": 1e-2, "float32": 1e-4}.get(case.label, 1e-9)
    if not np.allclose(got, expected, rtol=tolerance, atol=tolerance, equal_nan=True):
        where = ~np.isclose(got, expected, rtol=tolerance, atol=tolerance, equal_nan=True)
        return (
            f"differs from torch at {int(where.sum())} places: got {got[where][:3]}, "
            f"torch gives {expected[where][:3]}"
        )
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


ALL_CASES = [(spec.name, case) for spec in SPECS for case in cases(spec)]


# --------------------------------------------------------------------------------------------
# The tests


def test_every_public_function_is_known():
    """A new public function fails here until it gets a Spec or a reason in NOT_WALKED."""
    public = public_callables()
    known = set(BY_NAME) | set(NOT_WALKED)
    assert not public - known, f"public functions the walk does not know: {public - known}"
    assert not known - public, f"walked or excused names that are not public: {known - public}"
    assert not set(BY_NAME) & set(NOT_WALKED)


def test_the_walk_is_wide():
    """Most of the public API is walked, through many cases each (numbers of this version)."""
    assert len(BY_NAME) >= 150
    assert len(ALL_CASES) >= 2500


@pytest.mark.parametrize(("name", "case"), ALL_CASES, ids=[f"{n}[{c.label}]" for n, c in ALL_CASES])
def test_bad_input(name, case):
    problem = check(BY_NAME[name], case)
    assert problem is None, f"{name}({case.label}): {problem}"


def test_walker_catches_a_planted_wrong_answer():
    """Two planted bugs: max pooling that drops NaN (np.fmax ignores it) and a relu that hands
    back float64 for float32 input. The walk must report both; the real ones pass the same
    cases (test_bad_input)."""

    def max_pool_dropping_nan(x, size=2, stride=2, pad=0):
        out, cache = cn.max_pool_forward(np.nan_to_num(x, nan=-np.inf), size, stride, pad)
        return out, cache

    def relu_widening(x):
        out, cache = cn.relu_forward(x)
        return out.astype(np.float64), cache

    pool = dataclasses.replace(BY_NAME["cn.max_pool_forward"], function=max_pool_dropping_nan)
    relu = dataclasses.replace(BY_NAME["cn.relu_forward"], function=relu_widening)
    pool_problems = {c.label: check(pool, c) for c in cases(pool)}
    relu_problems = {c.label: check(relu, c) for c in cases(relu)}
    assert "differs from torch" in pool_problems["x=nan"]
    assert pool_problems["valid"] is None  # only NaN shows the bug
    assert "returned float64 for float32 input" in relu_problems["float32"]
    assert relu_problems["valid"] is None


def test_state_is_untouched_when_batchnorm_refuses():
    """The exact bug the walk found: a batch of one raised after writing into state."""
    for twin, xp in ((cn, np), (ct, torch)):
        state = {}
        with pytest.raises(ValueError, match="at least 2 values"):
            twin.batchnorm_forward(xp.ones((1, 3)), xp.ones(3), xp.zeros(3), state)
        assert state == {}


# --------------------------------------------------------------------------------------------
# The command line: a message and a non-zero exit, never a traceback

CLI_CASES = {
    "no command": ([], "usage"),
    "unknown command": (["frobnicate"], "unknown command"),
    "summary: unknown model": (["summary", "no_such_net"], "no_such_net"),
    "summary: bad input size": (["summary", "lenet5", "--input", "axb"], "--input"),
    "summary: zero input size": (["summary", "lenet5", "--input", "0x0x0"], "--input"),
    "summary: negative depth": (["summary", "lenet5", "--depth", "-1"], "--depth"),
    "summary: zero classes": (["summary", "lenet5", "--num-classes", "0"], "num"),
    "pretrain: unknown name": (["pretrain", "no_such_weights"], "no_such_weights"),
    "pretrain: bad threads": (["pretrain", "--threads", "many"], "--threads"),
    "pretrain: zero threads": (["pretrain", "all", "--threads", "0"], "--threads"),
    "grade: no assignment": (["grade"], "usage"),
    "grade: missing submissions": (
        ["grade", "a1", "--submissions", "/nonexistent/dir"],
        "/nonexistent/dir",
    ),
    "grade: unknown layout": (["grade", "a1", "--layout", "bogus"], "--layout"),
    "grade: empty submissions": (["grade", "a1", "--submissions", "."], "no submissions"),
    "formgrade: missing results": (
        ["formgrade", "no_such_assignment", "--out", "/nonexistent/out"],
        "/nonexistent/out",
    ),
}


@pytest.mark.parametrize("label", sorted(CLI_CASES))
def test_cli_bad_arguments(label, capsys, tmp_path, monkeypatch):
    """In process (`python -m cnnlib` is cnnlib.__main__.main): an exception escaping main
    would be the traceback a user sees, so it fails the test as it is."""
    from cnnlib.__main__ import main

    monkeypatch.chdir(tmp_path)  # anything a command writes by mistake lands here
    argv, mentions = CLI_CASES[label]
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse's way out
        status = exit_.code
    output = capsys.readouterr()
    text = output.out + output.err
    assert status not in (0, None), f"exit 0 for {argv}: {text[-500:]}"
    assert mentions in text, f"{argv}: the message does not mention {mentions!r}: {text}"


def test_cli_as_a_process():
    """The same promise through the real entry point: a message, exit 2, no traceback."""
    run = subprocess.run(
        [sys.executable, "-m", "cnnlib", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "unknown command 'frobnicate'" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_signatures_match_specs():
    """Every walked argument exists in the function's signature (a renamed argument would
    otherwise make the walk test nothing)."""
    for spec in SPECS:
        try:
            parameters = inspect.signature(spec.function).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind == p.VAR_KEYWORD or p.kind == p.VAR_POSITIONAL for p in parameters.values()):
            continue
        assert set(spec.roles) <= set(parameters), (spec.name, set(spec.roles) - set(parameters))
