"""cnnlib.numpy.model: layer objects, Sequential and ThreeLayerConvNet."""

import math

import numpy as np
import pytest

from cnnlib.numpy import init, model
from cnnlib.numpy.gradcheck import numeric_gradient, rel_error
from cnnlib.numpy.model import (
    Affine,
    AvgPool,
    BatchNorm,
    Conv,
    Dropout,
    LeakyReLU,
    MaxPool,
    ReLU,
    Sequential,
    SpatialBatchNorm,
    ThreeLayerConvNet,
)


def _small_net(**kwargs) -> ThreeLayerConvNet:
    options = dict(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=7,
                   num_classes=4, dtype=np.float64, seed=1)
    return ThreeLayerConvNet(**{**options, **kwargs})


def _check_gradients(net, X, y, before_each_call=lambda: None, h=1e-6):
    """Per param, the largest error between backprop and centred differences.

    In float64 with h = 1e-6 the centred difference is accurate to ~h**2 * (third derivative)
    plus rounding ~eps * |loss| / h ~ 2e-10, far below the 1e-6 relative error we ask for,
    unless a step of h crosses a kink of ReLU or max pool; with continuous random inputs and
    weights the nearest kink is almost surely much further than 1e-6 away (the seeds are fixed,
    so it is checked).

    One exception: an entry whose gradient is exactly 0, such as the bias of a unit that batch
    norm re-centres (a ReLU unit active on the whole batch). Its numeric value is rounding noise
    alone, ~2e-10, and a relative error means nothing: entries where both gradients are below
    1e-7 must agree to 1e-8 absolutely instead, and the relative error covers the others.
    """
    before_each_call()
    _, grads = net.loss(X, y)
    grads = {name: grad.copy() for name, grad in grads.items()}
    worst = {}
    for name, param in net.params.items():

        def loss_at(_, name=name):
            before_each_call()
            return net.loss(X, y)[0]

        numeric = numeric_gradient(loss_at, param, h)
        vanishing = (np.abs(numeric) < 1e-7) & (np.abs(grads[name]) < 1e-7)
        assert np.all(np.abs(numeric - grads[name])[vanishing] < 1e-8), name
        assert not vanishing.all(), f"{name}: no gradient at all, nothing is checked"
        worst[name] = rel_error(grads[name][~vanishing], numeric[~vanishing])
    return worst


# ---------------------------------------------------------------- ThreeLayerConvNet


def test_three_layer_convnet_structure_and_names():
    net = ThreeLayerConvNet()
    # conv keeps 8x8 ("same" padding), the 2x2 pool halves it: 16 * 4 * 4 = 256 features
    shapes = {name: value.shape for name, value in net.params.items()}
    assert shapes == {
        "0.w": (16, 1, 3, 3), "0.b": (16,),
        "3.w": (256, 64), "3.b": (64,),
        "5.w": (64, 10), "5.b": (10,),
    }
    assert [type(layer) for layer in net.layers] == [Conv, ReLU, MaxPool, Affine, ReLU, Affine]
    assert all(value.dtype == np.float32 for value in net.params.values())
    assert all(np.all(net.params[b] == 0) for b in ("0.b", "3.b", "5.b"))
    # odd input sizes: pooling floors, 7x7 -> 3x3
    assert _small_net(input_dim=(2, 7, 7)).params["3.w"].shape == (3 * 3 * 3, 7)


def test_default_init_is_he_with_the_seed():
    net = ThreeLayerConvNet(seed=5)
    rng = np.random.default_rng(5)  # the layers draw from one generator, in order
    np.testing.assert_array_equal(net.params["0.w"], init.he((16, 1, 3, 3), rng, np.float32))
    np.testing.assert_array_equal(net.params["3.w"], init.he((256, 64), rng, np.float32))
    np.testing.assert_array_equal(net.params["5.w"], init.he((64, 10), rng, np.float32))
    small = ThreeLayerConvNet(seed=5, weight_scale=1e-3)
    np.testing.assert_array_equal(
        small.params["0.w"], init.small_random((16, 1, 3, 3), 1e-3, 5, np.float32)
    )


def test_whole_model_gradient_check():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])
    net = _small_net(reg=0.1)
    worst = _check_gradients(net, X, y)
    assert set(worst) == {"0.w", "0.b", "3.w", "3.b", "5.w", "5.b"}
    assert max(worst.values()) < 1e-6, worst


def test_loss_at_small_init_is_log_num_classes():
    # tiny weights give scores ~0: softmax is uniform over the classes, loss = log(10)
    rng = np.random.default_rng(0)
    X = rng.random((50, 1, 8, 8))
    y = rng.integers(0, 10, 50)
    net = ThreeLayerConvNet(weight_scale=1e-3, dtype=np.float64)
    loss, _ = net.loss(X, y)
    assert loss == pytest.approx(math.log(10), abs=1e-6)
    # the L2 penalty adds exactly 0.5 * reg * sum of squared weights (biases excluded)
    net.params["0.b"] = np.full(16, 3.0)  # biases: not penalised
    reg_net = ThreeLayerConvNet(weight_scale=1e-3, dtype=np.float64, reg=100.0)
    reg_net.params["0.b"] = np.full(16, 3.0)
    penalty = 50.0 * sum(np.sum(reg_net.params[w] ** 2) for w in ("0.w", "3.w", "5.w"))
    assert reg_net.loss(X, y)[0] - net.loss(X, y)[0] == pytest.approx(penalty, rel=1e-9)
    assert penalty > 0.1


def test_overfits_twenty_samples():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images[:20] / 16.0).reshape(20, 1, 8, 8)
    y = digits.target[:20]
    net = ThreeLayerConvNet(dtype=np.float64, seed=0)
    from cnnlib.numpy.optim import adam

    configs = {name: {"learning_rate": 1e-2} for name in net.params}
    for _ in range(60):  # full-batch Adam
        _, grads = net.loss(X, y)
        for name in list(net.params):
            net.params[name], configs[name] = adam(net.params[name], grads[name], configs[name])
    assert np.mean(net.predict(X) == y) == 1.0
    assert net.loss(X, y)[0] < 0.05


def test_scores_predict_and_dtype():
    rng = np.random.default_rng(0)
    X = rng.random((5, 1, 8, 8)).astype(np.float32)
    net = ThreeLayerConvNet()
    scores = net.loss(X)
    assert scores.shape == (5, 10)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(net.predict(X, batch_size=2), scores.argmax(axis=1))
    loss, grads = net.loss(X, np.arange(5))
    assert isinstance(loss, float)
    assert {name: g.dtype for name, g in grads.items()} == dict.fromkeys(net.params, np.float32)
    assert net.grads.keys() == grads.keys()


def test_three_layer_convnet_errors():
    net = ThreeLayerConvNet()
    with pytest.raises(ValueError, match=r"X must have shape \(N, 1, 8, 8\) for this model, got "
                                         r"\(2, 3, 8, 8\)"):
        net.loss(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"X must have 4 dimensions \(N, C, H, W\)"):
        net.loss(np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"input_dim must be \(C, H, W\)"):
        ThreeLayerConvNet(input_dim=(8, 8))
    with pytest.raises(ValueError, match="hidden_dim must be >= 1"):
        ThreeLayerConvNet(hidden_dim=0)
    with pytest.raises(ValueError, match="weight_scale must be None"):
        ThreeLayerConvNet(weight_scale="lecun")
    with pytest.raises(ValueError, match=r"pad=None .* needs one odd kernel size"):
        ThreeLayerConvNet(filter_size=4)


# ---------------------------------------------------------------- Sequential and its layers


def _every_layer_net(dropout_seed=3):
    # Batch norm comes after the activation here: straight after a conv or affine layer it
    # would subtract the mean and cancel that layer's bias, whose gradient is then exactly 0
    # and its relative error against a numeric ~1e-10 meaningless.
    rng = np.random.default_rng(2)
    return Sequential(
        Conv(2, 3, 3, pad=1, rng=rng),            # 0: (N, 3, 6, 6)
        LeakyReLU(0.1),                           # 1
        SpatialBatchNorm(3),                      # 2
        AvgPool(2),                               # 3: (N, 3, 3, 3)
        Conv(3, 4, 2, stride=1, pad=0, rng=rng),  # 4: (N, 4, 2, 2)
        ReLU(),                                   # 5
        MaxPool(2),                               # 6: (N, 4, 1, 1)
        Affine(4, 6, rng=rng),                    # 7: flattens
        ReLU(),                                   # 8
        BatchNorm(6),                             # 9
        Dropout(0.7, seed=dropout_seed),          # 10
        Affine(6, 3, weight_scale="xavier", rng=rng),  # 11
        reg=0.05,
    )


def test_every_layer_gradient_check():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 2, 6, 6))
    y = np.array([0, 2, 1, 2])
    net = _every_layer_net()
    dropout = net.layers[10]

    def same_mask():
        dropout.rng = np.random.default_rng(7)  # the same dropout mask on every evaluation

    worst = _check_gradients(net, X, y, before_each_call=same_mask)
    assert set(worst) == {"0.w", "0.b", "2.gamma", "2.beta", "4.w", "4.b", "7.w", "7.b",
                          "9.gamma", "9.beta", "11.w", "11.b"}
    assert max(worst.values()) < 1e-6, worst


def test_train_and_test_mode():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 2, 6, 6)) + 2.0
    net = _every_layer_net()
    assert list(net.state) == ["2.running_mean", "2.running_var", "9.running_mean",
                               "9.running_var"]
    before = {name: value.copy() for name, value in net.state.items()}
    # evaluation: deterministic (no dropout), running statistics untouched
    scores = net.loss(X)
    np.testing.assert_array_equal(scores, net.loss(X))
    for name, value in net.state.items():
        np.testing.assert_array_equal(value, before[name])
    # training: the running mean (from 0) moves (1 - momentum) = 10% of the way to the mean of
    # this batch at the input of the spatial batch norm, per channel over (N, H, W)
    bn_input = net.layers[1].forward(net.layers[0].forward(X))
    net.loss(X, np.zeros(8, dtype=int))
    np.testing.assert_allclose(
        net.state["2.running_mean"], 0.1 * bn_input.mean(axis=(0, 2, 3)), rtol=1e-12
    )
    # dropout draws a fresh mask each training step
    first = net.forward(X, train=True)
    assert not np.array_equal(first, net.forward(X, train=True))


def test_dropout_seed_makes_masks_reproducible():
    X = np.ones((4, 10))
    a, b = Dropout(0.5, seed=4), Dropout(0.5, seed=4)
    for _ in range(3):
        np.testing.assert_array_equal(a.forward(X), b.forward(X))
    np.testing.assert_array_equal(a.forward(X, train=False), X)


def test_params_view_writes_through_and_checks_shapes():
    net = _small_net()
    new = np.full((3, 2, 3, 3), 0.5)
    net.params["0.w"] = new
    assert net.layers[0].params["w"] is new
    assert len(net.params) == 6
    with pytest.raises(ValueError, match=r"params\['0.w'\] must have shape \(3, 2, 3, 3\)"):
        net.params["0.w"] = np.zeros((3, 2, 2, 2))
    with pytest.raises(KeyError, match=r"'2\.w'"):
        net.params["2.w"]
    with pytest.raises(TypeError, match="cannot be deleted"):
        del net.params["0.w"]


def test_layers_report_themselves():
    text = repr(_small_net())
    assert "(0) Conv(2 -> 3, kernel 3x3, stride 1, pad 1)" in text
    assert "(2) MaxPool(size=2, stride=2, pad=0)" in text
    assert "(5) Affine(7 -> 4)" in text


def test_sequential_errors():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a Layer"):
        Sequential(ReLU(), np.zeros(3))
    with pytest.raises(ValueError, match="reg must be a number >= 0, got -1"):
        Sequential(ReLU(), reg=-1)
    with pytest.raises(RuntimeError, match=r"ReLU\.backward was called before forward"):
        ReLU().backward(np.zeros(3))
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
        Dropout(0.0)
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        Conv(0, 3)
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        BatchNorm(0)


def test_module_exports():
    assert set(model.__all__) >= {"Conv", "ReLU", "LeakyReLU", "MaxPool", "AvgPool", "Affine",
                                  "BatchNorm", "SpatialBatchNorm", "Dropout", "Sequential",
                                  "ThreeLayerConvNet"}
