"""cnnlib.torch on a CUDA GPU: every layer gives on the GPU what it gives on the CPU.

Skipped without a GPU; run on one with ``pytest tests/test_torch_cuda.py``.

Tolerances. In float32 (machine epsilon 1.2e-7) the GPU sums in other orders than the CPU: a conv
output sums C*KH*KW <= 72 products here, batch norm averages a few hundred values, so results of
size O(1)-O(10) differ by ~1e-6; rtol = 1e-4 with atol = 1e-5 is a wide margin that a wrong
index or a dropped term (errors of O(1)) cannot hide in. TF32 is switched off for the test so
that float32 really is float32. In float64 the same comparison holds to 1e-10.
"""

import copy

import pytest
import torch
from torch import nn

import cnnlib.torch as ct

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

F32_TOL = {"rtol": 1e-4, "atol": 1e-5}
F64_TOL = {"rtol": 1e-10, "atol": 1e-10}
TOLERANCES = {torch.float32: F32_TOL, torch.float64: F64_TOL}


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


def _inputs(dtype):
    """name -> (forward, backward, CPU inputs); max pooling gets distinct values (no ties)."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(shape, generator=gen, dtype=dtype)

    distinct = (torch.randperm(2 * 3 * 9 * 9, generator=gen).reshape(2, 3, 9, 9).to(dtype) / 10)
    x4 = randn(2, 3, 9, 9)
    return {
        "conv": (lambda x, w, b: ct.conv_forward(x, w, b, stride=2, pad=1, dilation=(1, 2)),
                 ct.conv_backward, (x4, randn(4, 3, 3, 3), randn(4))),
        # a 1x1 kernel without pad: one product per image, its own path
        "conv_1x1": (lambda x, w, b: ct.conv_forward(x, w, b, stride=(1, 2)), ct.conv_backward,
                     (x4, randn(5, 3, 1, 1), randn(5))),
        "conv_naive": (lambda x, w, b: ct.conv_forward_naive(x, w, b, stride=(1, 2), pad=1),
                       ct.conv_backward_naive, (x4, randn(4, 3, 3, 2), randn(4))),
        "max_pool": (lambda x: ct.max_pool_forward(x, 3, 2, 1), ct.max_pool_backward, (distinct,)),
        "max_pool_naive": (lambda x: ct.max_pool_forward_naive(x, 3, 2, 1),
                           ct.max_pool_backward_naive, (distinct,)),
        "avg_pool": (lambda x: ct.avg_pool_forward(x, (2, 3), (1, 2), (1, 0)),
                     ct.avg_pool_backward, (x4,)),
        "avg_pool_naive": (ct.avg_pool_forward_naive, ct.avg_pool_backward_naive, (x4,)),
        "affine": (ct.affine_forward, ct.affine_backward, (x4, randn(243, 5), randn(5))),
        "batchnorm": (lambda x, g, b: ct.batchnorm_forward(x, g, b, {}), ct.batchnorm_backward,
                      (randn(64, 5) * 3 + 1, randn(5), randn(5))),
        "spatial_batchnorm": (lambda x, g, b: ct.spatial_batchnorm_forward(x, g, b, {}),
                              ct.spatial_batchnorm_backward, (x4, randn(3), randn(3))),
        "sigmoid": (ct.sigmoid_forward, ct.sigmoid_backward, (x4 * 5,)),
        "tanh": (ct.tanh_forward, ct.tanh_backward, (x4,)),
        "relu": (ct.relu_forward, ct.relu_backward, (x4,)),
        "leaky_relu": (ct.leaky_relu_forward, ct.leaky_relu_backward, (x4,)),
        "prelu": (ct.prelu_forward, ct.prelu_backward, (x4, randn(3).abs())),
        "elu": (ct.elu_forward, ct.elu_backward, (x4,)),
        "selu": (ct.selu_forward, ct.selu_backward, (x4,)),
        "gelu": (ct.gelu_forward, ct.gelu_backward, (x4,)),
        "gelu_tanh": (lambda x: ct.gelu_forward(x, "tanh"), ct.gelu_backward, (x4,)),
        "maxout": (ct.maxout_forward, ct.maxout_backward,
                   (randn(6, 5), randn(3, 5, 4), randn(3, 4))),
        "dropout_test_mode": (lambda x: ct.dropout_forward(x, 0.7, train=False, inverted=False),
                              ct.dropout_backward, (x4,)),
    }


NAMES = sorted(_inputs(torch.float32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_layer_on_cuda_matches_cpu(name, dtype):
    forward, backward, cpu_inputs = _inputs(dtype)[name]
    cuda_inputs = [t.cuda() for t in cpu_inputs]
    results = []
    for inputs in (cpu_inputs, cuda_inputs):
        out, cache = forward(*inputs)
        dout = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)
        grads = backward(dout.to(out.device), cache)
        results.append((out, grads if isinstance(grads, tuple) else (grads,)))
    (cpu_out, cpu_grads), (cuda_out, cuda_grads) = results
    assert cuda_out.is_cuda and cuda_out.dtype == dtype
    torch.testing.assert_close(cuda_out.cpu(), cpu_out, **TOLERANCES[dtype])
    for cuda_grad, cpu_grad in zip(cuda_grads, cpu_grads, strict=True):
        assert cuda_grad.is_cuda and cuda_grad.dtype == dtype
        torch.testing.assert_close(cuda_grad.cpu(), cpu_grad, **TOLERANCES[dtype])


@pytest.mark.parametrize("loss", ["softmax_loss", "svm_loss"])
def test_losses_on_cuda_match_cpu(loss):
    scores = torch.randn(16, 10, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(2))
    cpu_loss, cpu_dscores = getattr(ct, loss)(scores, y)
    cuda_loss, cuda_dscores = getattr(ct, loss)(scores.cuda(), y.cuda())
    assert cuda_loss.is_cuda and cuda_dscores.is_cuda
    torch.testing.assert_close(cuda_loss.cpu(), cpu_loss, **F32_TOL)
    torch.testing.assert_close(cuda_dscores.cpu(), cpu_dscores, **F32_TOL)


def test_dropout_draws_its_mask_on_the_gpu():
    x = torch.ones(100_000, device="cuda")
    out, (mask, *_) = ct.dropout_forward(x, keep_prob=0.3, seed=0)
    again, _ = ct.dropout_forward(x, keep_prob=0.3, seed=0)
    assert mask.is_cuda and torch.equal(out, again)
    assert abs(mask.float().mean().item() - 0.3) < 0.01  # std of the fraction ~1.4e-3


def test_batchnorm_keeps_running_statistics_on_the_gpu():
    state = {}
    x = torch.randn(32, 4, device="cuda")
    ct.batchnorm_forward(x, torch.ones(4, device="cuda"), torch.zeros(4, device="cuda"), state)
    assert state["running_mean"].is_cuda and state["running_var"].is_cuda


def test_a_swapped_net_on_cuda_matches_torch_on_cuda():
    torch.manual_seed(0)
    reference = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    ).cuda()
    ours = ct.swap_layers(copy.deepcopy(reference))
    assert ours[0].weight.is_cuda and ours[1].running_mean.is_cuda
    x = torch.randn(16, 3, 8, 8, device="cuda")
    outputs = [net(x) for net in (reference, ours)]
    torch.testing.assert_close(outputs[1], outputs[0], **F32_TOL)
    y = torch.randint(0, 10, (16,), device="cuda")
    nn.functional.cross_entropy(outputs[0], y).backward()
    ct.cross_entropy(outputs[1], y).backward()
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, **F32_TOL)
    torch.testing.assert_close(ours[1].running_var, reference[1].running_var, **F32_TOL)


def test_gradcheck_on_cuda():
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: ct.conv2d(x, w, b, 2, 1), (x, w, b))


def test_device_picks_cuda(monkeypatch, capsys):
    monkeypatch.delenv("CNNLIB_DEVICE", raising=False)
    assert ct.device().type == "cuda"
    assert capsys.readouterr().out.startswith("cnnlib: using cuda (")
