"""cnnlib.numpy.optim: update rules by hand and against torch.optim, schedules in closed form."""

import math

import numpy as np
import pytest
import torch

from cnnlib.numpy import optim

W0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.5, -1.0, 2.0])
G2 = np.array([-0.25, 0.5, 1.0])

# ---------------------------------------------------------------- two steps worked out by hand


def test_sgd_by_hand():
    w1, config = optim.sgd(W0, G1, {"learning_rate": 0.1})
    np.testing.assert_allclose(w1, [0.95, -1.9, 0.3], rtol=0, atol=1e-15)
    w2, _ = optim.sgd(w1, G2, config)
    np.testing.assert_allclose(w2, [0.975, -1.95, 0.2], rtol=0, atol=1e-15)


def test_sgd_does_not_modify_its_input():
    w = W0.copy()
    optim.sgd(w, G1)
    np.testing.assert_array_equal(w, W0)


def test_sgd_momentum_by_hand():
    config = {"learning_rate": 0.1, "momentum": 0.5}
    w1, config = optim.sgd_momentum(W0, G1, config)
    # v1 = 0.5*0 + g1 = g1
    np.testing.assert_allclose(config["velocity"], G1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(w1, [0.95, -1.9, 0.3], rtol=0, atol=1e-15)
    w2, config = optim.sgd_momentum(w1, G2, config)
    # v2 = 0.5*[0.5, -1, 2] + [-0.25, 0.5, 1] = [0, 0, 2]; w2 = w1 - 0.1*v2
    np.testing.assert_allclose(config["velocity"], [0.0, 0.0, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(w2, [0.95, -1.9, 0.1], rtol=0, atol=1e-15)


def test_nesterov_by_hand():
    config = {"learning_rate": 0.1, "momentum": 0.5}
    w1, config = optim.nesterov(W0, G1, config)
    # v1 = g1; step = g1 + 0.5*v1 = 1.5*g1 = [0.75, -1.5, 3]
    np.testing.assert_allclose(w1, [0.925, -1.85, 0.2], rtol=0, atol=1e-15)
    w2, config = optim.nesterov(w1, G2, config)
    # v2 = [0, 0, 2]; step = g2 + 0.5*v2 = [-0.25, 0.5, 2]
    np.testing.assert_allclose(w2, [0.95, -1.9, 0.0], rtol=0, atol=1e-15)


def test_rmsprop_by_hand():
    config = {"learning_rate": 0.1, "decay_rate": 0.5, "epsilon": 1e-8}
    w1, config = optim.rmsprop(W0, G1, config)
    # cache1 = 0.5*g1^2 = [0.125, 0.5, 2]; step = 0.1*g1/(sqrt(cache1) + eps)
    cache1 = np.array([0.125, 0.5, 2.0])
    np.testing.assert_allclose(config["cache"], cache1, rtol=0, atol=1e-15)
    # sqrt(0.5*g^2) = |g|/sqrt(2), so the first step is 0.1*sqrt(2)*sign(g) (up to eps)
    expected1 = W0 - 0.1 * G1 / (np.sqrt(cache1) + 1e-8)
    np.testing.assert_allclose(expected1, W0 - 0.1 * math.sqrt(2) * np.sign(G1), atol=1e-8)
    np.testing.assert_allclose(w1, expected1, rtol=1e-15)
    w2, config = optim.rmsprop(w1, G2, config)
    # cache2 = 0.5*cache1 + 0.5*g2^2 = [0.09375, 0.375, 1.5]
    cache2 = np.array([0.09375, 0.375, 1.5])
    np.testing.assert_allclose(config["cache"], cache2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(w2, expected1 - 0.1 * G2 / (np.sqrt(cache2) + 1e-8), rtol=1e-15)


def test_adam_by_hand():
    config = {"learning_rate": 0.1, "beta1": 0.5, "beta2": 0.75, "epsilon": 1e-8}
    w1, config = optim.adam(W0, G1, config)
    # t=1: m = 0.5*g1, v = 0.25*g1^2; m_hat = g1, v_hat = g1^2: the first step is lr*sign(g1)
    assert config["t"] == 1
    np.testing.assert_allclose(config["m"], 0.5 * G1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(config["v"], 0.25 * G1**2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(w1, W0 - 0.1 * np.sign(G1), rtol=0, atol=1e-8)
    w2, config = optim.adam(w1, G2, config)
    # t=2: m = 0.5*m1 + 0.5*g2 = [0, 0, 1]; v = 0.75*v1 + 0.25*g2^2 = [0.0625, 0.25, 1]
    # m_hat = m / (1 - 0.25) = [0, 0, 4/3]; v_hat = v / (1 - 0.5625) = [1/7, 4/7, 16/7]
    assert config["t"] == 2
    np.testing.assert_allclose(config["m"], [0.0, 0.0, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(config["v"], [0.0625, 0.25, 1.0], rtol=0, atol=1e-15)
    step3 = 0.1 * (4 / 3) / (math.sqrt(16 / 7) + 1e-8)
    np.testing.assert_allclose(w2, w1 - np.array([0.0, 0.0, step3]), rtol=0, atol=1e-15)


def test_weight_decay_is_a_multiplicative_shrink():
    w1, _ = optim.sgd(W0, G1, {"learning_rate": 0.1, "weight_decay": 0.5})
    # w - lr*(dw + wd*w) = (1 - 0.05)*w - 0.1*dw
    np.testing.assert_allclose(w1, 0.95 * W0 - 0.1 * G1, rtol=0, atol=1e-15)
    # with a zero gradient every rule's weights shrink towards zero
    zero = np.zeros_like(W0)
    for name, rule in optim.UPDATE_RULES.items():
        w1, _ = rule(W0, zero, {"weight_decay": 0.1})
        assert np.all(np.abs(w1) < np.abs(W0)), name


def test_defaults_are_filled_in_and_documented():
    _, config = optim.sgd_momentum(W0, G1)
    assert config["learning_rate"] == 1e-2
    assert config["momentum"] == 0.9
    assert config["weight_decay"] == 0.0
    _, config = optim.rmsprop(W0, G1)
    assert (config["decay_rate"], config["epsilon"]) == (0.99, 1e-8)
    _, config = optim.adam(W0, G1)
    assert (config["learning_rate"], config["beta1"], config["beta2"]) == (1e-3, 0.9, 0.999)
    assert optim.default_config("adam") == {
        "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.0
    }
    # a copy: changing it does not change the defaults
    optim.default_config("sgd")["learning_rate"] = 5.0
    assert optim.default_config("sgd")["learning_rate"] == 1e-2


def test_config_is_updated_in_place_and_returned():
    config = {"learning_rate": 0.1}
    _, returned = optim.adam(W0, G1, config)
    assert returned is config
    assert set(config) >= {"m", "v", "t"}


@pytest.mark.parametrize("name", sorted(optim.UPDATE_RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype):
    rule = optim.get_update_rule(name)
    w, config = W0.astype(dtype), {"learning_rate": np.float64(0.1)}
    for grad in (G1, G2):
        # a float64 gradient and a NumPy float64 learning rate must not promote float32 weights
        w, config = rule(w, grad, config)
        assert w.dtype == dtype
        for key in ("velocity", "cache", "m", "v"):
            if key in config:
                assert config[key].dtype == dtype, key


# ------------------------------------------------------------------ against torch.optim

# A badly conditioned quadratic f(w) = 0.5 w'Aw - b'w, gradient Aw - b: the regime where the
# rules differ most from each other, so a wrong formula cannot hide.
_A = np.array([[3.0, 0.5, 0.0, 0.2], [0.5, 1.0, 0.1, 0.0], [0.0, 0.1, 0.2, 0.05],
               [0.2, 0.0, 0.05, 0.5]])
_B = np.array([1.0, -2.0, 0.5, 0.25])
_START = np.array([2.0, -1.0, 3.0, -0.5])

TORCH_TWINS = [
    ("sgd", {"learning_rate": 0.1},
     lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum", {"learning_rate": 0.05, "momentum": 0.9},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("nesterov", {"learning_rate": 0.05, "momentum": 0.8},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    ("rmsprop", {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-8},
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8)),
    ("adam", {"learning_rate": 0.1, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-8},
     lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-8)),
    ("sgd_momentum", {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.1},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("nesterov", {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.1},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("rmsprop", {"learning_rate": 0.01, "weight_decay": 0.1},
     lambda p: torch.optim.RMSprop(p, lr=0.01, weight_decay=0.1)),
    ("adam", {"learning_rate": 0.1, "weight_decay": 0.1},
     lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1)),
]


@pytest.mark.parametrize(("name", "config", "make_torch"), TORCH_TWINS)
def test_matches_torch_optim_for_20_steps(name, config, make_torch):
    rule = optim.get_update_rule(name)
    w, config = _START.copy(), dict(config)
    param = torch.tensor(_START.copy(), dtype=torch.float64, requires_grad=True)
    opt = make_torch([param])
    A, b = torch.tensor(_A), torch.tensor(_B)
    for _ in range(20):
        w, config = rule(w, _A @ w - _B, config)
        opt.zero_grad()
        (0.5 * param @ A @ param - b @ param).backward()
        opt.step()
        # Both sides compute the same formula in a slightly different order: they may differ in
        # the last bits, and 20 steps of a contraction do not amplify that beyond ~1e-15.
        np.testing.assert_allclose(w, param.detach().numpy(), rtol=0, atol=1e-12)
    # the run went somewhere: 20 steps moved the weights well away from the start
    assert np.abs(w - _START).max() > 0.1


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"dw must have the shape of w \(3,\)"):
        optim.sgd(W0, np.zeros(4))
    with pytest.raises(TypeError, match="w must be a floating-point array"):
        optim.sgd(np.arange(3), G1)
    with pytest.raises(TypeError, match="dw must be a floating-point array"):
        optim.sgd(W0, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="config must be a dict"):
        optim.adam(W0, G1, 0.1)
    with pytest.raises(ValueError, match=r"config\['learning_rate'\] must be in \(0, inf\)"):
        optim.sgd(W0, G1, {"learning_rate": -0.1})
    with pytest.raises(ValueError, match=r"config\['momentum'\] must be in \[0, 1\), got 1.0"):
        optim.sgd_momentum(W0, G1, {"momentum": 1.0})
    with pytest.raises(ValueError, match=r"config\['decay_rate'\]"):
        optim.rmsprop(W0, G1, {"decay_rate": -0.5})
    with pytest.raises(ValueError, match=r"config\['beta2'\]"):
        optim.adam(W0, G1, {"beta2": 1.5})
    with pytest.raises(ValueError, match=r"config\['epsilon'\] must be in \(0, inf\)"):
        optim.adam(W0, G1, {"epsilon": 0.0})
    with pytest.raises(ValueError, match=r"config\['weight_decay'\]"):
        optim.sgd(W0, G1, {"weight_decay": -1e-4})
    with pytest.raises(TypeError, match=r"config\['learning_rate'\] must be a number"):
        optim.sgd(W0, G1, {"learning_rate": "0.1"})
    with pytest.raises(ValueError, match="update_rule must be one of"):
        optim.get_update_rule("adagrad")


def test_sharing_one_config_between_parameters_is_caught():
    _, config = optim.sgd_momentum(W0, G1)
    message = r"config\['velocity'\] has shape \(3,\).*config dict of its own"
    with pytest.raises(ValueError, match=message):
        optim.sgd_momentum(np.zeros((2, 2)), np.zeros((2, 2)), config)


# ------------------------------------------------------------------ schedules


def test_step_decay_closed_form():
    rates = [optim.step_decay(0.1, epoch, step_size=3, gamma=0.5) for epoch in range(7)]
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rel=1e-15)
    assert optim.step_decay(1.0, 25, step_size=10) == pytest.approx(0.01, rel=1e-15)


def test_exponential_decay_closed_form():
    assert optim.exponential_decay(0.2, 0, gamma=0.97) == 0.2
    assert optim.exponential_decay(0.2, 2, gamma=0.5) == pytest.approx(0.05, rel=1e-15)
    assert optim.exponential_decay(1.0, 10, gamma=0.97) == pytest.approx(0.97**10, rel=1e-15)


def test_inverse_time_decay_closed_form():
    assert optim.inverse_time_decay(0.3, 0, k=0.5) == 0.3
    assert optim.inverse_time_decay(0.3, 4, k=0.5) == pytest.approx(0.1, rel=1e-15)  # 0.3 / 3
    assert optim.inverse_time_decay(0.3, 4, k=0.0) == 0.3


def test_cosine_decay_closed_form():
    assert optim.cosine_decay(0.1, 0, total_epochs=10) == pytest.approx(0.1, rel=1e-15)
    assert optim.cosine_decay(0.1, 5, total_epochs=10) == pytest.approx(0.05, rel=1e-15)  # cos=0
    assert optim.cosine_decay(0.1, 10, total_epochs=10) == pytest.approx(0.0, abs=1e-18)
    # a quarter of the way: (1 + cos(pi/4)) / 2 = (2 + sqrt 2) / 4 of the way from lr_min to lr0
    assert optim.cosine_decay(0.1, 2.5, 10, lr_min=0.02) == pytest.approx(
        0.02 + 0.08 * (2 + math.sqrt(2)) / 4, rel=1e-15
    )
    # past the end it stays at lr_min
    assert optim.cosine_decay(0.1, 13, total_epochs=10, lr_min=0.01) == pytest.approx(0.01)


def _torch_rates(make_scheduler, lr0, epochs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


def test_schedules_match_torch_lr_scheduler():
    lr0, epochs = 0.1, 25
    steplr = _torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, 7, gamma=0.3), lr0, epochs)
    ours = [optim.step_decay(lr0, e, step_size=7, gamma=0.3) for e in range(epochs)]
    np.testing.assert_allclose(ours, steplr, rtol=1e-12)

    explr = _torch_rates(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), lr0, epochs)
    ours = [optim.exponential_decay(lr0, e, gamma=0.9) for e in range(epochs)]
    np.testing.assert_allclose(ours, explr, rtol=1e-12)

    # torch updates the cosine rate recursively from the previous one, so allow rounding drift:
    # compare against lr0 (absolute), since the rate itself reaches lr_min
    cos = _torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
        lr0, 21,
    )
    ours = [optim.cosine_decay(lr0, e, total_epochs=20, lr_min=0.001) for e in range(21)]
    np.testing.assert_allclose(ours, cos, rtol=0, atol=1e-12 * lr0)


def test_schedule_errors_name_the_argument():
    with pytest.raises(ValueError, match="lr0 must be > 0, got -1"):
        optim.step_decay(-1, 0, 5)
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        optim.exponential_decay(0.1, -1, 0.9)
    with pytest.raises(TypeError, match="step_size must be an int"):
        optim.step_decay(0.1, 3, 2.5)
    with pytest.raises(ValueError, match="step_size must be >= 1, got 0"):
        optim.step_decay(0.1, 3, 0)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\]"):
        optim.exponential_decay(0.1, 3, 1.5)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\]"):
        optim.step_decay(0.1, 3, 2, gamma=0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        optim.inverse_time_decay(0.1, 3, -0.1)
    with pytest.raises(ValueError, match="total_epochs must be > 0"):
        optim.cosine_decay(0.1, 3, 0)
    with pytest.raises(ValueError, match=r"lr_min must be in \[0, lr0=0.1\], got 0.5"):
        optim.cosine_decay(0.1, 3, 10, lr_min=0.5)
    with pytest.raises(TypeError, match="epoch must be a number"):
        optim.cosine_decay(0.1, None, 10)
