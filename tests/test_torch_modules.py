"""cnnlib.torch.modules and device(): drop-in twins of torch.nn's layers, swap_layers, training.

A net of our modules and the same net of torch.nn modules, with copied weights, must compute the
same outputs, gradients and running statistics. In float64 the two differ only by summation
order (1e-10); in float32 by float32 round-off through a few layers (1e-5).
"""

import copy
import importlib
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import cnnlib.numpy as cn
import cnnlib.torch as ct

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-10}


def _pair_of_nets(dtype=F64):
    """The same small CNN twice: torch.nn layers, and ours with the torch net's weights."""
    torch.manual_seed(0)
    reference = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(1, 1)),
        nn.LeakyReLU(0.1), nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(8 * 3 * 1, 12), nn.BatchNorm1d(12), nn.PReLU(12), nn.Dropout(p=0.0),
        nn.Linear(12, 10, bias=False), nn.ELU(0.5), nn.SELU(), nn.GELU("tanh"), nn.Tanh(),
        nn.Linear(10, 5), nn.Sigmoid(),
    ).to(dtype)
    ours = ct.swap_layers(copy.deepcopy(reference))
    return reference, ours


def test_swap_layers_replaces_every_supported_layer():
    reference, ours = _pair_of_nets()
    swapped = [type(m) for m in ours if type(m).__module__ == "cnnlib.torch.modules"]
    assert len(swapped) == len(reference) - 1  # all but nn.Flatten
    assert isinstance(ours[7], nn.Flatten)
    assert isinstance(ours[0], ct.Conv2d) and isinstance(ours[11], ct.Dropout)
    assert ours[11].keep_prob == 1.0  # torch's p=0 drops nothing
    assert list(ours.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize("train", [True, False])
def test_our_net_matches_the_torch_net_outputs_gradients_and_buffers(train):
    reference, ours = _pair_of_nets()
    reference.train(train)
    ours.train(train)
    x = torch.randn(4, 3, 8, 8, dtype=F64)
    for _ in range(2):  # twice: the second pass sees updated running statistics
        outputs = [net(x) for net in (reference, ours)]
        torch.testing.assert_close(outputs[1], outputs[0], **TIGHT)
    weights = torch.randn(outputs[0].shape, dtype=F64)
    for out in outputs:
        (out * weights).sum().backward()
    for (name, p_ref), (name_ours, p_ours) in zip(
        reference.named_parameters(), ours.named_parameters(), strict=True
    ):
        assert name == name_ours
        torch.testing.assert_close(p_ours.grad, p_ref.grad, **TIGHT, msg=name)
    for (name, b_ref), (_, b_ours) in zip(reference.named_buffers(), ours.named_buffers(),
                                          strict=True):
        torch.testing.assert_close(b_ours, b_ref, **TIGHT, msg=name)


def test_default_initialisation_is_torch_s():
    # same seed, same draws in the same order: identical parameters
    for make_ours, make_torch in (
        (lambda: ct.Conv2d(3, 5, 3), lambda: nn.Conv2d(3, 5, 3)),
        (lambda: ct.Conv2d(2, 4, (2, 3), bias=False), lambda: nn.Conv2d(2, 4, (2, 3), bias=False)),
        (lambda: ct.Linear(7, 4), lambda: nn.Linear(7, 4)),
        (lambda: ct.BatchNorm2d(3), lambda: nn.BatchNorm2d(3)),
        (lambda: ct.PReLU(3, init=0.1), lambda: nn.PReLU(3, init=0.1)),
    ):
        torch.manual_seed(3)
        ours = make_ours()
        torch.manual_seed(3)
        theirs = make_torch()
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key


def test_a_net_of_our_modules_trains():
    torch.manual_seed(1)
    net = nn.Sequential(
        ct.Conv2d(1, 4, 3, padding=1), ct.BatchNorm2d(4), ct.ReLU(), ct.MaxPool2d(2),
        nn.Flatten(), ct.Dropout(keep_prob=0.9), ct.Linear(4 * 4 * 4, 3),
    )
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = ct.cross_entropy(net(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    # memorising 32 random labels: from ~log 3 = 1.1 the loss must clearly fall
    assert losses[-1] < 0.5 * losses[0]


def test_swap_layers_round_trip_restores_the_torch_net():
    reference, ours = _pair_of_nets()
    ours(torch.randn(4, 3, 8, 8, dtype=F64))  # move the running statistics
    back = ct.swap_layers(copy.deepcopy(ours), to="torch")
    assert [type(m) for m in back] == [type(m) for m in reference]
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    back.eval()
    ours.eval()
    x = torch.randn(2, 3, 8, 8, dtype=F64)
    torch.testing.assert_close(back(x), ours(x), **TIGHT)
    assert ct.swap_layers(nn.ReLU()).__class__ is ct.ReLU  # a bare layer comes back converted


@pytest.mark.slow
def test_a_case_study_resnet_runs_on_our_layers():
    # the model zoo's CIFAR ResNet-20: 19 convs, batch norms, shortcuts, a final Linear
    from cnnlib.torch.models import create

    torch.manual_seed(0)
    reference = create("cifar_resnet20").to(F64)
    ours = ct.swap_layers(copy.deepcopy(reference))
    swapped = sum(type(m).__module__ == "cnnlib.torch.modules" for m in ours.modules())
    assert swapped >= 19 + 19 + 1  # every conv, every batch norm, the classifier
    x = torch.randn(2, 3, 32, 32, dtype=F64)
    outputs = [net(x) for net in (reference, ours)]  # train mode: batch statistics
    torch.testing.assert_close(outputs[1], outputs[0], **TIGHT)
    for out in outputs:
        out.square().sum().backward()
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, **TIGHT)


def test_swap_layers_keeps_train_mode_nested_blocks_and_device_dtype():
    block = nn.Sequential(nn.Sequential(nn.Conv2d(2, 2, 3), nn.Dropout(0.25)), nn.Identity())
    block = block.to(F64).eval()
    ct.swap_layers(block)
    conv, dropout = block[0]
    assert isinstance(conv, ct.Conv2d) and conv.weight.dtype == F64
    assert isinstance(dropout, ct.Dropout) and dropout.keep_prob == 0.75
    assert not conv.training and not dropout.training


def test_swap_layers_warns_and_keeps_what_it_cannot_copy():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.MaxPool2d(2, ceil_mode=True),
                        nn.Conv2d(4, 4, 3, padding="same"), nn.Conv2d(4, 4, 2, padding="same"))
    with pytest.warns(UserWarning) as record:
        ct.swap_layers(net)
    messages = " ".join(str(w.message) for w in record)
    assert "groups=2 is not implemented" in messages
    assert "ceil_mode=True is not implemented" in messages
    assert "even kernel" in messages
    assert type(net[0]) is nn.Conv2d and type(net[1]) is nn.MaxPool2d
    assert type(net[3]) is nn.Conv2d
    assert isinstance(net[2], ct.Conv2d) and net[2].padding == (1, 1)  # 'same' for a 3x3


def test_batchnorm_module_options_match_torch():
    x = torch.randn(6, 3, 4, dtype=F64)  # BatchNorm1d on a sequence: per channel over (N, L)
    for kwargs in ({"momentum": None}, {"affine": False}, {"track_running_stats": False},
                   {"momentum": 0.3, "eps": 1e-3}):
        theirs = nn.BatchNorm1d(3, **kwargs).to(F64)
        ours = ct.swap_layers(copy.deepcopy(theirs))
        assert isinstance(ours, ct.BatchNorm1d)
        for step in range(3):
            batch = x * (step + 1)
            torch.testing.assert_close(ours(batch), theirs(batch), **TIGHT, msg=str(kwargs))
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, **TIGHT)
        ours.eval()
        theirs.eval()
        torch.testing.assert_close(ours(x), theirs(x), **TIGHT, msg=str(kwargs))


def test_dropout_module_uses_keep_prob_and_refuses_torch_s_p():
    with pytest.raises(TypeError, match=r"torch.nn.Dropout\(p=0.2\) is Dropout\(keep_prob=0.8\)"):
        ct.Dropout(p=0.2)
    layer = ct.Dropout(keep_prob=0.2)
    x = torch.ones(100_000)
    kept = (layer(x) != 0).float().mean().item()
    assert abs(kept - 0.2) < 0.01  # keeps one unit in five (std of the fraction ~ 1.3e-3)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_linear_maps_the_last_axis_like_torch():
    theirs = nn.Linear(4, 3).to(F64)
    ours = ct.Linear.from_torch(theirs)
    x = torch.randn(2, 5, 4, dtype=F64)
    torch.testing.assert_close(ours(x), theirs(x), **TIGHT)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\) for Linear\(4, 3\)"):
        ours(torch.randn(2, 5, dtype=F64))


def test_maxout_module_shapes_and_gradients():
    layer = ct.Maxout(6, 4, num_pieces=3)
    assert layer.weight.shape == (3, 6, 4) and layer.bias.shape == (3, 4)
    x = torch.randn(2, 5, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 5, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape and layer.weight.grad.shape == layer.weight.shape


def test_module_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, H, W\) for BatchNorm2d"):
        ct.BatchNorm2d(3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\) or \(N, 3, L\)"):
        ct.BatchNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
        ct.Dropout(0)
    with pytest.raises(ValueError, match=r"stride must be >= 1"):
        ct.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(TypeError, match=r"kernel_size must be an int"):
        ct.MaxPool2d(2.0)
    with pytest.raises(ValueError, match=r'to must be "cnnlib" or "torch"'):
        ct.swap_layers(nn.ReLU(), to="numpy")


# ---------------------------------------------------------------- device()


def _device_module():
    # cnnlib.torch.device is the function (it shadows its module's name on the package)
    return importlib.import_module("cnnlib.torch.device")


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch, capsys):
    module = _device_module()
    monkeypatch.delenv("CNNLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(module, "_mps_available", lambda: False)
    assert ct.device() == torch.device("cpu")
    assert capsys.readouterr().out.startswith("cnnlib: using cpu (")
    monkeypatch.setattr(module, "_mps_available", lambda: True)
    assert ct.device(verbose=False) == torch.device("mps")
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ct.device(verbose=False) == torch.device("cuda")


def test_device_environment_override(monkeypatch, capsys):
    monkeypatch.setenv("CNNLIB_DEVICE", "cpu")
    assert ct.device() == torch.device("cpu")
    assert "cnnlib: using cpu" in capsys.readouterr().out
    monkeypatch.setenv("CNNLIB_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="CNNLIB_DEVICE must name a torch device"):
        ct.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("CNNLIB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            ct.device()


def test_modules_follow_the_model_to_another_dtype():
    net = nn.Sequential(ct.Conv2d(1, 2, 3), ct.BatchNorm2d(2), ct.ReLU()).to(F64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net(torch.randn(2, 1, 5, 5, dtype=F64))
    assert out.dtype == F64 and net[1].running_mean.dtype == F64


@pytest.mark.parametrize("layer", [
    lambda: ct.Conv2d(3, 4, 3, padding=1), lambda: ct.MaxPool2d(2), lambda: ct.AvgPool2d(2),
    lambda: ct.BatchNorm2d(3), lambda: ct.Dropout(keep_prob=1.0),
])  # fmt: skip
def test_an_inplace_relu_may_follow_every_layer(layer):
    # nn.ReLU(inplace=True) after a layer is common (VGG, ResNet); autograd refuses it when the
    # layer's Function returns a view or its own input, so ours must return a fresh tensor,
    # and the gradient must be the one torch.nn computes
    torch.manual_seed(0)
    ours = layer().to(F64)
    reference = copy.deepcopy(ours)
    x = torch.randn(2, 3, 8, 8, dtype=F64, requires_grad=True)
    out = nn.ReLU(inplace=True)(ours(x))
    out.sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    torch.relu(reference(x_ref)).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, **TIGHT)


# ------------------------------------------------------------------ weights from cnnlib.numpy


def test_set_weights_reads_cnnlib_numpy_layouts():
    rng = np.random.default_rng(0)
    w_affine, b_affine = rng.standard_normal((5, 3)), rng.standard_normal(3)
    linear = ct.set_weights(ct.Linear(5, 3, dtype=torch.float64), w_affine, b_affine)
    x = rng.standard_normal((4, 5))
    expected, _ = cn.affine_forward(x, w_affine, b_affine)
    np.testing.assert_allclose(linear(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-12)
    # torch.nn's own layers too, in float32, the bias zeroed when none is given
    w_conv = rng.standard_normal((4, 2, 3, 3))
    conv = ct.set_weights(nn.Conv2d(2, 4, 3), w_conv)
    np.testing.assert_array_equal(conv.weight.detach().numpy(), w_conv.astype(np.float32))
    assert conv.bias.abs().sum().item() == 0
    pieces = rng.standard_normal((2, 5, 3))
    maxout = ct.set_weights(ct.Maxout(5, 3, num_pieces=2), pieces)
    np.testing.assert_array_equal(maxout.weight.detach().numpy(), pieces.astype(np.float32))


def test_set_weights_rejects_other_layers_and_shapes():
    with pytest.raises(TypeError, match="layer must be a Conv2d, Linear or Maxout, got ReLU"):
        ct.set_weights(ct.ReLU(), np.ones(3))
    # torch's (out, in) is the wrong way round for cnnlib.numpy's layout
    wrong_way = r"weight must have shape \(5, 3\) for Linear.*got \(3, 5\)"
    with pytest.raises(ValueError, match=wrong_way):
        ct.set_weights(ct.Linear(5, 3), np.ones((3, 5)))


def test_init_weights_draws_each_layer_in_module_order_from_one_generator():
    net = nn.Sequential(ct.Conv2d(1, 4, 3), ct.BatchNorm2d(4), ct.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 10), ct.Maxout(10, 3, num_pieces=2))  # fmt: skip
    assert ct.init_weights(net, cn.he, rng=7) is net
    rng = np.random.default_rng(7)
    expected = [
        cn.he((4, 1, 3, 3), rng),  # fan-in C*KH*KW = 9
        cn.he((144, 10), rng).T,  # (in, out) drawn, stored as torch's (out, in)
        np.stack([cn.he((10, 3), rng), cn.he((10, 3), rng)]),  # one draw per maxout piece
    ]
    weights = [net[0].weight, net[4].weight, net[5].weight]
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_array_equal(got.detach().numpy(), want.astype(np.float32))
    for layer in (net[0], net[4], net[5]):
        assert layer.bias.abs().sum().item() == 0
    assert torch.equal(net[1].weight, torch.ones(4))  # batch norm's gamma is not a weight here
