"""cnnlib.numpy.activations: values, derivatives, gradient checks and parity with PyTorch."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, special

from cnnlib.numpy import activations as act
from cnnlib.numpy.gradcheck import check_layer_gradients

RNG_SHAPE = (4, 3, 5)


def _x(seed=0, shape=RNG_SHAPE, gap=0.0, dtype=np.float64):
    """Standard normal inputs; with gap > 0 every entry is pushed at least `gap` away from 0,
    so a step of h = 1e-5 in the gradient check never crosses a kink at 0."""
    x = np.random.default_rng(seed).standard_normal(shape)
    x = x + gap * np.sign(x)
    return x.astype(dtype)


# name -> (our forward kwargs, torch function of a tensor); the elementwise activations
ELEMENTWISE = {
    "sigmoid": ({}, torch.sigmoid),
    "tanh": ({}, torch.tanh),
    "relu": ({}, F.relu),
    "leaky_relu": ({"negative_slope": 0.1}, lambda t: F.leaky_relu(t, 0.1)),
    "elu": ({"alpha": 1.3}, lambda t: F.elu(t, alpha=1.3)),
    "selu": ({}, F.selu),
    "gelu": ({}, F.gelu),
    "gelu_tanh": ({"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
}


def _pair(name):
    return act.ACTIVATIONS["gelu" if name == "gelu_tanh" else name]


# ---------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_gradients_match_numerical(name):
    # relu, leaky relu, elu and selu have a kink (in f or f') at 0: inputs stay 0.1 away from it.
    # Elsewhere each is smooth, so the centred difference is accurate to ~h² f''' ~ 1e-10.
    kwargs, _ = ELEMENTWISE[name]
    forward, backward = _pair(name)
    errors = check_layer_gradients(forward, backward, _x(seed=1, gap=0.1), **kwargs)
    assert max(errors) < 1e-7


@pytest.mark.parametrize("alpha_shape", [(), (3,)])
def test_prelu_gradients_including_dalpha(alpha_shape):
    x = _x(seed=2, shape=(2, 3, 2, 2), gap=0.1)
    alpha = np.random.default_rng(3).uniform(0.05, 0.5, size=alpha_shape)
    dx_error, dalpha_error = check_layer_gradients(act.prelu_forward, act.prelu_backward, x, alpha)
    assert dx_error < 1e-7
    assert dalpha_error < 1e-7  # out is linear in alpha: only round-off


def _maxout_inputs(seed=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 4))
    w = rng.standard_normal((3, 4, 6))
    b = rng.standard_normal((3, 6))
    return x, w, b


def test_maxout_gradients_away_from_ties():
    x, w, b = _maxout_inputs()
    # the check perturbs one entry by h = 1e-5, moving a piece by at most h * max(|x|, |w|, 1)
    # < 1e-4; a winner ahead of the runner-up by more than that cannot change
    pieces = np.sort(np.einsum("nd,kdm->nkm", x, w) + b, axis=1)
    assert (pieces[:, -1] - pieces[:, -2]).min() > 1e-3
    errors = check_layer_gradients(act.maxout_forward, act.maxout_backward, x, w, b)
    assert max(errors) < 1e-7


# ---------------------------------------------------------------- parity with PyTorch


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_matches_torch(name):
    kwargs, torch_fn = ELEMENTWISE[name]
    forward, backward = _pair(name)
    # include large inputs and exact zeros (where the kinks use torch's one-sided convention)
    x = np.concatenate([_x(seed=5).ravel() * 3, [0.0, -0.0, 30.0, -30.0, 700.0, -700.0]])
    dout = np.random.default_rng(6).standard_normal(x.shape)
    out, cache = forward(x, **kwargs)
    dx = backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch_fn(tx)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("alpha_shape", [(), (3,)])
def test_prelu_matches_torch(alpha_shape):
    x = _x(seed=7, shape=(2, 3, 4))
    alpha = np.random.default_rng(8).uniform(0.05, 0.5, size=alpha_shape)
    dout = np.random.default_rng(9).standard_normal(x.shape)
    out, cache = act.prelu_forward(x, alpha)
    dx, dalpha = act.prelu_backward(dout, cache)
    assert dalpha.shape == alpha_shape
    tx = torch.tensor(x, requires_grad=True)
    talpha = torch.tensor(alpha.reshape(-1), requires_grad=True)  # torch wants (1,) or (C,)
    tout = F.prelu(tx, talpha)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(dalpha.reshape(-1), talpha.grad.numpy(), rtol=1e-12)


def test_maxout_matches_torch_autograd():
    x, w, b = _maxout_inputs(seed=10)
    dout = np.random.default_rng(11).standard_normal((5, 6))
    out, cache = act.maxout_forward(x, w, b)
    grads = act.maxout_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = (torch.einsum("nd,kdm->nkm", tx, tw) + tb).amax(dim=1)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13)
    for ours, theirs in zip(grads, (tx, tw, tb), strict=True):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- exact values


def test_sigmoid_exact_values_and_derivative_at_zero():
    y, dy = act.activation_and_derivative("sigmoid", np.array([0.0]))
    assert y[0] == 0.5
    assert dy[0] == 0.25  # the largest slope a sigmoid ever has


def test_sigmoid_is_stable_for_huge_inputs():
    x = np.array([-1e4, -700.0, -40.0, 0.0, 40.0, 1e4])
    # no overflow, division by zero or invalid value (underflow of exp(-1e4) to 0 is harmless)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out, cache = act.sigmoid_forward(x)
        act.sigmoid_backward(np.ones_like(x), cache)
    # expit is scipy's careful implementation; relative accuracy holds even at exp(-700) ~ 1e-304
    np.testing.assert_allclose(out, special.expit(x), rtol=1e-15, atol=0)
    assert out[0] == 0.0 and out[-1] == 1.0
    assert out[2] > 0  # exp(-40) / (1 + exp(-40)), not rounded to 0
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out32, _ = act.sigmoid_forward(np.array([-200.0, 200.0], dtype=np.float32))
    np.testing.assert_array_equal(out32, [0.0, 1.0])


def test_selu_constants_are_the_published_ones_and_self_normalise():
    assert act.SELU_ALPHA == 1.6732632423543772848170429916717
    assert act.SELU_SCALE == 1.0507009873554804934193349852946
    out, _ = act.selu_forward(np.array([1.0, -1e3]))
    assert out[0] == act.SELU_SCALE
    assert out[1] == -act.SELU_SCALE * act.SELU_ALPHA
    # the constants are chosen so that z ~ N(0, 1) gives selu(z) mean 0 and variance 1;
    # quadrature of the two integrals is accurate to ~1e-10, the constants to ~1e-9
    def moment(power):
        def integrand(z):
            return act.selu_forward(np.array([z]))[0][0] ** power * math.exp(-z * z / 2)
        left = integrate.quad(integrand, -np.inf, 0, epsabs=1e-13)[0]
        right = integrate.quad(integrand, 0, np.inf, epsabs=1e-13)[0]
        return (left + right) / math.sqrt(2 * math.pi)

    assert abs(moment(1)) < 1e-8
    assert abs(moment(2) - 1) < 1e-8


@pytest.mark.parametrize(
    ("name", "kwargs", "x", "f", "df"),
    [
        ("relu", {}, [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 1.0]),
        ("leaky_relu", {}, [-2.0, 0.0, 3.0], [-0.02, 0.0, 3.0], [0.01, 0.01, 1.0]),
        ("tanh", {}, [0.0], [0.0], [1.0]),
        ("elu", {"alpha": 2.0}, [0.0, 5.0], [0.0, 5.0], [2.0, 1.0]),
        ("gelu", {}, [0.0], [0.0], [0.5]),
        ("gelu", {"approximate": "tanh"}, [0.0], [0.0], [0.5]),
    ],
)
def test_activation_and_derivative_exact_values(name, kwargs, x, f, df):
    y, dy = act.activation_and_derivative(name, np.array(x), **kwargs)
    np.testing.assert_array_equal(y, f)
    np.testing.assert_array_equal(dy, df)


def test_maxout_generalises_relu():
    # pieces 0 and x w + b: maxout is relu of the second piece
    x, w, b = _maxout_inputs(seed=12)
    w[0], b[0] = 0.0, 0.0
    out, _ = act.maxout_forward(x, w[:2], b[:2])
    # einsum and @ may sum in different orders: equal up to a few ulps
    np.testing.assert_allclose(out, np.maximum(x @ w[1] + b[1], 0), rtol=1e-14, atol=0)


def test_gelu_tanh_is_close_to_exact():
    x = np.linspace(-6, 6, 1001)
    exact, _ = act.gelu_forward(x)
    approx, _ = act.gelu_forward(x, approximate="tanh")
    assert 1e-5 < np.abs(exact - approx).max() < 1e-3  # close, but a different function


# ---------------------------------------------------------------- dtype


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_keeps_float32(name):
    kwargs, _ = ELEMENTWISE[name]
    forward, backward = _pair(name)
    x = _x(seed=13, dtype=np.float32)
    out, cache = forward(x, **kwargs)
    assert out.dtype == np.float32
    assert backward(np.ones_like(out), cache).dtype == np.float32


def test_prelu_and_maxout_keep_float32():
    x = _x(seed=14, shape=(2, 3, 4), dtype=np.float32)
    out, cache = act.prelu_forward(x, np.full(3, 0.2, dtype=np.float32))
    dx, dalpha = act.prelu_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dalpha.dtype == np.float32
    x, w, b = (a.astype(np.float32) for a in _maxout_inputs())
    out, cache = act.maxout_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in act.maxout_backward(np.ones_like(out), cache))


# ---------------------------------------------------------------- validation


def test_activations_reject_integer_inputs():
    for name, (forward, _) in act.ACTIVATIONS.items():
        with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
            forward(np.arange(3))
        assert name  # every registered activation checked


def test_prelu_alpha_shape_validation():
    x = _x(shape=(2, 3, 4))
    with pytest.raises(ValueError, match=r"alpha must have shape \(\) \(one shared slope\) or "
                                         r"\(3,\) .*got an array of shape \(4,\)"):
        act.prelu_forward(x, np.ones(4))
    with pytest.raises(ValueError, match=r"alpha must have shape \(\).*no channel axis"):
        act.prelu_forward(np.ones(5), np.ones(5))
    with pytest.raises(TypeError, match=r"alpha must be a floating-point array"):
        act.prelu_forward(x, np.array(1))


def test_argument_validation_messages():
    x = _x()
    with pytest.raises(TypeError, match="negative_slope must be a number, got str"):
        act.leaky_relu_forward(x, "0.1")
    with pytest.raises(ValueError, match="approximate must be \"none\" or \"tanh\", got 'fast'"):
        act.gelu_forward(x, approximate="fast")
    with pytest.raises(ValueError, match=r"name must be one of .*got 'swish'"):
        act.activation_and_derivative("swish", x)
    _, cache = act.relu_forward(x)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3, 5\).*got.*\(4, 3\)"):
        act.relu_backward(np.ones((4, 3)), cache)


def test_maxout_validation_messages():
    x, w, b = _maxout_inputs()
    with pytest.raises(ValueError, match=r"x must have 2 dimensions \(N, D\), got shape \(5, 4, 1"):
        act.maxout_forward(x[..., None], w, b)
    with pytest.raises(ValueError, match=r"w must have 3 dimensions \(K, D, M\)"):
        act.maxout_forward(x, w[0], b)
    with pytest.raises(ValueError, match=r"w must have shape \(K, 4, M\) to match x's 4 features,"
                                         r" got an array of shape \(3, 3, 6\)"):
        act.maxout_forward(x, w[:, :3], b)
    with pytest.raises(ValueError, match=r"b must have shape \(3, 6\).*got.*\(3, 5\)"):
        act.maxout_forward(x, w, b[:, :5])
