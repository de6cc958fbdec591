"""cnnlib.torch.functions: our backward passes inside autograd.

torch.autograd.gradcheck compares each Function's backward with finite differences in float64
(its default eps=1e-6, atol=1e-5, rtol=1e-3: smooth layers pass by orders of magnitude; inputs
stay away from the kinks of ReLU and max pooling so a step of 1e-6 never crosses one). Then the
functional helpers, used inside autograd, must give torch.nn.functional's gradients.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import cnnlib.torch as ct

F64 = torch.float64


def _randn(*shape, seed=0, gap=0.0):
    """float64 normal values requiring grad; gap > 0 keeps them that far from 0."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return (x + gap * torch.sign(x)).requires_grad_(True)


def _distinct(*shape, seed=0):
    """A permutation of 0, 0.1, 0.2, ... requiring grad: every window has one clear maximum,
    0.1 ahead of the runner-up, far more than gradcheck's step."""
    values = torch.randperm(int(np.prod(shape)), generator=torch.Generator().manual_seed(seed))
    return (values.reshape(shape).to(F64) / 10).requires_grad_(True)


# name -> (function of tensors, inputs); every Function of cnnlib.torch.functions appears
GRADCHECKS = {
    "Conv2dFunction": (lambda x, w, b: ct.Conv2dFunction.apply(x, w, b, 2, 1, 1),
                       (_randn(2, 2, 5, 4), _randn(3, 2, 3, 2, seed=1), _randn(3, seed=2))),
    "Conv2dFunction_dilated": (lambda x, w, b: ct.conv2d(x, w, b, (1, 2), (0, 1), (2, 1)),
                               (_randn(1, 2, 6, 5), _randn(2, 2, 2, 2, seed=3),
                                _randn(2, seed=4))),
    "MaxPool2dFunction": (lambda x: ct.MaxPool2dFunction.apply(x, 3, 2, 1),
                          (_distinct(2, 2, 5, 5),)),
    "AvgPool2dFunction": (lambda x: ct.AvgPool2dFunction.apply(x, 3, 2, 1), (_randn(2, 2, 5, 5),)),
    "AffineFunction": (ct.AffineFunction.apply,
                       (_randn(3, 2, 2), _randn(4, 5, seed=1), _randn(5, seed=2))),
    "BatchNormFunction_2d": (lambda x, g, b: ct.BatchNormFunction.apply(x, g, b, {}),
                             (_randn(5, 3), _randn(3, seed=1), _randn(3, seed=2))),
    "BatchNormFunction_spatial": (lambda x, g, b: ct.BatchNormFunction.apply(x, g, b, {}),
                                  (_randn(2, 3, 2, 2), _randn(3, seed=1), _randn(3, seed=2))),
    "BatchNormFunction_eval": (
        lambda x, g, b: ct.BatchNormFunction.apply(
            x, g, b, {"running_mean": torch.ones(3, dtype=F64),
                      "running_var": torch.full((3,), 2.0, dtype=F64)}, False),
        (_randn(4, 3), _randn(3, seed=1), _randn(3, seed=2)),
    ),
    # a fixed seed draws the same mask at every call gradcheck makes
    "DropoutFunction": (lambda x: ct.DropoutFunction.apply(x, 0.6, True, True, 5),
                        (_randn(4, 5),)),
    "DropoutFunction_vanilla": (lambda x: ct.DropoutFunction.apply(x, 0.6, True, False, 5),
                                (_randn(4, 5),)),
    "SigmoidFunction": (ct.SigmoidFunction.apply, (_randn(3, 4),)),
    "TanhFunction": (ct.TanhFunction.apply, (_randn(3, 4),)),
    "ReLUFunction": (ct.ReLUFunction.apply, (_randn(3, 4, gap=0.1),)),
    "LeakyReLUFunction": (lambda x: ct.LeakyReLUFunction.apply(x, 0.2), (_randn(3, 4, gap=0.1),)),
    "PReLUFunction": (ct.PReLUFunction.apply, (_randn(2, 3, 2, gap=0.1),
                                               torch.tensor([0.1, 0.2, 0.3], dtype=F64,
                                                            requires_grad=True))),
    "PReLUFunction_shared": (ct.PReLUFunction.apply,
                             (_randn(2, 3, gap=0.1), torch.tensor(0.2, dtype=F64,
                                                                  requires_grad=True))),
    "ELUFunction": (lambda x: ct.ELUFunction.apply(x, 1.5), (_randn(3, 4, gap=0.1),)),
    "SELUFunction": (ct.SELUFunction.apply, (_randn(3, 4, gap=0.1),)),
    "GELUFunction": (ct.GELUFunction.apply, (_randn(3, 4),)),
    "GELUFunction_tanh": (lambda x: ct.GELUFunction.apply(x, "tanh"), (_randn(3, 4),)),
    "MaxoutFunction": (ct.MaxoutFunction.apply,
                       (_randn(4, 3), _randn(3, 3, 2, seed=1), _randn(3, 2, seed=2))),
    "SoftmaxLossFunction": (lambda s: ct.SoftmaxLossFunction.apply(s, torch.tensor([0, 3, 1])),
                            (_randn(3, 4),)),
    "SVMLossFunction": (lambda s: ct.SVMLossFunction.apply(s, torch.tensor([0, 3, 1]), 1.0),
                        (_randn(3, 4, seed=7),)),
}


def test_every_function_is_gradchecked():
    classes = {name for name in ct.functions.__all__ if name.endswith("Function")}
    classes.discard("LayerFunction")
    checked = {name.split("_")[0] for name in GRADCHECKS}
    assert classes == checked


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck(name):
    function, inputs = GRADCHECKS[name]
    if name == "MaxoutFunction":
        # a step must not change which piece wins: the best piece leads by far more than it
        x, w, b = inputs
        pieces = torch.einsum("nd,kdm->nkm", x, w) + b
        top2 = pieces.detach().topk(2, dim=1).values
        assert (top2[:, 0] - top2[:, 1]).min() > 1e-3
    if name == "SVMLossFunction":
        # no hinge term may sit within a step of its kink at 0
        s, y = inputs[0].detach(), torch.tensor([0, 3, 1])
        terms = s - s[torch.arange(3), y][:, None] + 1.0
        assert terms.abs().min() > 1e-3
    assert gradcheck(function, inputs)


# ---------------------------------------------------------------- against torch's own autograd

# our functional helper, torch's, and inputs: the same loss must give the same gradients
AUTOGRAD_PAIRS = {
    "conv2d": (lambda x, w, b: ct.conv2d(x, w, b, 2, 1),
               lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
               (_randn(2, 3, 6, 6), _randn(4, 3, 3, 3, seed=1), _randn(4, seed=2))),
    "max_pool2d": (lambda x: ct.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1),
                   (_distinct(2, 3, 7, 7),)),
    "avg_pool2d": (lambda x: ct.avg_pool2d(x, 2, 1), lambda x: F.avg_pool2d(x, 2, 1),
                   (_randn(2, 3, 5, 5),)),
    "affine": (lambda x, w, b: ct.affine(x, w.T, b), F.linear,
               (_randn(4, 6), _randn(3, 6, seed=1), _randn(3, seed=2))),
    "batch_norm": (lambda x, g, b: ct.batch_norm(x, g, b, {}),
                   lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
                   (_randn(4, 3, 2, 2), _randn(3, seed=1), _randn(3, seed=2))),
    "relu": (ct.relu, F.relu, (_randn(5, 4, gap=0.1),)),
    "leaky_relu": (lambda x: ct.leaky_relu(x, 0.3), lambda x: F.leaky_relu(x, 0.3),
                   (_randn(5, 4),)),
    "elu": (ct.elu, F.elu, (_randn(5, 4),)),
    "selu": (ct.selu, F.selu, (_randn(5, 4),)),
    "gelu": (ct.gelu, F.gelu, (_randn(5, 4),)),
    "sigmoid": (ct.sigmoid, torch.sigmoid, (_randn(5, 4),)),
    "tanh": (ct.tanh, torch.tanh, (_randn(5, 4),)),
    "prelu": (ct.prelu, F.prelu, (_randn(2, 3, 4), torch.tensor([0.1, 0.2, 0.3], dtype=F64,
                                                                   requires_grad=True))),
    "cross_entropy": (lambda s: ct.cross_entropy(s, torch.tensor([1, 0, 2])),
                      lambda s: F.cross_entropy(s, torch.tensor([1, 0, 2])), (_randn(3, 5),)),
    "svm_hinge_loss": (lambda s: ct.svm_hinge_loss(s, torch.tensor([1, 0, 2])),
                       lambda s: 5 * F.multi_margin_loss(s, torch.tensor([1, 0, 2])),
                       (_randn(3, 5, seed=3),)),
}


@pytest.mark.parametrize("name", sorted(AUTOGRAD_PAIRS))
def test_helpers_give_torch_autograd_gradients(name):
    ours, reference, inputs = AUTOGRAD_PAIRS[name]
    results = []
    for function in (ours, reference):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = function(*leaves)
        # a fixed random projection makes a scalar that weighs every output differently
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=F64)
        (out * weights).sum().backward()
        results.append((out.detach(), [leaf.grad for leaf in leaves]))
    (out, grads), (ref_out, ref_grads) = results
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-10)


def test_apply_dropout_gradient_is_the_mask_over_keep_prob():
    x = _randn(50, 40)
    out = ct.apply_dropout(x, keep_prob=0.75, seed=3)
    out.sum().backward()
    kept = out.detach() != 0
    expected = kept.to(F64) / 0.75
    assert torch.equal(x.grad, expected)


def test_batch_norm_updates_the_running_statistics_in_train_mode_only():
    state = {}
    x = _randn(8, 3) * 3 + 2
    ct.batch_norm(x, torch.ones(3, dtype=F64), torch.zeros(3, dtype=F64), state)
    expected_mean = 0.1 * x.detach().mean(dim=0)  # 0.9 * 0 + 0.1 * batch mean
    torch.testing.assert_close(state["running_mean"], expected_mean)
    assert not state["running_mean"].requires_grad
    before = state["running_mean"].clone()
    ct.batch_norm(x, torch.ones(3, dtype=F64), torch.zeros(3, dtype=F64), state, False)
    assert torch.equal(state["running_mean"], before)


def test_helpers_without_bias():
    x, w = _randn(2, 3, 4, 4), _randn(5, 3, 3, 3, seed=1)
    torch.testing.assert_close(ct.conv2d(x, w), F.conv2d(x, w))
    x2, w2 = _randn(2, 6), _randn(6, 3, seed=2)
    torch.testing.assert_close(ct.affine(x2, w2), x2 @ w2)


def test_double_backward_is_refused():
    x = _randn(3, 4)
    out = ct.sigmoid(x)
    # (out²).sum() sends dout = 2 out, itself a function of x, into our backward
    (grad,) = torch.autograd.grad((out**2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()


def test_modifying_a_saved_input_in_place_is_caught():
    # the cache goes through save_for_backward, so autograd notices x changed under it
    x = _randn(3, 4)
    h = x * 1  # a non-leaf that can be modified in place
    out = ct.relu(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_no_reference_cycle_keeps_outputs_alive():
    # sigmoid's cache is its output; saved on ctx directly it would form a cycle out -> graph ->
    # ctx -> out, freed only by the cyclic garbage collector
    import gc
    import weakref

    gc.disable()
    try:
        x = _randn(100)
        out = ct.sigmoid(x)
        ref = weakref.ref(out)
        del out
        assert ref() is None
    finally:
        gc.enable()
