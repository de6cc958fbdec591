"""Exact-value tests of cnnlib.arithmetic, including the source material's worked examples."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlib import arithmetic as ar
from cnnlib.arithmetic import Conv, Linear, Pool

# ------------------------------------------------------------------ worked examples from the slides


def test_alexnet_conv1_output_size():
    # (227 - 11) / 4 + 1 = 55
    assert ar.conv_output_size(227, 11, stride=4) == 55


def test_alexnet_conv1_weights():
    # 11*11*3 weights per filter, 96 filters: 34,848 (about 35K), biases excluded
    assert ar.conv_params(3, 96, 11, bias=False) == 34_848


def test_ten_5x5_filters_on_3x32x32():
    # 10 5x5 filters, stride 1, pad 2 on 3x32x32: 10x32x32 out, 760 params, 768,000 multiply-adds
    out = ar.conv_output_shape((3, 32, 32), 10, kernel=5, stride=1, pad=2)
    assert out == (10, 32, 32)
    assert ar.conv_params(3, 10, 5) == 760 == 10 * (5 * 5 * 3 + 1)
    assert ar.conv_macs(3, 10, 5, out[1:]) == 768_000 == 75 * 10_240


def test_local_connectivity_and_sharing_1d_example():
    # 7 inputs, 3 outputs (window 3, stride 2): dense 7*3 = 21, locally connected 3*3 = 9,
    # locally connected with shared weights (a convolution) 3.
    n_out = ar.conv_output_size(7, 3, stride=2)
    assert n_out == 3
    assert ar.linear_params(7, n_out, bias=False) == 21
    assert ar.locally_connected_params(1, 1, (1, 3), (1, n_out), bias=False) == 9
    assert ar.conv_params(1, 1, (1, 3), bias=False) == 3


@pytest.mark.parametrize("channels", [1, 64, 256])
def test_three_3x3_convs_see_as_far_as_one_7x7(channels):
    assert ar.receptive_field([(3, 1)] * 3) == 7 == ar.receptive_field([(7, 1)])
    stacked = 3 * ar.conv_params(channels, channels, 3, bias=False)
    single = ar.conv_params(channels, channels, 7, bias=False)
    assert stacked == 27 * channels**2
    assert single == 49 * channels**2


def test_receptive_field_grows_by_k_minus_1_per_layer():
    # With L layers of kernel K (stride 1) the receptive field is 1 + L*(K - 1).
    for k in (3, 5):
        for layers in range(1, 6):
            assert ar.receptive_field([(k, 1)] * layers) == 1 + layers * (k - 1)


def test_dilated_3x3_rate_2_on_7x7():
    # The slide: input 7x7, filter 3x3, rate 2 -> output 3x3
    assert ar.effective_kernel_size(3, 2) == 5
    assert ar.conv_output_size(7, 3, dilation=2) == 3


def test_pool_output_floor():
    # AlexNet pool1: floor((56 - 3) / 2 + 1) = floor(27.5) = 27
    assert ar.pool_output_size(56, 3, stride=2) == 27
    with pytest.raises(ValueError, match="stride"):
        ar.pool_output_size(56, 3, stride=2, strict=True)
    assert ar.pool_output_size(28, 2) == 14  # stride defaults to the kernel


def test_same_padding():
    assert [ar.same_padding(k) for k in (1, 3, 5, 7, 11)] == [0, 1, 2, 3, 5]
    assert ar.same_padding(3, dilation=2) == 2
    with pytest.raises(ValueError, match="even"):
        ar.same_padding(4)


def test_1x1_conv_is_a_per_pixel_linear_layer():
    # 1x1 conv with 32 filters on 64x56x56: each filter is a 64-dim dot product per position.
    assert ar.conv_output_shape((64, 56, 56), 32, 1) == (32, 56, 56)
    assert ar.conv_params(64, 32, 1) == ar.linear_params(64, 32) == 64 * 32 + 32
    assert ar.conv_macs(64, 32, 1, 56) == 56 * 56 * ar.linear_macs(64, 32)


# AlexNet as in the lecture's table (single tower 64-192-384-256-256). Columns: output C, H/W,
# memory (KB), params (k), MFLOPs (multiply-adds), each as the slide rounds them.
ALEXNET_SLIDE = [
    ("conv1", 64, 56, 784, 23, 73),
    ("pool1", 64, 27, 182, 0, 0),
    ("conv2", 192, 27, 547, 307, 224),
    ("pool2", 192, 13, 127, 0, 0),
    ("conv3", 384, 13, 254, 664, 112),
    ("conv4", 256, 13, 169, 885, 145),
    ("conv5", 256, 13, 169, 590, 100),
    ("pool5", 256, 6, 36, 0, 0),
    ("fc6", 4096, None, 16, 37_749, 38),
    ("fc7", 4096, None, 16, 16_777, 17),
    ("fc8", 1000, None, 4, 4_096, 4),
]
ALEXNET_LAYERS = [
    Conv(64, 11, stride=4, pad=2), Pool(3, 2),
    Conv(192, 5, pad=2), Pool(3, 2),
    Conv(384, 3, pad=1), Conv(256, 3, pad=1), Conv(256, 3, pad=1), Pool(3, 2),
    # The slide counts fully-connected weights without biases (37,749k = 9216*4096 / 1000).
    Linear(4096, bias=False), Linear(4096, bias=False), Linear(1000, bias=False),
]  # fmt: skip


def test_alexnet_table_row_by_row():
    names = [row[0] for row in ALEXNET_SLIDE]
    rows = ar.layer_table((3, 227, 227), ALEXNET_LAYERS, names=names)
    for got, (name, c, hw, kb, kparams, mflops) in zip(rows, ALEXNET_SLIDE, strict=True):
        assert got.name == name
        assert got.output_shape == ((c, hw, hw) if hw else (c,))
        assert round(got.memory_kb) == kb, name
        assert round(got.params / 1000) == kparams, name
        if name == "conv4":
            # The slide prints 145; its own formula gives (256*13*13)*(384*3*3) = 149,520,384.
            assert got.flops == 149_520_384
        else:
            assert round(got.flops / 1e6) == mflops, name
    assert rows[0].flops == 72_855_552 and rows[0].params == 23_296
    assert rows[1].memory_kb == 182.25


def test_lenet5_table_from_the_slides():
    # 1x28x28 -> conv 20@5x5 pad 2 -> pool 2 -> conv 50@5x5 pad 2 -> pool 2 -> fc 500 -> fc 10
    layers = [Conv(20, 5, pad=2), Pool(2), Conv(50, 5, pad=2), Pool(2), Linear(500), Linear(10)]
    rows = ar.layer_table((1, 28, 28), layers)
    assert [r.name for r in rows] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]
    assert [r.output_shape for r in rows] == [
        (20, 28, 28), (20, 14, 14), (50, 14, 14), (50, 7, 7), (500,), (10,)
    ]  # fmt: skip
    assert [r.params for r in rows] == [520, 0, 25_050, 0, 1_225_500, 5_010]
    assert rows[0].flops == 20 * 28 * 28 * 25 and rows[1].flops == 20 * 14 * 14 * 4
    assert rows[4].flops == 2450 * 500
    assert rows[3].memory_kb == 50 * 7 * 7 * 4 / 1024
    table = ar.format_table(rows)
    assert "conv2" in table and "1,256,080" in table  # total parameters


def test_memory_kb():
    assert ar.memory_kb((64, 56, 56)) == 784.0
    assert ar.activation_memory((64, 56, 56)) == 200_704 * 4
    assert ar.memory_kb((10,), bytes_per_element=8) == 80 / 1024


def test_receptive_fields_with_strides_and_dilation():
    # conv3 s1, pool2 s2, conv3 s1: 3, then +1*1 = 4, then +2*2 = 8
    assert ar.receptive_fields([(3, 1), (2, 2), (3, 1)]) == [3, 4, 8]
    assert ar.total_stride([(3, 1), (2, 2), (3, 1)]) == 2
    # dilated stack (WaveNet style): 1, 2, 4 dilations of a 3-kernel: 1 + 2 + 4 + 8 = 15
    assert ar.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15
    # specs work too, and Pool's stride defaults to its kernel
    assert ar.receptive_field([Conv(8, 3), Pool(2), Conv(8, 3)]) == 8
    assert ar.receptive_field([]) == 1


def test_depthwise_groups():
    assert ar.conv_params(32, 32, 3, bias=False, groups=32) == 32 * 9
    assert ar.conv_macs(32, 32, 3, 10, groups=32) == 32 * 100 * 9
    with pytest.raises(ValueError, match="groups"):
        ar.conv_params(30, 32, 3, groups=4)


def test_rectangular_kernels_and_strides():
    assert ar.conv_output_shape((3, 20, 30), 8, kernel=(3, 5), stride=(1, 2), pad=(1, 0)) == (
        8, 20, 13
    )  # fmt: skip
    assert ar.conv_params(3, 8, (3, 5)) == 8 * 3 * 15 + 8


# ------------------------------------------------------------------ which inputs each output reads


def test_window_taps_follow_stride_pad_and_dilation():
    assert ar.window_taps(7, 3, stride=2) == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert ar.window_taps(4, 3, pad=1) == [[-1, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert ar.window_taps(7, 3, dilation=2) == [[0, 2, 4], [1, 3, 5], [2, 4, 6]]
    assert len(ar.window_taps(227, 11, stride=4)) == ar.conv_output_size(227, 11, stride=4)


def test_unread_positions():
    assert ar.unread_positions(8, 3, stride=2) == [7]  # dropped by the floor
    assert ar.unread_positions(8, 3, stride=2, pad=1) == []  # only a padding zero is dropped
    assert ar.unread_positions(7, 1, stride=2) == [1, 3, 5]  # stride larger than the kernel
    assert ar.unread_positions(56, 3, stride=2) == [55]  # AlexNet pool1 skips its last row


def test_geometry_errors_come_from_the_arithmetic():
    with pytest.raises(ValueError, match="kernel"):
        ar.window_taps(3, 5)


def test_pool_dilation_and_kind():
    # a 3-wide pool at dilation 2 spans 5: 9 - 5 + 1 = 5 outputs, and a receptive field of 5
    (row,) = ar.layer_table((1, 9, 9), [Pool(3, 1, dilation=2)])
    assert row.output_shape == (1, 5, 5)
    assert ar.receptive_field([Pool(3, 1, dilation=2)]) == 5
    assert ar.pool_output_shape((4, 9, 9), 3, 1, dilation=2) == (4, 5, 5)
    with pytest.raises(ValueError, match="kind must be 'max' or 'avg', got 'bogus'"):
        Pool(2, kind="bogus")


# ------------------------------------------------------------------ errors name the argument


ERRORS = [
    (lambda: ar.conv_output_size(5, 7), ValueError, r"kernel: .*spans 7.*only 5"),
    (
        lambda: ar.conv_output_size(6, 3, stride=2, strict=True),
        ValueError,
        r"stride: .*3 is not a multiple of stride=2",
    ),
    (lambda: ar.conv_output_size(6, 3, stride=0), ValueError, r"stride must be >= 1, got 0"),
    (lambda: ar.conv_output_size(6, 3, pad=-1), ValueError, r"pad must be >= 0, got -1"),
    (lambda: ar.conv_output_size(6.0, 3), TypeError, r"size must be an integer, got 6.0 \(float\)"),
    (lambda: ar.conv_output_size(6, True), TypeError, r"kernel must be an integer"),
    (lambda: ar.conv_output_shape((32, 32), 4, 3), ValueError, r"must have 3 dimensions, got 2"),
    (lambda: ar.conv_params(3, 8, (3, 3, 3)), ValueError, r"kernel must be an int or a pair"),
    (lambda: ar.receptive_field([3]), TypeError, r"layers: each layer must be"),
    (lambda: ar.layer_table((1, 8, 8), [Linear(4), Conv(2, 3)]), ValueError, r"a Conv needs"),
    (lambda: ar.layer_table((1, 8, 8), ["conv"]), TypeError, r"layers\[0\] must be"),
]


@pytest.mark.parametrize(("call", "error", "pattern"), ERRORS)
def test_errors_name_the_argument(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ------------------------------------------------------------------ geometry sweeps against torch

geometry = st.tuples(
    st.integers(1, 40),  # size
    st.integers(1, 7),  # kernel
    st.integers(1, 4),  # stride
    st.integers(0, 4),  # pad
    st.integers(1, 3),  # dilation
)


@settings(max_examples=200, deadline=None)
@given(geometry)
def test_conv_output_size_matches_torch(g):
    size, kernel, stride, pad, dilation = g
    if size + 2 * pad < dilation * (kernel - 1) + 1:
        with pytest.raises(ValueError, match="kernel"):
            ar.conv_output_size(size, kernel, stride, pad, dilation)
        return
    x = torch.zeros(1, 1, size, 1)
    w = torch.zeros(1, 1, kernel, 1)
    out = torch.nn.functional.conv2d(
        x, w, stride=(stride, 1), padding=(pad, 0), dilation=(dilation, 1)
    )
    assert ar.conv_output_size(size, kernel, stride, pad, dilation) == out.shape[2]


@settings(max_examples=200, deadline=None)
@given(geometry)
def test_strict_raises_exactly_when_the_stride_does_not_divide(g):
    size, kernel, stride, pad, dilation = g
    span = size + 2 * pad - (dilation * (kernel - 1) + 1)
    if span < 0:
        return
    if span % stride:
        with pytest.raises(ValueError, match="stride"):
            ar.conv_output_size(size, kernel, stride, pad, dilation, strict=True)
    else:
        assert (
            ar.conv_output_size(size, kernel, stride, pad, dilation, strict=True)
            == span // stride + 1
        )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=5
    )
)
def test_receptive_field_matches_the_gradient_footprint(layers):
    # The receptive field of an output is the set of inputs its gradient reaches: build the stack
    # from 1-D convs with all-ones weights, backprop from the first output and measure the span.
    span_needed = 1 + sum(
        (d * (k - 1)) * math.prod(s for _, s, _ in layers[:i]) for i, (k, _, d) in enumerate(layers)
    )
    x = torch.zeros(1, 1, span_needed + 8, requires_grad=True)
    y = x
    for k, s, d in layers:
        y = torch.nn.functional.conv1d(y, torch.ones(1, 1, k), stride=s, dilation=d)
    y[0, 0, 0].backward()
    touched = torch.nonzero(x.grad[0, 0]).flatten()
    assert ar.receptive_field(layers) == int(touched.max() - touched.min() + 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_conv_params_match_torch(c_in, c_out, kh, kw, bias):
    layer = torch.nn.Conv2d(c_in, c_out, (kh, kw), bias=bias)
    assert ar.conv_params(c_in, c_out, (kh, kw), bias=bias) == sum(
        p.numel() for p in layer.parameters()
    )


def test_docstring_examples():
    import doctest

    result = doctest.testmod(ar, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0
