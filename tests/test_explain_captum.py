"""cnnlib.explain against Captum (a test-only dependency): the same numbers on the same models.

Five methods are compared: saliency, integrated gradients (three quadrature rules), occlusion,
guided backprop and Grad-CAM, on three models: a plain conv net and a residual block (batch norm,
one in-place ReLU module shared by the block) in float64, and the zoo's CIFAR ResNet-20 in
float32. Every difference is measured relative to the largest magnitude in Captum's map.

Tolerances, and why:
- float64, same arithmetic (saliency, guided backprop, Grad-CAM, Riemann IG with 32 steps, whose
  weights 1/32 are exact in binary): 1e-12. Both libraries run the same forward and backward
  passes; only the order of a few sums may differ (measured: bit-identical).
- float64, Gauss-Legendre IG and occlusion: 1e-6. Captum casts the quadrature weights
  (`torch.tensor(step_sizes).float()`) and occlusion's summed drops (`.float()` before dividing
  by the counts) to float32, i.e. rounds them to 2^-24 ~ 6e-8 relative (measured: 5e-9 and
  5e-8); 1e-6 leaves a 16x margin and still catches a wrong weight or a patch off by one pixel.
- float32 ResNet-20: 1e-5. float32 epsilon is 1.2e-7, a conv sums up to 576 products and the
  network is 20 layers deep, so a different summation order could cost ~1e-6 (measured: 0).
Captum's models are put in eval mode by hand (cnnlib.explain does it by itself): with batch
norm in training mode the two libraries would explain different functions.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from test_explain import TARGETS, images, residual_net, small_cnn

import cnnlib.torch as ct
from cnnlib import explain as ex

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Captum's notes on its hooks


def resnet20():
    torch.manual_seed(12)
    return ct.models.create("cifar_resnet20")


# name -> (model, images, targets, Grad-CAM layer, tolerance for identical arithmetic,
#          tolerance where Captum rounds to float32); the ResNet-20 has a test of its own
CASES = {
    "small_cnn": (small_cnn, images, TARGETS, "2", 1e-12, 1e-6),
    "residual_net": (residual_net, images, TARGETS, "3", 1e-12, 1e-6),
}


def assert_agree(ours: torch.Tensor, theirs: torch.Tensor, tolerance: float) -> None:
    assert ours.shape == theirs.shape
    scale = theirs.abs().max()
    assert scale > 0, "a map of zeros would agree with anything"
    difference = (ours.to(theirs.dtype) - theirs).abs().max()
    assert difference <= tolerance * scale, f"max |difference| {difference:.3g}, scale {scale:.3g}"


@pytest.fixture(params=list(CASES))
def case(request):
    make_model, make_images, targets, layer, exact, rounded = CASES[request.param]
    model = make_model().eval()
    return model, make_images(), targets, layer, exact, rounded


def test_saliency_agrees_with_captum(case):
    model, x, targets, _, exact, _ = case
    theirs = Saliency(model).attribute(x, target=targets, abs=True).amax(dim=1)
    assert_agree(ex.saliency(model, x, targets), theirs, exact)


@pytest.mark.parametrize("method", ["riemann_right", "riemann_middle", "gausslegendre"])
def test_integrated_gradients_agree_with_captum(case, method):
    model, x, targets, _, exact, rounded = case
    theirs, their_delta = IntegratedGradients(model).attribute(
        x, target=targets, n_steps=32, method=method, return_convergence_delta=True
    )
    ours, our_delta = ex.integrated_gradients(model, x, targets, steps=32, method=method,
                                              return_delta=True)  # fmt: skip
    assert_agree(ours, theirs, exact if method.startswith("riemann") else rounded)
    # the completeness error: Captum's delta is ours (sum(A) - (S(x) - S(x'))) to rounding
    scale = their_delta.abs().max() + ours.abs().sum(dim=(1, 2, 3)).max() * rounded
    assert (our_delta.to(their_delta.dtype) - their_delta).abs().max() <= scale


@pytest.mark.parametrize(("patch", "stride"), [(3, 2), (2, 2), (4, 3)])
def test_occlusion_agrees_with_captum(case, patch, stride):
    model, x, targets, _, _, rounded = case
    theirs = Occlusion(model).attribute(
        x, target=targets, baselines=0.0,
        sliding_window_shapes=(x.shape[1], patch, patch), strides=(x.shape[1], stride, stride),
    )  # fmt: skip
    # Captum occludes all channels at once, so its map is the same in every channel
    assert torch.equal(theirs[:, 0], theirs[:, -1])
    assert_agree(ex.occlusion(model, x, targets, patch=patch, stride=stride), theirs[:, 0], rounded)


def test_guided_backprop_agrees_with_captum(case):
    model, x, targets, _, exact, _ = case
    theirs = GuidedBackprop(model).attribute(x, target=targets)
    assert_agree(ex.guided_backprop(model, x, targets), theirs, exact)


def test_grad_cam_agrees_with_captum(case):
    model, x, targets, layer, exact, _ = case
    module = dict(model.named_modules())[layer]
    theirs = LayerGradCam(model, module).attribute(x, target=targets, relu_attributions=True)
    assert_agree(ex.grad_cam(model, x, targets, layer, upsample=False), theirs[:, 0], exact)
    upsampled = LayerAttribution.interpolate(theirs, tuple(x.shape[2:]), "bilinear")
    assert_agree(ex.grad_cam(model, x, targets, layer), upsampled[:, 0], exact)


def test_all_five_agree_with_captum_on_the_cifar_resnet20():
    # the zoo's network, float32, untrained (the weights do not change the arithmetic): one
    # image, few steps and patches, so that it stays fast; tolerance 1e-5 (see the top)
    model = resnet20().eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(13))
    target = torch.tensor([3])
    assert_agree(ex.saliency(model, x, target),
                 Saliency(model).attribute(x, target=target, abs=True).amax(dim=1), 1e-5)
    assert_agree(ex.integrated_gradients(model, x, target, steps=2),
                 IntegratedGradients(model).attribute(x, target=target, n_steps=2), 1e-5)
    theirs = Occlusion(model).attribute(x, target=target, baselines=0.0,
                                        sliding_window_shapes=(3, 16, 16), strides=(3, 16, 16))
    assert_agree(ex.occlusion(model, x, target, patch=16, stride=16), theirs[:, 0], 1e-5)
    assert_agree(ex.guided_backprop(model, x, target),
                 GuidedBackprop(model).attribute(x, target=target), 1e-5)
    theirs = LayerGradCam(model, model.layer3).attribute(x, target=target, relu_attributions=True)
    assert_agree(ex.grad_cam(model, x, target, "layer3", upsample=False), theirs[:, 0], 1e-5)


def test_the_cross_check_can_fail():
    # a meta-test: a map that is wrong by one patch position, or by a quadrature weight
    # rounded to float32 in float64 arithmetic, is caught at the tolerances above
    model, x = small_cnn().eval(), images()
    theirs = Occlusion(model).attribute(x, target=TARGETS, baselines=0.0,
                                        sliding_window_shapes=(3, 3, 3), strides=(3, 2, 2))[:, 0]
    shifted = ex.occlusion(model, x, TARGETS, patch=3, stride=2).roll(1, dims=2)
    with pytest.raises(AssertionError):
        assert_agree(shifted, theirs, 1e-6)
    ours = ex.integrated_gradients(model, x, TARGETS, steps=31, method="riemann_right")
    theirs = IntegratedGradients(model).attribute(x, target=TARGETS, n_steps=31,
                                                  method="riemann_right")  # fmt: skip
    with pytest.raises(AssertionError):  # 1/31 is not exact in float32: ~1e-8 apart
        assert_agree(ours, theirs, 1e-12)
    assert_agree(ours, theirs, 1e-6)
