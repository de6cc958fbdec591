"""cnnlib.torch's layers: parity with cnnlib.numpy (float64) and with torch.nn.functional, exact
values, dtypes, and the error messages.

Tolerances. Against cnnlib.numpy both sides evaluate the same formulas in float64, in possibly
different summation orders, so outputs and gradients of size O(1)-O(10) agree to a few ulps:
1e-12 leaves a margin of ~100x. Against torch.nn.functional (other algorithms, e.g. a different
convolution order or a fused batch norm) 1e-10 is used in float64.
"""

import importlib
import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import cnnlib.numpy as cn
import cnnlib.torch as ct

NUMPY_TOL = {"rtol": 1e-12, "atol": 1e-12}
TORCH_TOL = {"rtol": 1e-10, "atol": 1e-10}


def _rng(seed):
    return np.random.default_rng(seed)


def _tensor(array) -> torch.Tensor:
    """A torch copy of a NumPy array (a copy: in-place updates must not leak across)."""
    return torch.tensor(np.asarray(array))


def _close(ours, reference, tol):
    """assert_close on tensors or arrays (arrays copied: read-only views cannot be wrapped)."""
    ours, reference = (
        value if isinstance(value, torch.Tensor) else torch.tensor(np.array(value))
        for value in (ours, reference)
    )
    torch.testing.assert_close(ours, reference, **tol)


def _away_from_zero(shape, seed, gap=0.1):
    """Standard normal values pushed at least `gap` away from 0 (the kinks of the ReLU family)."""
    x = _rng(seed).standard_normal(shape)
    return x + gap * np.sign(x)


def _distinct(shape, seed):
    """A random permutation of 0.1, 0.2, ...: no two values tie, so every max is unique."""
    return (_rng(seed).permutation(math.prod(shape)).reshape(shape) + 1) / 10


# ---------------------------------------------------------------- parity with cnnlib.numpy

# name -> (forward name, backward name, array arguments, keyword arguments); every array is float64
def _numpy_cases():
    rng = _rng(0)
    x4 = rng.standard_normal((2, 3, 7, 6))
    cases = {
        "affine": ("affine", [rng.standard_normal((3, 2, 4)), rng.standard_normal((8, 5)),
                              rng.standard_normal(5)], {}),
        "sigmoid": ("sigmoid", [rng.standard_normal((4, 3, 5)) * 4], {}),
        "tanh": ("tanh", [rng.standard_normal((4, 3, 5))], {}),
        "relu": ("relu", [_away_from_zero((4, 3, 5), 1)], {}),
        "leaky_relu": ("leaky_relu", [_away_from_zero((4, 3, 5), 2)], {"negative_slope": 0.1}),
        "elu": ("elu", [_away_from_zero((4, 3, 5), 3)], {"alpha": 1.3}),
        "selu": ("selu", [_away_from_zero((4, 3, 5), 4)], {}),
        "gelu": ("gelu", [rng.standard_normal((4, 3, 5))], {}),
        "gelu_tanh": ("gelu", [rng.standard_normal((4, 3, 5))], {"approximate": "tanh"}),
        "prelu_shared": ("prelu", [_away_from_zero((2, 3, 4), 5), np.array(0.2)], {}),
        "prelu_channels": ("prelu", [_away_from_zero((2, 3, 4, 2), 6),
                                     rng.uniform(0.05, 0.5, 3)], {}),
        "maxout": ("maxout", [rng.standard_normal((5, 4)), rng.standard_normal((3, 4, 6)),
                              rng.standard_normal((3, 6))], {}),
        "conv": ("conv", [x4, rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)],
                 {"stride": 2, "pad": 1}),
        "conv_pairs": ("conv", [x4, rng.standard_normal((2, 3, 2, 3)), rng.standard_normal(2)],
                       {"stride": (1, 2), "pad": (2, 0), "dilation": (2, 1)}),
        "max_pool": ("max_pool", [_distinct((2, 3, 7, 6), 7)], {"size": 3, "stride": 2,
                                                                  "pad": 1}),
        "max_pool_default": ("max_pool", [_distinct((2, 2, 4, 6), 8)], {}),
        "avg_pool": ("avg_pool", [x4], {"size": 3, "stride": 2, "pad": 1}),
        "avg_pool_pairs": ("avg_pool", [x4], {"size": (2, 3), "stride": (1, 2), "pad": (1, 0)}),
    }
    return cases


NUMPY_CASES = _numpy_cases()
NAIVE_TWINS = {"conv", "max_pool", "avg_pool"}


def _run_both(layer, arrays, kwargs, naive=False):
    suffix = "_naive" if naive else ""
    outputs = []
    for module, convert in ((cn, np.asarray), (ct, _tensor)):
        forward = getattr(module, f"{layer}_forward{suffix}")
        backward = getattr(module, f"{layer}_backward{suffix}")
        out, cache = forward(*(convert(a) for a in arrays), **kwargs)
        dout = convert(_rng(99).standard_normal(tuple(out.shape)))
        grads = backward(dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        outputs.append((out, grads))
    return outputs


@pytest.mark.parametrize("case", sorted(NUMPY_CASES))
def test_forward_and_every_gradient_match_numpy(case):
    layer, arrays, kwargs = NUMPY_CASES[case]
    (np_out, np_grads), (t_out, t_grads) = _run_both(layer, arrays, kwargs)
    assert t_out.dtype == torch.float64
    _close(t_out, np_out, NUMPY_TOL)
    assert len(t_grads) == len(np_grads) == len(arrays)
    for t_grad, np_grad, array in zip(t_grads, np_grads, arrays, strict=True):
        assert tuple(t_grad.shape) == np.shape(array)
        _close(t_grad, np_grad, NUMPY_TOL)


@pytest.mark.parametrize("case", sorted(c for c in NUMPY_CASES if NUMPY_CASES[c][0] in NAIVE_TWINS))
def test_naive_twins_match_numpy_and_the_vectorised_layer(case):
    layer, arrays, kwargs = NUMPY_CASES[case]
    (np_out, np_grads), (t_out, t_grads) = _run_both(layer, arrays, kwargs, naive=True)
    (_, _), (fast_out, fast_grads) = _run_both(layer, arrays, kwargs)
    _close(t_out, np_out, NUMPY_TOL)
    _close(t_out, fast_out, NUMPY_TOL)
    for t_grad, np_grad, fast_grad in zip(t_grads, np_grads, fast_grads, strict=True):
        _close(t_grad, np_grad, NUMPY_TOL)
        _close(t_grad, fast_grad, NUMPY_TOL)


@pytest.mark.parametrize(
    "geometry",
    [{"kernel": 3, "stride": 2, "pad": 1},
     {"kernel": (2, 3), "stride": (1, 2), "pad": (0, 1), "dilation": (2, 1)}],
)
def test_im2col_col2im_and_window_view_match_numpy(geometry):
    x = _rng(30).standard_normal((2, 3, 6, 5))
    np_cols = cn.im2col(x, **geometry)
    t_cols = ct.im2col(_tensor(x), **geometry)
    assert tuple(t_cols.shape) == np_cols.shape
    _close(t_cols, np_cols, NUMPY_TOL)
    dcols = _rng(31).standard_normal(np_cols.shape)
    _close(ct.col2im(_tensor(dcols), x.shape, **geometry), cn.col2im(dcols, x.shape, **geometry),
           NUMPY_TOL)
    view_args = {k: v for k, v in geometry.items() if k != "pad"}
    _close(ct.window_view(_tensor(x), **view_args), cn.window_view(x, **view_args), NUMPY_TOL)


@pytest.mark.parametrize("case", ["conv_pairs", "max_pool", "avg_pool_pairs"])
def test_either_backward_takes_either_forward_s_cache(case):
    layer, arrays, kwargs = NUMPY_CASES[case]
    inputs = [_tensor(a) for a in arrays]
    out, fast_cache = getattr(ct, f"{layer}_forward")(*inputs, **kwargs)
    _, naive_cache = getattr(ct, f"{layer}_forward_naive")(*inputs, **kwargs)
    dout = torch.tensor(_rng(32).standard_normal(tuple(out.shape)))
    fast = getattr(ct, f"{layer}_backward")(dout, naive_cache)
    naive = getattr(ct, f"{layer}_backward_naive")(dout, fast_cache)
    for fast_grad, naive_grad in zip(fast if isinstance(fast, tuple) else (fast,),
                                     naive if isinstance(naive, tuple) else (naive,), strict=True):
        _close(fast_grad, naive_grad, NUMPY_TOL)


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("naive", [False, True])
def test_batchnorm_matches_numpy_in_train_then_test_mode(spatial, naive):
    rng = _rng(10)
    shape = (3, 4, 3, 2) if spatial else (6, 4)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    name = "spatial_batchnorm" if spatial else "batchnorm"
    np_state, t_state = {}, {}
    for train in (True, True, False):  # two updates of the running statistics, then use them
        results = []
        for module, convert, state in ((cn, np.asarray, np_state), (ct, _tensor, t_state)):
            out, cache = getattr(module, f"{name}_forward")(
                convert(x), convert(gamma), convert(beta), state, train=train, momentum=0.8
            )
            dout = convert(_rng(11).standard_normal(shape))
            backward = getattr(module, f"{name}_backward")
            if naive and not spatial:
                backward = module.batchnorm_backward_naive
            results.append((out, backward(dout, cache)))
        (np_out, np_grads), (t_out, t_grads) = results
        _close(t_out, np_out, NUMPY_TOL)
        for t_grad, np_grad in zip(t_grads, np_grads, strict=True):
            _close(t_grad, np_grad, NUMPY_TOL)
        for key in ("running_mean", "running_var"):
            _close(t_state[key], np_state[key], NUMPY_TOL)
        x = x * 1.5 - 0.5  # a second batch with other statistics


@pytest.mark.parametrize("loss", ["softmax_loss", "svm_loss"])
def test_losses_match_numpy(loss):
    rng = _rng(12)
    scores, y = rng.standard_normal((7, 5)) * 3, rng.integers(0, 5, 7)
    np_loss, np_dscores = getattr(cn, loss)(scores, y)
    t_loss, t_dscores = getattr(ct, loss)(_tensor(scores), _tensor(y))
    assert t_loss.ndim == 0 and t_loss.dtype == torch.float64
    assert float(t_loss) == pytest.approx(np_loss, rel=1e-12)
    _close(t_dscores, np_dscores, NUMPY_TOL)


@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_matches_numpy_for_the_same_mask(inverted):
    rng = _rng(13)
    x, dout = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    mask = rng.random((4, 6)) < 0.7
    np_cache = (mask, 0.7, True, inverted)
    t_cache = (_tensor(mask), 0.7, True, inverted)
    _close(ct.dropout_backward(_tensor(dout), t_cache), cn.dropout_backward(dout, np_cache),
           NUMPY_TOL)
    for train in (False,):  # test mode is deterministic: the outputs themselves must agree
        np_out, np_cache = cn.dropout_forward(x, 0.7, train=train, inverted=inverted)
        t_out, t_cache = ct.dropout_forward(_tensor(x), 0.7, train=train, inverted=inverted)
        _close(t_out, np_out, NUMPY_TOL)
        _close(ct.dropout_backward(_tensor(dout), t_cache), cn.dropout_backward(dout, np_cache),
               NUMPY_TOL)


MIRRORED_MODULES = ("activations", "batchnorm", "conv", "dropout", "layers", "losses", "pool")


@pytest.mark.parametrize("module", MIRRORED_MODULES)
def test_every_numpy_name_has_a_torch_twin_with_the_same_signature(module):
    numpy_module = importlib.import_module(f"cnnlib.numpy.{module}")
    torch_module = importlib.import_module(f"cnnlib.torch.{module}")
    assert set(torch_module.__all__) == set(numpy_module.__all__)
    for name in numpy_module.__all__:
        reference, ours = getattr(numpy_module, name), getattr(torch_module, name)
        if not callable(reference):  # constants: SELU_ALPHA, SELU_SCALE, ACTIVATIONS
            assert type(ours) is type(reference), name
            continue
        ours_parameters = inspect.signature(ours).parameters.values()
        reference_parameters = inspect.signature(reference).parameters.values()
        assert [(p.name, p.default) for p in ours_parameters] == [
            (p.name, p.default) for p in reference_parameters
        ], name


# ---------------------------------------------------------------- parity with torch.nn.functional


def _autograd(function, inputs, dout):
    """Output and autograd gradients of `function` at `inputs` for upstream gradient dout."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = function(*leaves)
    grads = torch.autograd.grad(out, leaves, dout)
    return out.detach(), grads


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3),
    h=st.integers(1, 8), w=st.integers(1, 8),
    kh=st.integers(1, 4), kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**16),
)
def test_conv_matches_torch_conv2d_over_geometries(n, c, f, h, w, kh, kw, stride, pad, dilation,
                                                   seed):
    assume(dilation[0] * (kh - 1) + 1 <= h + 2 * pad[0])
    assume(dilation[1] * (kw - 1) + 1 <= w + 2 * pad[1])
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    weight = torch.randn(f, c, kh, kw, generator=gen, dtype=torch.float64)
    b = torch.randn(f, generator=gen, dtype=torch.float64)
    out, cache = ct.conv_forward(x, weight, b, stride=stride, pad=pad, dilation=dilation)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    ref_out, ref_grads = _autograd(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dilation),
        (x, weight, b), dout,
    )
    _close(out, ref_out, TORCH_TOL)
    for grad, ref in zip(ct.conv_backward(dout, cache), ref_grads, strict=True):
        _close(grad, ref, TORCH_TOL)


@pytest.mark.parametrize("pad", [(0, 0), (1, 0), (2, 3), (4, 1)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1)])
@pytest.mark.parametrize("filters", [2, 3, 4])
def test_stride_one_dx_as_a_full_convolution_and_the_fold_fallback(pad, dilation, filters):
    # at stride 1 conv_backward gets dx from the rotated kernel while pad <= K_eff - 1 along
    # both axes and F <= C, and from fold otherwise ((4, 1): a pad wider than the 3x3 kernel's
    # span; 4 filters on 3 channels)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 7, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(filters, 3, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(filters, generator=gen, dtype=torch.float64)
    out, cache = ct.conv_forward(x, weight, b, stride=1, pad=pad, dilation=dilation)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64).expand(out.shape)
    _, ref_grads = _autograd(
        lambda x, w, b: F.conv2d(x, w, b, padding=pad, dilation=dilation), (x, weight, b), dout
    )
    for grad, ref in zip(ct.conv_backward(dout, cache), ref_grads, strict=True):
        _close(grad, ref, TORCH_TOL)


@pytest.mark.parametrize("stride, filters", [(1, 3), (1, 4), (2, 3)])
def test_conv_in_blocks_of_images_equals_one_block_and_torch(monkeypatch, stride, filters):
    # the batch goes through one buffer of columns a block of images at a time; with a budget
    # of one image's columns per block, 5 images make 5 blocks: every path (stride 1 with dx as
    # a full convolution, the fold fallback with F > C, stride 2) must fill and reuse the
    # buffer correctly, and dw must sum the blocks' shares
    conv = importlib.import_module("cnnlib.torch.conv")
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(5, 3, 7, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(filters, 3, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(filters, generator=gen, dtype=torch.float64)
    one_block = ct.conv_forward(x, weight, b, stride=stride, pad=1)
    dout = torch.randn(one_block[0].shape, generator=gen, dtype=torch.float64)
    one_block_grads = ct.conv_backward(dout, one_block[1])
    monkeypatch.setattr(conv, "_BLOCK_ELEMENTS", 1)
    assert len(conv._image_blocks(5, 3 * 9 * 49, x.device)) == 5
    out, cache = ct.conv_forward(x, weight, b, stride=stride, pad=1)
    grads = ct.conv_backward(dout, cache)
    torch.testing.assert_close(out, one_block[0], rtol=0, atol=0)  # images are independent
    ref_out, ref_grads = _autograd(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=1), (x, weight, b), dout)
    _close(out, ref_out, TORCH_TOL)
    for grad, one_block_grad, ref in zip(grads, one_block_grads, ref_grads, strict=True):
        _close(grad, one_block_grad, NUMPY_TOL)
        _close(grad, ref, TORCH_TOL)


def test_a_nan_weight_reaches_the_dx_pixels_torch_sends_it_to():
    # at stride 1 dx is a full convolution of dout padded with zeros, whose products with a
    # NaN weight would be NaN where torch's dx is finite: non-finite weights take fold instead
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(2, 3, 6, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 3, 3, 3, generator=gen, dtype=torch.float64)
    weight[0, 0, 2, 2] = math.nan  # the bottom-right tap never meets the last row or column
    b = torch.zeros(3, dtype=torch.float64)
    out, cache = ct.conv_forward(x, weight, b, stride=1, pad=1)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    _, ref_grads = _autograd(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, weight, b), dout)
    dx = ct.conv_backward(dout, cache)[0]
    assert 0 < int(torch.isnan(ref_grads[0]).sum()) < ref_grads[0].numel()
    torch.testing.assert_close(dx, ref_grads[0], equal_nan=True, **TORCH_TOL)


@pytest.mark.parametrize("filters, stride", [(2, 1), (5, 1), (5, 2), (2, (1, 3))])
def test_a_1x1_kernel_is_one_product_per_image_as_in_numpy(monkeypatch, filters, stride):
    # no columns are built (the buffer's copy is disabled), dw's shares are summed block by
    # block (one image a block here), and the numbers are torch's and the NumPy twin's; pixels
    # a stride skips get no gradient
    conv = importlib.import_module("cnnlib.torch.conv")

    def no_columns(*args):
        raise AssertionError("a 1x1 kernel without pad should not build columns")

    monkeypatch.setattr(conv, "_block_columns", no_columns)
    monkeypatch.setattr(conv, "_BLOCK_ELEMENTS", 1)
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(3, 4, 7, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(filters, 4, 1, 1, generator=gen, dtype=torch.float64)
    b = torch.randn(filters, generator=gen, dtype=torch.float64)
    out, cache = ct.conv_forward(x, weight, b, stride=stride)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    grads = ct.conv_backward(dout, cache)
    ref_out, ref_grads = _autograd(lambda x, w, b: F.conv2d(x, w, b, stride=stride),
                                   (x, weight, b), dout)
    _close(out, ref_out, TORCH_TOL)
    for grad, ref in zip(grads, ref_grads, strict=True):
        _close(grad, ref, TORCH_TOL)
    np_out, np_cache = cn.conv_forward(x.numpy(), weight.numpy(), b.numpy(), stride=stride)
    _close(out, torch.tensor(np_out), NUMPY_TOL)
    for grad, np_grad in zip(grads, cn.conv_backward(dout.numpy(), np_cache), strict=True):
        _close(grad, torch.tensor(np_grad), NUMPY_TOL)
    if stride == 2:
        assert not grads[0][:, :, 1::2].any() and not grads[0][:, :, :, 1::2].any()


@pytest.mark.parametrize("where", ["x", "w"])
def test_a_1x1_kernel_sends_nan_where_torch_does_and_takes_an_empty_batch(where):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 3, 1, 1, generator=gen, dtype=torch.float64)
    b = torch.zeros(4, dtype=torch.float64)
    if where == "x":
        x[0, 1, 2, 2], x[1, 0, 1, 1] = math.nan, math.inf
    else:
        weight[2, 1, 0, 0] = math.nan
    out, cache = ct.conv_forward(x, weight, b, stride=2)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    ref_out, ref_grads = _autograd(lambda x, w, b: F.conv2d(x, w, b, stride=2), (x, weight, b),
                                   dout)
    for ours, ref in zip((out, *ct.conv_backward(dout, cache)), (ref_out, *ref_grads),
                         strict=True):
        torch.testing.assert_close(ours, ref, equal_nan=True, **TORCH_TOL)
    out, cache = ct.conv_forward(x[:0], weight, b)
    dx, dw, db = ct.conv_backward(out, cache)
    assert out.shape == (0, 4, 5, 5) and dx.shape == (0, 3, 5, 5)
    assert not dw.any() and not db.any()


def test_image_blocks_cover_the_batch_in_order_and_follow_the_shapes():
    conv = importlib.import_module("cnnlib.torch.conv")
    cpu = torch.device("cpu")
    per_image = 16 * 9 * 32 * 32  # ResNet-20's first layers: 147,456 columns' numbers an image
    blocks = conv._image_blocks(128, per_image, cpu)
    assert blocks[0] == slice(0, 7) and blocks[-1] == slice(126, 128)  # 2**20 // per_image = 7
    assert [i for block in blocks for i in range(block.start, block.stop)] == list(range(128))
    assert conv._image_blocks(3, 10**9, cpu) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert conv._image_blocks(0, per_image, cpu) == []
    assert conv._image_blocks(128, per_image, torch.device("meta")) == [slice(0, 128)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_backward_passes_dout_exactly_where_x_is_positive_even_when_dout_is_not_finite(dtype):
    # on a CPU the backward multiplies dout by a 0/1 mask, where 0 * inf would be NaN: a dead
    # unit must pass 0 whatever dout holds (torch.where's answer), a live one dout as it is
    inf, nan = math.inf, math.nan
    x = torch.tensor([2.0, -1.0, 0.0, nan, 3.0, -2.0, 0.5], dtype=dtype)
    douts = [
        [0.5, -3.0, 2.0, 1.0, -1.5, 4.0, 1e30],  # finite: the mask's product
        [0.5, inf, 2.0, 1.0, -1.5, 4.0, 1.0],  # inf at a dead unit
        [0.5, -3.0, nan, 1.0, -1.5, -inf, 1.0],  # nan and -inf at dead units
        [inf, -3.0, 2.0, nan, nan, 4.0, -inf],  # inf and nan at live units, nan at a NaN x
    ]
    _, cache = ct.relu_forward(x)
    for values in douts:
        dout = torch.tensor(values, dtype=dtype)
        expected = torch.where(x > 0, dout, 0)
        torch.testing.assert_close(ct.relu_backward(dout, cache), expected, rtol=0, atol=0,
                                   equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["max", "avg"]),
    h=st.integers(1, 9), w=st.integers(1, 9),
    size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    seed=st.integers(0, 2**16),
)
def test_pooling_matches_torch_over_geometries(kind, h, w, size, stride, pad, seed):
    assume(2 * pad[0] <= size[0] and 2 * pad[1] <= size[1])
    assume(size[0] <= h + 2 * pad[0] and size[1] <= w + 2 * pad[1])
    # distinct values: with ties, which input wins is an implementation detail of torch
    x = torch.tensor(_distinct((2, 3, h, w), seed))
    forward, backward = getattr(ct, f"{kind}_pool_forward"), getattr(ct, f"{kind}_pool_backward")
    out, cache = forward(x, size=size, stride=stride, pad=pad)
    dout = torch.tensor(_rng(seed).standard_normal(tuple(out.shape)))
    reference = F.max_pool2d if kind == "max" else F.avg_pool2d
    ref_out, (ref_dx,) = _autograd(lambda x: reference(x, size, stride, pad), (x,), dout)
    _close(out, ref_out, TORCH_TOL)
    _close(backward(dout, cache), ref_dx, TORCH_TOL)


ELEMENTWISE_TORCH = {
    "sigmoid": ({}, torch.sigmoid),
    "tanh": ({}, torch.tanh),
    "relu": ({}, F.relu),
    "leaky_relu": ({"negative_slope": 0.2}, lambda t: F.leaky_relu(t, 0.2)),
    "elu": ({"alpha": 0.7}, lambda t: F.elu(t, alpha=0.7)),
    "selu": ({}, F.selu),
    "gelu": ({}, F.gelu),
    "gelu_tanh": ({"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE_TORCH))
def test_activations_match_torch(name):
    kwargs, reference = ELEMENTWISE_TORCH[name]
    layer = "gelu" if name == "gelu_tanh" else name
    # wide range (saturation, sigmoid's overflow-prone tail) and exact zeros (the kink rule)
    x = torch.tensor(np.concatenate([_rng(20).standard_normal(50) * 5, [0.0, -0.0, 40, -40]]))
    out, cache = getattr(ct, f"{layer}_forward")(x, **kwargs)
    dout = torch.tensor(_rng(21).standard_normal(x.shape))
    ref_out, (ref_dx,) = _autograd(reference, (x,), dout)
    _close(out, ref_out, TORCH_TOL)
    _close(getattr(ct, f"{layer}_backward")(dout, cache), ref_dx, TORCH_TOL)


@pytest.mark.parametrize("channels", [False, True])
def test_prelu_matches_torch(channels):
    x = torch.tensor(_away_from_zero((3, 4, 2, 2), 22))
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.4] if channels else 0.25, dtype=torch.float64)
    out, cache = ct.prelu_forward(x, alpha)
    dout = torch.tensor(_rng(23).standard_normal(x.shape))
    ref_out, ref_grads = _autograd(lambda x, a: F.prelu(x, a.reshape(-1)), (x, alpha), dout)
    _close(out, ref_out, TORCH_TOL)
    dx, dalpha = ct.prelu_backward(dout, cache)
    assert dalpha.shape == alpha.shape
    _close(dx, ref_grads[0], TORCH_TOL)
    _close(dalpha, ref_grads[1], TORCH_TOL)


def test_maxout_matches_its_definition_with_autograd():
    rng = _rng(24)
    x, w, b = (torch.tensor(rng.standard_normal(s)) for s in ((5, 4), (3, 4, 6), (3, 6)))
    out, cache = ct.maxout_forward(x, w, b)
    dout = torch.tensor(rng.standard_normal((5, 6)))

    def definition(x, w, b):  # K affine maps, then the max over k
        return torch.stack([x @ w[k] + b[k] for k in range(w.shape[0])]).amax(dim=0)

    ref_out, ref_grads = _autograd(definition, (x, w, b), dout)
    _close(out, ref_out, TORCH_TOL)
    for grad, ref in zip(ct.maxout_backward(dout, cache), ref_grads, strict=True):
        _close(grad, ref, TORCH_TOL)


@pytest.mark.parametrize("spatial", [False, True])
def test_batchnorm_matches_torch_batch_norm_with_running_statistics(spatial):
    rng = _rng(25)
    shape = (4, 3, 2, 3) if spatial else (8, 3)
    gamma, beta = torch.tensor(rng.uniform(0.5, 2, 3)), torch.tensor(rng.standard_normal(3))
    forward = ct.spatial_batchnorm_forward if spatial else ct.batchnorm_forward
    backward = ct.spatial_batchnorm_backward if spatial else ct.batchnorm_backward
    state = {}
    ref_mean, ref_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for step, train in enumerate((True, True, False)):
        x = torch.tensor(rng.standard_normal(shape) * (step + 1) + step)
        out, cache = forward(x, gamma, beta, state, train=train, momentum=0.9, eps=1e-3)
        dout = torch.tensor(rng.standard_normal(shape))
        # our momentum 0.9 (weight of the old value) is torch's momentum 0.1
        ref_out, ref_grads = _autograd(
            lambda x, g, b, train=train: F.batch_norm(x, ref_mean, ref_var, g, b,
                                                      training=train, momentum=0.1, eps=1e-3),
            (x, gamma, beta), dout,
        )
        _close(out, ref_out, TORCH_TOL)
        for grad, ref in zip(backward(dout, cache), ref_grads, strict=True):
            _close(grad, ref, TORCH_TOL)
        _close(state["running_mean"], ref_mean, TORCH_TOL)
        _close(state["running_var"], ref_var, TORCH_TOL)


def test_softmax_loss_matches_cross_entropy():
    rng = _rng(26)
    scores, y = torch.tensor(rng.standard_normal((6, 4)) * 5), torch.tensor(rng.integers(0, 4, 6))
    loss, dscores = ct.softmax_loss(scores, y)
    leaf = scores.clone().requires_grad_(True)
    reference = F.cross_entropy(leaf, y)
    reference.backward()
    _close(loss, reference.detach(), TORCH_TOL)
    _close(dscores, leaf.grad, TORCH_TOL)


def test_svm_loss_is_num_classes_times_multi_margin_loss():
    # multi_margin_loss averages each example's hinge sum over the C classes as well as over N;
    # svm_loss averages over N only, so svm_loss = C * multi_margin_loss (loss and gradient)
    rng = _rng(27)
    num_classes = 5
    scores = torch.tensor(rng.standard_normal((6, num_classes)))
    y = torch.tensor(rng.integers(0, num_classes, 6))
    loss, dscores = ct.svm_loss(scores, y, margin=0.5)
    leaf = scores.clone().requires_grad_(True)
    reference = num_classes * F.multi_margin_loss(leaf, y, margin=0.5)
    reference.backward()
    _close(loss, reference.detach(), TORCH_TOL)
    _close(dscores, leaf.grad, TORCH_TOL)


# ---------------------------------------------------------------- exact values


def test_conv_of_a_ramp_with_a_box_filter():
    x = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    w = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    out, cache = ct.conv_forward(x, w, torch.tensor([0.5], dtype=torch.float64))
    # each output is the sum of a 2x2 block of 0..8, plus 0.5
    assert out.tolist() == [[[[8.5, 12.5], [20.5, 24.5]]]]
    dx, dw, db = ct.conv_backward(torch.ones_like(out), cache)
    assert dx.tolist() == [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]]  # windows covering each pixel
    assert dw.tolist() == [[[[8, 12], [20, 24]]]]
    assert db.tolist() == [4]


def test_activation_and_derivative_is_the_backward_with_dout_one():
    assert set(ct.ACTIVATIONS) == set(cn.ACTIVATIONS)
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    y, dy = ct.activation_and_derivative("leaky_relu", x, negative_slope=0.1)
    assert y.tolist() == [-0.2, -0.05, 0.0, 0.5, 2.0]
    assert dy.tolist() == [0.1, 0.1, 0.1, 1.0, 1.0]  # the x <= 0 slope at the kink, as torch
    with pytest.raises(ValueError, match="name must be one of"):
        ct.activation_and_derivative("swish", x)


@pytest.mark.parametrize("naive", [False, True])
def test_max_pool_routes_a_tie_to_the_first_maximum(naive):
    suffix = "_naive" if naive else ""
    x = torch.tensor([[[[1.0, 3.0], [3.0, 3.0]]]])
    out, cache = getattr(ct, f"max_pool_forward{suffix}")(x)
    dx = getattr(ct, f"max_pool_backward{suffix}")(torch.tensor([[[[5.0]]]]), cache)
    assert out.item() == 3.0
    assert dx.tolist() == [[[[0.0, 5.0], [0.0, 0.0]]]]


def test_max_pool_never_picks_the_padding():
    x = -torch.ones(1, 1, 2, 2)  # all below the zero a zero-padding would add
    out, cache = ct.max_pool_forward(x, size=2, stride=1, pad=1)
    assert out.tolist() == [[[[-1.0] * 3] * 3]]
    dx = ct.max_pool_backward(torch.ones_like(out), cache)
    assert dx.sum().item() == 9.0  # every window's gradient reached a real input


def test_avg_pool_counts_the_padding_zeros():
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    out, _ = ct.avg_pool_forward(x, size=2, stride=2, pad=1)
    assert out.tolist() == [[[[0.25, 0.25], [0.25, 0.25]]]]


def test_softmax_loss_of_zero_scores_is_log_num_classes():
    loss, _ = ct.softmax_loss(torch.zeros(3, 10, dtype=torch.float64), torch.tensor([0, 4, 9]))
    assert float(loss) == pytest.approx(math.log(10), rel=1e-15)


def test_batchnorm_creates_running_statistics_on_the_data_device_and_dtype():
    state = {}
    x = torch.randn(5, 3, dtype=torch.float64)
    ct.batchnorm_forward(x, torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                         state, momentum=0.0)
    assert state["running_mean"].dtype == torch.float64
    _close(state["running_mean"], x.mean(dim=0), TORCH_TOL)  # momentum 0: the batch's own
    _close(state["running_var"], x.var(dim=0), TORCH_TOL)  # unbiased


# ---------------------------------------------------------------- dropout


def test_dropout_keeps_units_with_probability_keep_prob():
    x = torch.ones(200_000)
    out, (mask, *_) = ct.dropout_forward(x, keep_prob=0.3, seed=0)
    # fraction kept ~ Binomial(n, 0.3) / n: standard deviation sqrt(0.3 * 0.7 / n) ~ 1e-3,
    # so 0.005 is five standard deviations
    assert abs(mask.float().mean().item() - 0.3) < 0.005
    kept = out[mask]
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.3))
    assert abs(out.mean().item() - 1.0) < 0.02  # inverted: the mean is preserved


def test_dropout_modes_scale_as_documented():
    x = torch.arange(1.0, 9.0)
    out, (mask, *_) = ct.dropout_forward(x, keep_prob=0.5, inverted=False, seed=1)
    torch.testing.assert_close(out, x * mask)
    out, _ = ct.dropout_forward(x, keep_prob=0.5, train=False, inverted=False)
    torch.testing.assert_close(out, 0.5 * x)
    out, _ = ct.dropout_forward(x, keep_prob=0.5, train=False)
    torch.testing.assert_close(out, x)
    out, _ = ct.dropout_forward(x, keep_prob=1.0)
    torch.testing.assert_close(out, x)


def test_dropout_seed_reproduces_the_mask_and_accepts_a_generator():
    x = torch.ones(1000)
    first, _ = ct.dropout_forward(x, seed=7)
    again, _ = ct.dropout_forward(x, seed=7)
    other, _ = ct.dropout_forward(x, seed=8)
    from_generator, _ = ct.dropout_forward(x, seed=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    assert torch.equal(first, from_generator)
    assert not torch.equal(first, other)


# ---------------------------------------------------------------- dtypes


F32 = torch.float32


def _float32_calls():
    x4 = torch.randn(2, 3, 5, 5, dtype=F32)
    return {
        "conv": (ct.conv_forward, ct.conv_backward,
                 (x4, torch.randn(2, 3, 3, 3, dtype=F32), torch.randn(2, dtype=F32))),
        "conv_naive": (ct.conv_forward_naive, ct.conv_backward_naive,
                       (x4, torch.randn(2, 3, 3, 3, dtype=F32), torch.randn(2, dtype=F32))),
        "max_pool": (ct.max_pool_forward, ct.max_pool_backward, (x4,)),
        "avg_pool_naive": (ct.avg_pool_forward_naive, ct.avg_pool_backward_naive, (x4,)),
        "affine": (ct.affine_forward, ct.affine_backward,
                   (x4, torch.randn(75, 4, dtype=F32), torch.randn(4, dtype=F32))),
        "batchnorm": (lambda x, g, b: ct.spatial_batchnorm_forward(x, g, b, {}),
                      ct.spatial_batchnorm_backward, (x4, torch.ones(3, dtype=F32),
                                                      torch.zeros(3, dtype=F32))),
        "dropout": (ct.dropout_forward, ct.dropout_backward, (x4,)),
        "prelu": (ct.prelu_forward, ct.prelu_backward, (x4, torch.full((3,), 0.2))),
        "gelu": (ct.gelu_forward, ct.gelu_backward, (x4,)),
        "selu": (ct.selu_forward, ct.selu_backward, (x4,)),
        "maxout": (ct.maxout_forward, ct.maxout_backward,
                   (torch.randn(3, 4), torch.randn(2, 4, 5), torch.randn(2, 5))),
    }


FLOAT32_CALLS = _float32_calls()


@pytest.mark.parametrize("name", sorted(FLOAT32_CALLS))
def test_float32_stays_float32(name):
    forward, backward, inputs = FLOAT32_CALLS[name]
    out, cache = forward(*inputs)
    assert out.dtype == F32
    grads = backward(torch.ones_like(out), cache)
    for grad in grads if isinstance(grads, tuple) else (grads,):
        assert grad.dtype == F32


def test_float32_conv_agrees_with_torch_to_float32_precision():
    x, w, b = torch.randn(2, 8, 9, 9), torch.randn(4, 8, 3, 3), torch.randn(4)
    out, _ = ct.conv_forward(x, w, b, pad=1)
    # sums of 72 products of O(1) numbers: round-off ~ sqrt(72) * 6e-8 * |terms| ~ 1e-5
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=1), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- errors


def _f64(*shape):
    return torch.zeros(shape, dtype=torch.float64)


X4 = _f64(2, 3, 5, 5)
W4 = _f64(4, 3, 3, 3)
B4 = _f64(4)

ERRORS = {
    # conv
    "conv_x_ndim": (lambda: ct.conv_forward(_f64(3, 5, 5), W4, B4), ValueError,
                    r"x must have 4 dimensions \(N, C, H, W\), got shape \(3, 5, 5\)"),
    "conv_channels": (lambda: ct.conv_forward(X4, _f64(4, 2, 3, 3), B4), ValueError,
                      r"w must have shape \(F, 3, KH, KW\) to match the 3 channels of x "
                      r"\(2, 3, 5, 5\)"),
    "conv_bias": (lambda: ct.conv_forward(X4, W4, _f64(3)), ValueError,
                  r"b must have shape \(4,\) to match the 4 filters of w"),
    "conv_kernel_too_big": (lambda: ct.conv_forward(X4, _f64(4, 3, 6, 6), B4), ValueError,
                            r"w: the window spans 6x6 input positions but the padded input is "
                            r"only 5x5"),
    "conv_stride_zero": (lambda: ct.conv_forward(X4, W4, B4, stride=0), ValueError,
                         r"stride must be >= 1, got 0"),
    "conv_negative_pad": (lambda: ct.conv_forward(X4, W4, B4, pad=-1), ValueError,
                          r"pad must be >= 0, got -1"),
    "conv_numpy_input": (lambda: ct.conv_forward(np.zeros((2, 3, 5, 5)), W4, B4), TypeError,
                         r"x must be a torch.Tensor.*torch.from_numpy"),
    "conv_int_input": (lambda: ct.conv_forward(torch.zeros(2, 3, 5, 5, dtype=torch.long), W4, B4),
                       TypeError, r"x must be a floating-point array"),
    "conv_dtype_mismatch": (lambda: ct.conv_forward(X4, W4.float(), B4), TypeError,
                            r"w has dtype torch.float32 but x has torch.float64"),
    "conv_dout": (lambda: ct.conv_backward(_f64(2, 4, 2, 2), ct.conv_forward(X4, W4, B4)[1]),
                  ValueError, r"dout must have shape \(2, 4, 3, 3\)"),
    "conv_naive_dout": (lambda: ct.conv_backward_naive(
        _f64(2, 4, 2, 2), ct.conv_forward_naive(X4, W4, B4)[1]), ValueError,
        r"dout must have shape \(2, 4, 3, 3\)"),
    # pooling
    "pool_x_ndim": (lambda: ct.max_pool_forward(_f64(3, 4, 4)), ValueError,
                    r"x must have 4 dimensions"),
    "pool_too_much_padding": (lambda: ct.max_pool_forward(X4, size=2, pad=2), ValueError,
                              r"pad must be at most half the window size \(2, 2\) along each "
                              r"axis .* got pad=\(2, 2\)"),
    "pool_window_too_big": (lambda: ct.avg_pool_forward(X4, size=6), ValueError,
                            r"size: the window spans 6x6 input positions but the padded "
                            r"input is only 5x5"),
    "pool_stride_zero": (lambda: ct.avg_pool_forward(X4, stride=0), ValueError,
                         r"stride must be >= 1, got 0"),
    "pool_size_float": (lambda: ct.max_pool_forward(X4, size=2.5), TypeError,
                        r"size must be an int"),
    "pool_dout": (lambda: ct.max_pool_backward(_f64(2, 3, 3, 3), ct.max_pool_forward(X4)[1]),
                  ValueError, r"dout must have shape \(2, 3, 2, 2\)"),
    # affine
    "affine_x_1d": (lambda: ct.affine_forward(_f64(5), _f64(5, 2), _f64(2)), ValueError,
                    r"x must have at least 2 dimensions"),
    "affine_w": (lambda: ct.affine_forward(X4, _f64(74, 2), _f64(2)), ValueError,
                 r"w must have shape \(75, M\)"),
    "affine_b": (lambda: ct.affine_forward(X4, _f64(75, 2), _f64(3)), ValueError,
                 r"b must have shape \(2,\)"),
    "affine_device": (lambda: ct.affine_forward(X4, _f64(75, 2).to("meta"), _f64(2)), ValueError,
                      r"w is on meta but x is on cpu"),
    # activations
    "prelu_alpha": (lambda: ct.prelu_forward(X4, _f64(4)), ValueError,
                    r"alpha must have shape \(\) \(one shared slope\) or \(3,\)"),
    "gelu_approximate": (lambda: ct.gelu_forward(X4, approximate="erf"), ValueError,
                         r'approximate must be "none" or "tanh"'),
    "leaky_slope": (lambda: ct.leaky_relu_forward(X4, negative_slope="0.1"), TypeError,
                    r"negative_slope must be a number"),
    "maxout_w": (lambda: ct.maxout_forward(_f64(5, 4), _f64(3, 5, 6), _f64(3, 6)), ValueError,
                 r"w must have shape \(K, 4, M\)"),
    "relu_dout": (lambda: ct.relu_backward(_f64(2, 2), _f64(2, 3)), ValueError,
                  r"dout must have shape \(2, 3\)"),
    # batch normalisation
    "bn_gamma": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(2), _f64(3), {}), ValueError,
                 r"gamma must have shape \(3,\) to match x's 3 features"),
    "bn_beta": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(3), _f64(4), {}), ValueError,
                r"beta must have shape \(3,\)"),
    "bn_x_ndim": (lambda: ct.batchnorm_forward(_f64(4, 3, 2), _f64(3), _f64(3), {}), ValueError,
                  r"x must have 2 dimensions \(N, D\)"),
    "bn_spatial_ndim": (lambda: ct.spatial_batchnorm_forward(_f64(4, 3), _f64(3), _f64(3), {}),
                        ValueError, r"x must have 4 dimensions \(N, C, H, W\)"),
    "bn_state": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(3), _f64(3), None), TypeError,
                 r"state must be a dict"),
    "bn_running": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(3), _f64(3),
                                                {"running_mean": _f64(2)}), ValueError,
                   r"state\['running_mean'\] must have shape \(3,\)"),
    "bn_momentum": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(3), _f64(3), {}, momentum=1.5),
                    ValueError, r"momentum must be in \[0, 1\]"),
    "bn_eps": (lambda: ct.batchnorm_forward(_f64(4, 3), _f64(3), _f64(3), {}, eps=0), ValueError,
               r"eps must be in \(0, inf\)"),
    "bn_one_example": (lambda: ct.batchnorm_forward(_f64(1, 3), _f64(3), _f64(3), {}), ValueError,
                       r"at least 2 values per feature"),
    # dropout
    "dropout_zero": (lambda: ct.dropout_forward(X4, keep_prob=0.0), ValueError,
                     r"keep_prob must be in \(0, 1\] \(the probability of keeping a unit\)"),
    "dropout_above_one": (lambda: ct.dropout_forward(X4, keep_prob=1.5), ValueError,
                          r"keep_prob must be in \(0, 1\]"),
    "dropout_seed": (lambda: ct.dropout_forward(X4, seed="42"), TypeError,
                     r"seed must be an int, a torch.Generator or None"),
    # losses
    "loss_float_labels": (lambda: ct.softmax_loss(_f64(3, 4), _f64(3)), TypeError,
                          r"y must hold integer class indices"),
    "loss_label_range": (lambda: ct.svm_loss(_f64(3, 4), torch.tensor([0, 4, 1])), ValueError,
                         r"y must hold class indices in \[0, 4\), got values from 0 to 4"),
    "loss_label_count": (lambda: ct.softmax_loss(_f64(3, 4), torch.tensor([0, 1])), ValueError,
                         r"y must have shape \(3,\) to match scores"),
    "loss_scores_ndim": (lambda: ct.softmax_loss(_f64(3), torch.tensor([0, 1, 2])), ValueError,
                         r"scores must have 2 dimensions \(N, C\)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_the_argument(case):
    call, error, message = ERRORS[case]
    with pytest.raises(error, match=message):
        call()
