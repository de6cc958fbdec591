"""cnnlib.explain: each method does what its paper says, on small models where the answer is known.

Models here are tiny (8x8 images, a few channels) and in float64, so every test runs in
milliseconds and exact values can be asserted where the math gives them: a linear model's
gradient is its weights, its integrated gradients are (x - x') * w, its occlusion drop is the
sum of w * x under the patch; a model that reads one region has gradient exactly 0 elsewhere.
Where the math gives only an approximation (a quadrature, an optimisation), the tolerance or
the margin is stated beside the assertion.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlib.torch as ct
from cnnlib import explain as ex
from cnnlib.torch.models.cifar_resnet import CifarBasicBlock

H = W = 8
CLASSES = 5


def _seeded(seed: int):
    torch.manual_seed(seed)  # tests may use the global generator; the library never does


def small_cnn() -> nn.Module:
    """conv-relu-conv-relu-maxpool-linear on (N, 3, 8, 8), float64, 5 classes."""
    _seeded(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, CLASSES),
    ).double()  # fmt: skip


def residual_net() -> nn.Module:
    """A stem and one CIFAR ResNet block: batch norm, one in-place ReLU shared by the block."""
    _seeded(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        CifarBasicBlock(4, 8, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, CLASSES),
    ).double()  # fmt: skip
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)  # not the identity, so eval mode matters
        bn.running_var.uniform_(0.5, 2.0)
    return net


class Linear(nn.Module):
    """scores = <w_k, x> + b_k: every explanation has a closed form."""

    def __init__(self):
        super().__init__()
        _seeded(2)
        self.w = nn.Parameter(torch.randn(CLASSES, 3, H, W, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(CLASSES, dtype=torch.float64))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.w) + self.b


class RegionNet(nn.Module):
    """Reads only rows 1-3 and columns 4-6 of the image (a 3x3 window)."""

    ROWS, COLS = slice(1, 4), slice(4, 7)

    def __init__(self):
        super().__init__()
        _seeded(3)
        self.conv = nn.Conv2d(3, 4, 2)
        self.fc = nn.Linear(4 * 2 * 2, CLASSES)

    def forward(self, x):
        window = x[:, :, self.ROWS, self.COLS]
        return self.fc(torch.tanh(self.conv(window)).flatten(1))

    @classmethod
    def inside(cls) -> torch.Tensor:
        mask = torch.zeros(H, W, dtype=torch.bool)
        mask[cls.ROWS, cls.COLS] = True
        return mask


def images(n: int = 4, seed: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, H, W, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)  # fmt: skip


TARGETS = torch.tensor([0, 1, 2, 4])


def class_scores(model, x, target) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)[torch.arange(len(x)), target]


# --------------------------------------------------------------------------------------------
# Exact values on a linear model


def test_gradient_of_a_linear_model_is_its_weights():
    model, x = Linear(), images()
    assert torch.equal(ex.gradient(model, x, TARGETS), model.w[TARGETS].detach())
    # saliency: max over channels of |w|
    assert torch.equal(ex.saliency(model, x, 3), model.w[3].detach().abs().amax(0).expand(4, H, W))


def test_smoothgrad_of_a_linear_model_is_its_saliency():
    # the gradient does not depend on x, so averaging it over noisy copies changes nothing;
    # 50 noisy copies summed and divided by 50 leave a few ulps of rounding
    model, x = Linear(), images()
    smooth = ex.smoothgrad(model, x, TARGETS, samples=50, noise=0.3, seed=0)
    torch.testing.assert_close(smooth, ex.saliency(model, x, TARGETS), rtol=1e-13, atol=0)


@pytest.mark.parametrize("method", ["riemann_right", "riemann_middle", "gausslegendre"])
def test_integrated_gradients_of_a_linear_model_is_exact(method):
    # IG = (x - x') * w and completeness holds exactly whatever the quadrature: the weights sum
    # to 1 (rounding: 1e-15 relative)
    model, x = Linear(), images()
    baseline = 0.5 * images(seed=9)
    ig, delta = ex.integrated_gradients(
        model, x, TARGETS, baseline=baseline, steps=7, method=method, return_delta=True
    )
    expected = (x - baseline) * model.w[TARGETS].detach()
    torch.testing.assert_close(ig, expected, rtol=1e-12, atol=1e-14)
    assert delta.abs().max() < 1e-12


def test_occlusion_of_a_linear_model_drops_what_the_patch_covered():
    # S(x) - S(x with the patch set to 0) = sum of w * x under the patch, at every position
    model, x = Linear(), images()
    drops = ex.occlusion(model, x, TARGETS, patch=3, stride=2, per_pixel=False)
    positions = ex.occlusion_positions(H, 3, 2)
    assert positions == [0, 2, 4, 6]  # 8 pixels, patch 3, stride 2: the last one overhangs
    assert drops.shape == (4, 4, 4)
    contribution = x * model.w[TARGETS].detach()  # (N, C, H, W)
    for i, r in enumerate(positions):
        for j, c in enumerate(positions):
            expected = contribution[:, :, r : r + 3, c : c + 3].sum(dim=(1, 2, 3))
            torch.testing.assert_close(drops[:, i, j], expected, rtol=1e-10, atol=1e-12)


def test_occlusion_per_pixel_is_the_mean_drop_of_the_patches_over_it():
    model, x = Linear(), images()
    drops = ex.occlusion(model, x, TARGETS, patch=3, stride=2, per_pixel=False)
    pixels = ex.occlusion(model, x, TARGETS, patch=3, stride=2)
    assert pixels.shape == (4, H, W)
    # pixel (0, 0) lies under the patch at position (0, 0) only; pixel (2, 3) under rows 0 and 1
    # of positions and columns 1 (starts at 2) only: the mean of two drops
    torch.testing.assert_close(pixels[:, 0, 0], drops[:, 0, 0])
    torch.testing.assert_close(pixels[:, 2, 3], (drops[:, 0, 1] + drops[:, 1, 1]) / 2)


def test_occlusion_of_the_probability():
    # Zeiler & Fergus plot p(true class): the drop of the softmax probability, by hand at one
    # position (rows and columns 2-4 covered)
    model, x = Linear(), images()
    drops = ex.occlusion(model, x, TARGETS, patch=3, stride=2, per_pixel=False, probability=True)
    covered = x.clone()
    covered[:, :, 2:5, 2:5] = 0
    with torch.no_grad():
        before = model(x).softmax(1)[torch.arange(4), TARGETS]
        after = model(covered).softmax(1)[torch.arange(4), TARGETS]
    torch.testing.assert_close(drops[:, 1, 1], before - after)
    assert drops.abs().max() <= 1


@pytest.mark.parametrize(
    ("size", "patch", "stride", "expected"),
    [(32, 8, 4, list(range(0, 25, 4))), (32, 8, 5, [0, 5, 10, 15, 20, 25]), (8, 8, 3, [0]),
     (7, 2, 2, [0, 2, 4, 6])],
)  # fmt: skip
def test_occlusion_positions_cover_every_pixel(size, patch, stride, expected):
    assert ex.occlusion_positions(size, patch, stride) == expected


def test_grad_cam_after_global_average_pooling_is_cam():
    # Selvaraju et al., section 3.1: with global average pooling and one linear layer, the
    # Grad-CAM weights are the class's weights divided by h*w, so L = ReLU(sum_k w_ck A_k) / hw
    _seeded(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, CLASSES)).double()  # fmt: skip
    x = images()
    maps = ex.layer_activations(model, x, "1")  # (N, 6, 8, 8)
    weights = model[4].weight.detach()[TARGETS]  # (N, 6)
    cam = F.relu(torch.einsum("nk,nkhw->nhw", weights, maps)) / (H * W)
    torch.testing.assert_close(ex.grad_cam(model, x, TARGETS, "1", upsample=False), cam)


# --------------------------------------------------------------------------------------------
# A model that looks at one region only


REGION_METHODS = {
    "saliency": lambda m, x, t: ex.saliency(m, x, t),
    "smoothgrad": lambda m, x, t: ex.smoothgrad(m, x, t, samples=8, seed=0),
    "integrated_gradients": lambda m, x, t: ex.integrated_gradients(m, x, t, steps=8).abs().sum(1),
    "occlusion": lambda m, x, t: ex.occlusion(m, x, t, patch=1, stride=1).abs(),
}


@pytest.mark.parametrize("name", REGION_METHODS)
def test_maps_of_a_model_that_reads_one_region_are_zero_outside_it(name):
    model, x = RegionNet().double(), images()
    maps = REGION_METHODS[name](model, x, TARGETS)
    inside = RegionNet.inside()
    assert maps.shape == (4, H, W)
    assert torch.all(maps[:, ~inside] == 0)  # exactly: nothing outside reaches the scores
    assert torch.all(maps[:, inside].amax(dim=1) > 0)


def test_occlusion_finds_the_region_with_larger_patches():
    # a 2x2 patch changes the scores only at positions that overlap the window (rows 1-3,
    # columns 4-6): at stride 1 those are rows 0-3, columns 3-6
    model, x = RegionNet().double(), images()
    drops = ex.occlusion(model, x, TARGETS, patch=2, stride=1, per_pixel=False)
    assert drops.shape == (4, 7, 7)
    overlapping = torch.zeros(7, 7, dtype=torch.bool)
    overlapping[0:4, 3:7] = True
    assert torch.all(drops[:, ~overlapping] == 0)
    assert torch.all(drops[:, overlapping].abs().amax(dim=1) > 0)


# --------------------------------------------------------------------------------------------
# Integrated gradients: completeness and convergence


def smooth_net() -> nn.Module:
    _seeded(6)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * H * W, CLASSES)).double()  # fmt: skip


def test_integrated_gradients_reports_its_completeness_error():
    # delta is sum(A) - (S(x) - S(x')), recomputed here from the model itself
    model, x = small_cnn(), images()
    ig, delta = ex.integrated_gradients(model, x, TARGETS, steps=16, return_delta=True)
    gap = class_scores(model, x, TARGETS) - class_scores(model, torch.zeros_like(x), TARGETS)
    torch.testing.assert_close(delta, ig.sum(dim=(1, 2, 3)) - gap, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("method", "steps", "bound"),
    # |delta| relative to the largest |S(x) - S(x')| of the batch (one image's gap is tiny,
    # 8e-4, so per-image ratios say little). On a smooth (tanh) model Gauss-Legendre converges
    # geometrically: measured 1e-9 at 8 steps, 3e-16 at 32; midpoints as 1/steps^2 (4e-5 at
    # 32), the paper's right sum as 1/steps (1.3e-2 at 32). Bounds are about 10x those.
    [("gausslegendre", 8, 1e-8), ("gausslegendre", 32, 1e-14), ("riemann_middle", 32, 4e-4),
     ("riemann_right", 32, 0.13)],
)  # fmt: skip
def test_integrated_gradients_completeness_on_a_smooth_model(method, steps, bound):
    model, x = smooth_net(), images()
    _, delta = ex.integrated_gradients(model, x, TARGETS, steps=steps, method=method,
                                       return_delta=True)  # fmt: skip
    gap = class_scores(model, x, TARGETS) - class_scores(model, torch.zeros_like(x), TARGETS)
    assert delta.abs().max() / gap.abs().max() < bound


def test_integrated_gradients_converge_at_the_rate_of_their_rule():
    # quadrupling the steps divides the right-sum error by about 4, the midpoint error by 16
    model, x = smooth_net(), images()

    def error(method, steps):
        _, delta = ex.integrated_gradients(model, x, TARGETS, steps=steps, method=method,
                                           return_delta=True)  # fmt: skip
        return delta.abs().max().item()

    assert 3 < error("riemann_right", 32) / error("riemann_right", 128) < 5
    assert 12 < error("riemann_middle", 32) / error("riemann_middle", 128) < 20


def test_integrated_gradients_batches_do_not_change_the_result():
    model, x = small_cnn(), images()
    whole = ex.integrated_gradients(model, x, TARGETS, steps=10)
    pieces = ex.integrated_gradients(model, x, TARGETS, steps=10, max_batch=3)  # 1 step a pass
    torch.testing.assert_close(pieces, whole, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------
# Guided backprop and Grad-CAM


def test_guided_backprop_stops_negative_signals_at_every_relu():
    # for relu(w x) summed with positive and negative read-out weights, the plain gradient
    # mixes both signs; guided backprop keeps only the paths whose signal is positive
    _seeded(7)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x = torch.randn(3, 6, dtype=torch.float64)

    class AsImage(nn.Module):  # the library takes (N, C, H, W): present x as (N, 1, 1, 6)
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, image):
            return self.net(image.flatten(1))

    guided = ex.guided_backprop(AsImage(), x[:, None, None], 1)[:, 0, 0]
    w1, b1, w2 = model[0].weight, model[0].bias, model[2].weight
    active = (x @ w1.T + b1 > 0).double()  # (N, 4)
    expected = (active * w2[1].clamp(min=0)) @ w1  # only positive read-out weights get through
    torch.testing.assert_close(guided, expected.detach())


def test_guided_backprop_sees_the_course_relu_too():
    model, x = small_cnn(), images()
    course = ct.swap_layers(small_cnn())
    assert not any(isinstance(m, nn.ReLU) for m in course.modules())
    torch.testing.assert_close(ex.guided_backprop(course, x, TARGETS),
                               ex.guided_backprop(model, x, TARGETS))  # fmt: skip


def test_guided_backprop_needs_relu_modules():
    with pytest.raises(ValueError, match=r"nn\.ReLU"):
        ex.guided_backprop(Linear(), images(), 0)


def test_grad_cam_upsamples_to_the_input_and_is_never_negative():
    model, x = residual_net(), images()
    small = ex.grad_cam(model, x, TARGETS, "3", upsample=False)
    full = ex.grad_cam(model, x, TARGETS, model[3])  # the module itself works as well
    assert small.shape == (4, 4, 4) and full.shape == (4, H, W)
    assert small.min() >= 0 and full.min() >= 0
    expected = F.interpolate(small[:, None], size=(H, W), mode="bilinear", align_corners=False)
    torch.testing.assert_close(full, expected[:, 0])


def test_a_layer_after_an_in_place_relu_keeps_its_own_output():
    # "1" (batch norm) is followed by nn.ReLU(inplace=True): the captured output must be the
    # batch norm's, not the ReLU's that overwrote it
    model, x = residual_net(), images()
    bn = ex.layer_activations(model, x, "1")
    with torch.no_grad():
        expected = model.eval()[1](model[0](x))
    torch.testing.assert_close(bn, expected)
    assert (bn < 0).any()


def test_a_layer_that_runs_twice_is_refused():
    # the block's one ReLU module runs twice per forward pass
    with pytest.raises(ValueError, match="ran 2 times"):
        ex.grad_cam(residual_net(), images(), 0, "3.relu")


# --------------------------------------------------------------------------------------------
# Adversarial images


def losses(model, x, target) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model.eval()(x), torch.as_tensor(target).expand(len(x)),
                               reduction="none")  # fmt: skip


# float32 rounding of x +- epsilon for |x| < 8 is at most 2^-21 ~ 5e-7; float64 far less
BUDGET_SLACK = 1e-12


@pytest.mark.parametrize("epsilon", [1e-3, 0.05])
def test_fgsm_raises_the_loss_within_the_budget(epsilon):
    # to first order the loss rises by epsilon * ||grad||_1 > 0; at 0.05 the model is still close
    # enough to linear on these inputs for every image's loss to rise
    model, x = small_cnn(), images()
    x_adv = ex.fgsm(model, x, TARGETS, epsilon)
    assert torch.all(losses(model, x_adv, TARGETS) > losses(model, x, TARGETS))
    assert (x_adv - x).abs().max() <= epsilon + BUDGET_SLACK
    # every pixel with a non-zero gradient moved by exactly epsilon
    moved = (x_adv - x).abs()
    assert torch.allclose(moved[moved > 0], torch.tensor(epsilon, dtype=torch.float64))


def test_targeted_fgsm_lowers_the_targets_loss():
    model, x = small_cnn(), images()
    x_adv = ex.fgsm(model, x, 3, 0.01, targeted=True)
    assert torch.all(losses(model, x_adv, 3) < losses(model, x, 3))


def test_pgd_of_one_full_step_is_fgsm():
    model, x = small_cnn(), images()
    torch.testing.assert_close(ex.pgd(model, x, TARGETS, 0.1, steps=1, step_size=0.1),
                               ex.fgsm(model, x, TARGETS, 0.1), rtol=0, atol=0)  # fmt: skip


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_stays_in_the_budget_and_the_bounds_and_beats_fgsm(random_start):
    model, x = small_cnn(), images().clamp(-1, 1)
    epsilon = 0.1
    x_adv = ex.pgd(model, x, TARGETS, epsilon, steps=10, random_start=random_start,
                   bounds=(-1.0, 1.0), seed=0)  # fmt: skip
    assert (x_adv - x).abs().max() <= epsilon + BUDGET_SLACK
    assert x_adv.min() >= -1 and x_adv.max() <= 1
    # ten steps search the ball better than one: measured 1.4-2x FGSM's loss increase
    fgsm_adv = ex.fgsm(model, x, TARGETS, epsilon, bounds=(-1.0, 1.0))
    assert losses(model, x_adv, TARGETS).sum() > losses(model, fgsm_adv, TARGETS).sum()


def test_targeted_pgd_fools_the_model_into_the_target():
    model, x = small_cnn(), images()
    x_adv = ex.pgd(model, x, 3, 0.5, steps=20, targeted=True)
    with torch.no_grad():
        assert torch.all(model(x_adv).argmax(1) == 3)
    assert (x_adv - x).abs().max() <= 0.5 + BUDGET_SLACK


def test_fooling_images_reach_the_target_and_stop_there():
    model, x = small_cnn(), images()
    fooled = ex.fooling_images(model, x, 3, step_size=0.5, max_steps=30)
    with torch.no_grad():
        assert torch.all(model(fooled).argmax(1) == 3)
    # an image the model already calls 3 is returned unchanged
    assert torch.equal(ex.fooling_images(model, fooled, 3), fooled)
    # each image stops at the first step that fools the model: measured L2 changes of 2.9,
    # 0.5 (one step: that image was nearly a 3 already), 3.4 and 1.4
    changes = (fooled - x).flatten(1).norm(dim=1)
    assert torch.all(changes <= 0.5 * 30 + 1e-9) and changes.min() <= 0.5 + 1e-9
    # a required confidence asks for a larger change
    sure = ex.fooling_images(model, x, 3, step_size=0.5, max_steps=100, confidence=0.5)
    with torch.no_grad():
        assert torch.all(model(sure).softmax(1)[:, 3] >= 0.5)
    assert torch.all((sure - x).flatten(1).norm(dim=1) > changes)


# --------------------------------------------------------------------------------------------
# Synthesised images


def test_class_visualisation_raises_the_class_score():
    model = small_cnn()
    start = torch.zeros(2, 3, H, W, dtype=torch.float64)
    target = torch.tensor([1, 4])
    # jitter 1: two pixels of an 8x8 image would be a quarter of it
    image = ex.class_visualisation(model, start, target, steps=30, jitter=1, seed=0)
    before, after = class_scores(model, start, target), class_scores(model, image, target)
    # measured: from 0.05 and -0.04 to 0.75 and 0.40 (30 steps of about 0.1 per pixel)
    assert torch.all(after > before + 0.3)
    with torch.no_grad():
        assert model(image).argmax(1).tolist() == [1, 4]
    assert torch.equal(start, torch.zeros_like(start))  # the caller's x is untouched


def test_class_visualisation_without_regularisers_is_plain_gradient_ascent():
    # no jitter, blur or decay: each step adds lr * g / mean|g|, so the first one is exact
    model, start = residual_net(), 0.1 * images(2)
    one = ex.class_visualisation(model, start, 2, steps=1, lr=0.1, l2=0, jitter=0, blur_every=0)
    g = ex.gradient(model, start, 2)
    expected = start + 0.1 * g / g.abs().mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(one, expected)
    many = ex.class_visualisation(model, start, 2, steps=20, l2=0, jitter=0, blur_every=0)
    assert torch.all(class_scores(model, many, 2) > class_scores(model, start, 2))


def test_class_visualisation_respects_bounds_and_reproduces_with_a_seed():
    model, start = residual_net(), 0.1 * images(2)
    one = ex.class_visualisation(model, start, 2, steps=12, bounds=(-0.5, 0.5), seed=3)
    two = ex.class_visualisation(model, start, 2, steps=12, bounds=(-0.5, 0.5), seed=3)
    assert torch.equal(one, two)
    assert one.min() >= -0.5 and one.max() <= 0.5


def test_activation_maximisation_raises_a_hidden_channel():
    model, start = residual_net(), 0.1 * images(2)
    # no jitter here: after the block's stride-2 conv a 1-pixel shift of an 8x8 image changes
    # which pixels feed which output, and the shifted objectives pull different ways
    image = ex.class_visualisation(model, start, 5, layer="3.conv2", steps=20, jitter=0, seed=0)
    before = ex.layer_activations(model, start, "3.conv2")[:, 5].mean(dim=(1, 2))
    after = ex.layer_activations(model, image, "3.conv2")[:, 5].mean(dim=(1, 2))
    assert torch.all(after > 1.5 * before)  # measured: 0.12 -> 0.21 for both images


def inversion_objective(model, image, x, layer, tv):
    """The objective invert_features states, recomputed from its formula."""
    wanted = ex.layer_activations(model, x, layer).flatten(1)
    got = ex.layer_activations(model, image, layer).flatten(1)
    positions = 3 * (H - 1) * (W - 1)
    return ((got - wanted) ** 2).sum(1) / (wanted**2).sum(1) + tv * ex.total_variation(
        image
    ) / positions


@pytest.mark.parametrize("layer", ["0", "3"])
def test_feature_inversion_lowers_its_objective(layer):
    model, x = residual_net(), images(2)
    start = 0.1 * images(2, seed=11)
    image = ex.invert_features(model, x, layer, steps=40, lr=0.05, tv=0.05, init=start)
    before = inversion_objective(model, start, x, layer, 0.05)
    after = inversion_objective(model, image, x, layer, 0.05)
    # measured after 40 steps: 0.16x and 0.14x at "0" (a conv), 0.36x and 0.56x at "3" (the
    # block): a deep layer of a random network keeps less to match""
    assert torch.all(after < 0.75 * before)


def test_feature_inversion_with_bounds_l2_and_classic_tv():
    model, x = residual_net(), images(2).clamp(-1, 1)
    image = ex.invert_features(model, x, "0", steps=10, tv=0.1, beta=1.0, l2=0.01,
                               bounds=(-1.0, 1.0), seed=0)  # fmt: skip
    assert image.shape == x.shape and image.min() >= -1 and image.max() <= 1
    assert torch.isfinite(image).all()  # beta = 1 has no NaN gradient at flat patches
    again = ex.invert_features(model, x, "0", steps=10, tv=0.1, beta=1.0, l2=0.01,
                               bounds=(-1.0, 1.0), seed=0)  # fmt: skip
    assert torch.equal(image, again)


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]).reshape(1, 1, 3, 3)
    # positions (0,0): right 1, down 2 -> 5; (0,1): 2, 1 -> 5; (1,0): 0, -2 -> 4; (1,1): 0, -2 -> 4
    assert ex.total_variation(x).item() == 18.0
    assert math.isclose(ex.total_variation(x, beta=1.0).item(),
                        2 * math.sqrt(5) + 2 * 2, rel_tol=1e-6)  # fmt: skip
    assert ex.total_variation(torch.ones(2, 3, 5, 5)).tolist() == [0.0, 0.0]


def test_gaussian_blur_keeps_constants_and_smooths_noise():
    constant = torch.full((1, 3, 6, 6), 2.5, dtype=torch.float64)
    torch.testing.assert_close(ex.gaussian_blur(constant, 1.0), constant)
    noise = images(1)
    blurred = ex.gaussian_blur(noise, 1.0)
    assert blurred.shape == noise.shape
    assert ex.total_variation(blurred) < 0.3 * ex.total_variation(noise)
    assert torch.equal(ex.gaussian_blur(noise, 0.0), noise)
    tiny = torch.randn(1, 1, 2, 2, dtype=torch.float64)  # smaller than the kernel: still works
    assert ex.gaussian_blur(tiny, 2.0).shape == tiny.shape


# --------------------------------------------------------------------------------------------
# Filters, activations, features, neighbours, t-SNE


@pytest.mark.parametrize(
    ("shape", "ncols", "padding", "expected"),
    [((16, 3, 3, 3), None, 1, (3, 17, 17)), ((10, 1, 5, 5), 4, 2, (1, 23, 30)),
     ((1, 3, 7, 7), None, 0, (3, 7, 7)), ((6, 3, 2, 4), 6, 1, (3, 4, 31))],
)  # fmt: skip
def test_filter_grid_shapes(shape, ncols, padding, expected):
    grid = ex.filter_grid(torch.randn(shape), ncols=ncols, padding=padding)
    assert grid.shape == expected
    assert grid.min() >= 0 and grid.max() <= 1


def test_filter_grid_places_and_scales_each_filter():
    weights = torch.zeros(3, 1, 2, 2)
    weights[1, 0, 0, 0] = -4.0  # filter 1: its largest magnitude is negative
    weights[2, 0, 1, 1] = 0.5
    grid = ex.filter_grid(weights, ncols=2, padding=1, pad_value=1.0)[0]
    assert grid.shape == (7, 7)
    assert torch.equal(grid[1:3, 1:3], torch.full((2, 2), 0.5))  # all-zero filter: mid-grey
    assert grid[1, 4] == 0.0 and grid[2, 5] == 0.5  # -max|w| -> 0, 0 -> 0.5
    assert grid[5, 2] == 1.0 and grid[4, 1] == 0.5  # +max|w| -> 1
    assert torch.all(grid[0] == 1.0) and torch.all(grid[:, 3] == 1.0)  # the padding
    assert torch.all(grid[4:6, 4:6] == 1.0)  # the empty fourth slot


def test_first_layer_filters_of_a_zoo_model():
    model = ct.models.create("cifar_resnet20")
    filters = ex.first_layer_filters(model)
    assert filters.shape == (16, 3, 3, 3)
    assert torch.equal(filters, model.conv1.weight)
    assert not filters.requires_grad and filters.data_ptr() != model.conv1.weight.data_ptr()
    with pytest.raises(ValueError, match="convolution"):
        ex.first_layer_filters(Linear())


def test_layer_activations_one_or_several():
    model, x = small_cnn(), images()
    one = ex.layer_activations(model, x, "1")
    both = ex.layer_activations(model, x, ["0", "3"])
    with torch.no_grad():
        conv1 = model[0](x)
    torch.testing.assert_close(one, F.relu(conv1))
    assert list(both) == ["0", "3"] and both["3"].shape == (4, 6, H, W)
    torch.testing.assert_close(both["0"], conv1)


def test_features_are_the_input_of_the_last_linear_layer():
    model, x = residual_net(), images(10)
    codes = ex.features(model, x, max_batch=3)  # in 4 batches
    assert codes.shape == (10, 8)
    with torch.no_grad():
        expected = model.eval()[:6](x)
    torch.testing.assert_close(codes, expected)
    torch.testing.assert_close(ex.features(model, x, layer="4"), expected)  # the pooled maps


def test_nearest_neighbours_on_a_grid_of_points():
    # keys at 0, 1, ..., 9 on a line in 3-D; the neighbours of 2.4 are 2, 3, 1, 4, 0 exactly
    keys = torch.zeros(10, 3, dtype=torch.float64)
    keys[:, 0] = torch.arange(10)
    queries = torch.tensor([[2.4, 0.0, 0.0], [9.0, 0.0, 0.0]], dtype=torch.float64)
    distances, indices = ex.nearest_neighbours(queries, keys, k=5)
    assert indices.tolist() == [[2, 3, 1, 4, 0], [9, 8, 7, 6, 5]]
    torch.testing.assert_close(distances[0], torch.tensor([0.4, 0.6, 1.4, 1.6, 2.4],
                                                          dtype=torch.float64))  # fmt: skip
    assert distances[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_nearest_neighbours_ties_exclusion_and_cosine():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 0.0]])
    origin = torch.zeros(1, 2)
    _, indices = ex.nearest_neighbours(origin, keys[:4], k=4)
    assert indices.tolist() == [[0, 1, 2, 3]]  # four ties: lowest index first
    _, indices = ex.nearest_neighbours(keys, keys, k=1, exclude=torch.arange(5))
    # never itself: (1, 0) is sqrt 2 from (0, 1) and from (0, -1), and takes the lower index
    assert indices[:, 0].tolist() == [1, 0, 1, 0, 0]
    distances, indices = ex.nearest_neighbours(keys[:1], keys, k=5, metric="cosine")
    assert indices[0, :2].tolist() == [0, 4]  # same direction, whatever the length
    torch.testing.assert_close(distances[0], torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0]))
    # images are flattened: pixel-space neighbours
    x = images(6)
    _, indices = ex.nearest_neighbours(x[[4]], x, k=1)
    assert indices.item() == 4


def test_tsne_keeps_separate_clusters_apart():
    gen = torch.Generator().manual_seed(0)
    centres = 20 * torch.eye(3, 10, dtype=torch.float64)
    points = torch.cat([c + torch.randn(12, 10, generator=gen, dtype=torch.float64)
                        for c in centres])  # fmt: skip
    labels = torch.arange(3).repeat_interleave(12)
    embedded = ex.tsne(points, perplexity=5.0, seed=0, iterations=500)
    assert embedded.shape == (36, 2) and embedded.dtype == torch.float32
    # each point's nearest neighbour on the map is from its own cluster
    _, nearest = ex.nearest_neighbours(embedded, embedded, k=1, exclude=torch.arange(36))
    assert torch.equal(labels[nearest[:, 0]], labels)
    torch.testing.assert_close(ex.tsne(points, perplexity=5.0, seed=0, iterations=500), embedded)
    approximate = ex.tsne(points, perplexity=5.0, seed=0, iterations=500, method="barnes_hut")
    _, nearest = ex.nearest_neighbours(approximate, approximate, k=1, exclude=torch.arange(36))
    assert torch.equal(labels[nearest[:, 0]], labels)


# --------------------------------------------------------------------------------------------
# The contract: the model and torch are given back as they were


METHODS = {
    "gradient": lambda m, x: ex.gradient(m, x, TARGETS),
    "saliency": lambda m, x: ex.saliency(m, x, TARGETS),
    "smoothgrad": lambda m, x: ex.smoothgrad(m, x, TARGETS, samples=3),
    "integrated_gradients": lambda m, x: ex.integrated_gradients(m, x, TARGETS, steps=3),
    "guided_backprop": lambda m, x: ex.guided_backprop(m, x, TARGETS),
    "grad_cam": lambda m, x: ex.grad_cam(m, x, TARGETS, "3"),
    "occlusion": lambda m, x: ex.occlusion(m, x, TARGETS, patch=4, stride=4),
    "class_visualisation": lambda m, x: ex.class_visualisation(m, x, TARGETS, steps=2),
    "invert_features": lambda m, x: ex.invert_features(m, x, "3.conv1", steps=2),
    "fgsm": lambda m, x: ex.fgsm(m, x, TARGETS, 0.1),
    "pgd": lambda m, x: ex.pgd(m, x, TARGETS, 0.1, steps=2, random_start=True),
    "fooling_images": lambda m, x: ex.fooling_images(m, x, 0, max_steps=2),
    "layer_activations": lambda m, x: ex.layer_activations(m, x, ["0", "3.conv2"]),
    "features": lambda m, x: ex.features(m, x),
}


@pytest.mark.parametrize("name", METHODS)
def test_the_model_and_torch_are_left_as_they_were(name):
    model, x = residual_net(), images()
    model.train()
    model[1].eval()  # a mix of modes must come back as it was
    model[0].weight.requires_grad_(False)  # a frozen layer, say
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x_before = x.clone()
    rng = torch.random.get_rng_state()
    METHODS[name](model, x)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN stats too
    assert torch.equal(x, x_before)
    assert torch.equal(torch.random.get_rng_state(), rng)


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "grad_cam", "fgsm"])
def test_methods_work_inside_no_grad(name):
    model, x = residual_net(), images()
    expected = METHODS[name](model, x)
    with torch.no_grad():
        torch.testing.assert_close(METHODS[name](model, x), expected)


def test_a_method_that_raises_still_restores_the_model():
    model = residual_net().train()
    with pytest.raises(ValueError, match="target"):
        ex.saliency(model, images(), 7)  # 5 classes: raised after the forward pass
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_seeded_noise_reproduces_and_unseeded_noise_varies():
    model, x = small_cnn(), images()
    one = ex.smoothgrad(model, x, TARGETS, samples=4, seed=1)
    assert torch.equal(one, ex.smoothgrad(model, x, TARGETS, samples=4, seed=1))
    assert not torch.equal(one, ex.smoothgrad(model, x, TARGETS, samples=4, seed=2))
    assert not torch.equal(ex.smoothgrad(model, x, TARGETS, samples=4),
                           ex.smoothgrad(model, x, TARGETS, samples=4))  # fmt: skip
    # the batching of the noisy copies does not change the result
    torch.testing.assert_close(ex.smoothgrad(model, x, TARGETS, samples=4, seed=1, max_batch=4),
                               one)  # fmt: skip


def test_smoothgrad_without_noise_is_saliency():
    model, x = small_cnn(), images()
    torch.testing.assert_close(ex.smoothgrad(model, x, TARGETS, samples=3, noise=0.0),
                               ex.saliency(model, x, TARGETS))  # fmt: skip


def test_targets_as_int_tensor_or_zero_d_tensor_agree():
    model, x = small_cnn(), images()
    expected = ex.saliency(model, x, 2)
    assert torch.equal(ex.saliency(model, x, torch.tensor(2)), expected)
    assert torch.equal(ex.saliency(model, x, torch.full((4,), 2, dtype=torch.int32)), expected)


# --------------------------------------------------------------------------------------------
# Errors name the argument


BAD_CALLS = [
    (lambda m, x: ex.saliency("net", x, 0), TypeError, "model must be a torch.nn.Module"),
    (lambda m, x: ex.saliency(m, x.numpy(), 0), TypeError, "x must be a torch.Tensor"),
    (lambda m, x: ex.saliency(m, x[0], 0), ValueError, r"x must have 4 dimensions \(N, C, H, W\)"),
    (lambda m, x: ex.saliency(m, x.long(), 0), TypeError, "x must hold floating-point"),
    (lambda m, x: ex.saliency(m, x, 5), ValueError, r"target must hold indices in \[0, 5\)"),
    (lambda m, x: ex.saliency(m, x, -1), ValueError, "target must hold indices"),
    (lambda m, x: ex.saliency(m, x, 1.0), TypeError, "target must be an int"),
    (lambda m, x: ex.saliency(m, x, torch.zeros(3, dtype=torch.long)), ValueError,
     r"target must be an int or an \(4,\) tensor"),
    (lambda m, x: ex.saliency(m, x, torch.zeros(4)), TypeError, "target must hold integer"),
    (lambda m, x: ex.smoothgrad(m, x, 0, samples=0), ValueError, "samples must be >= 1"),
    (lambda m, x: ex.smoothgrad(m, x, 0, noise=-0.1), ValueError, "noise must be in"),
    (lambda m, x: ex.smoothgrad(m, x, 0, seed=1.5), TypeError, "seed must be an int"),
    (lambda m, x: ex.integrated_gradients(m, x, 0, method="simpson"), ValueError,
     "method must be"),
    (lambda m, x: ex.integrated_gradients(m, x, 0, steps=0), ValueError, "steps must be >= 1"),
    (lambda m, x: ex.integrated_gradients(m, x, 0, baseline=torch.zeros(2, 3, 8, 8)),
     ValueError, "baseline must broadcast"),
    (lambda m, x: ex.integrated_gradients(m, x, 0, baseline="black"), TypeError,
     "baseline must be a number"),
    (lambda m, x: ex.grad_cam(m, x, 0, "conv9"), ValueError, r"layer must name a submodule.*'0'"),
    (lambda m, x: ex.grad_cam(m, x, 0, 3), TypeError, "layer must be a layer name"),
    (lambda m, x: ex.grad_cam(m, x, 0, nn.ReLU()), ValueError, "layer must be a submodule"),
    (lambda m, x: ex.grad_cam(m, x, 0, "6"), ValueError, r"must output \(N, K, h, w\)"),
    (lambda m, x: ex.occlusion(m, x, 0, patch=9), ValueError, "patch must fit"),
    (lambda m, x: ex.occlusion(m, x, 0, patch=2, stride=3), ValueError,
     "stride must not exceed patch"),
    (lambda m, x: ex.occlusion(m, x, 0, patch=0), ValueError, "patch must be >= 1"),
    (lambda m, x: ex.fgsm(m, x, 0, -0.1), ValueError, "epsilon must be in"),
    (lambda m, x: ex.fgsm(m, x, 0, 0.1, bounds=(1, 0)), ValueError, "bounds must be"),
    (lambda m, x: ex.pgd(m, x, 0, 0.1, steps=0), ValueError, "steps must be >= 1"),
    (lambda m, x: ex.fooling_images(m, x, 0, confidence=2), ValueError, "confidence must be"),
    (lambda m, x: ex.class_visualisation(m, x, 0, l2=2), ValueError, "l2 must be in"),
    (lambda m, x: ex.class_visualisation(m, x, 0, jitter=-1), ValueError, "jitter must be"),
    (lambda m, x: ex.invert_features(m, x, "0", init=x[:1]), ValueError,
     "init must have x's shape"),
    (lambda m, x: ex.total_variation(x, beta=0), ValueError, "beta must be in"),
    (lambda m, x: ex.filter_grid(torch.zeros(4, 2, 3, 3)), ValueError, "C = 1 or 3"),
    (lambda m, x: ex.layer_activations(m, x, []), ValueError, "at least one layer"),
    (lambda m, x: ex.nearest_neighbours(x, x[:, :2], k=1), ValueError,
     "queries and keys must have the same size"),
    (lambda m, x: ex.nearest_neighbours(x, x, k=5), ValueError, r"k must be at most 4"),
    (lambda m, x: ex.nearest_neighbours(x, x, metric="manhattan"), ValueError, "metric must be"),
    (lambda m, x: ex.tsne(x, perplexity=4), ValueError, "perplexity must be below"),
    (lambda m, x: ex.tsne(x, perplexity=2, dims=4, method="barnes_hut"), ValueError,
     "method must be"),
    (lambda m, x: ex.saliency(nn.Identity(), x, 0), ValueError,
     r"model must return class scores of shape \(N, K\)"),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_arguments_raise_errors_that_name_them(call, error, message):
    with pytest.raises(error, match=message):
        call(small_cnn(), images())


# --------------------------------------------------------------------------------------------
# Devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", sorted(METHODS))
def test_cuda_gives_what_the_cpu_gives(name):
    # float64 on both: the GPU sums in other orders, so agreement to ~1e-12 relative, not bits;
    # seeded noise and jitter are drawn on the CPU, so they are the same numbers on both
    seeded = {
        "smoothgrad": lambda m, x: ex.smoothgrad(m, x, TARGETS, samples=3, seed=0),
        "pgd": lambda m, x: ex.pgd(m, x, TARGETS, 0.1, steps=2, random_start=True, seed=0),
        "class_visualisation": lambda m, x: ex.class_visualisation(m, x, TARGETS, steps=2, seed=0),
        "invert_features": lambda m, x: ex.invert_features(m, x, "3.conv1", steps=2, seed=0),
    }
    method = seeded.get(name, METHODS[name])
    model, x = residual_net(), images()
    on_cpu = method(model, x)
    on_gpu = method(model.cuda(), x.cuda())
    if isinstance(on_cpu, dict):
        on_cpu, on_gpu = list(on_cpu.values()), [v.cpu() for v in on_gpu.values()]
    else:
        assert on_gpu.device.type == "cuda"
        on_gpu = on_gpu.cpu()
    if name in ("fgsm", "pgd"):  # sign(gradient): a gradient within rounding of 0 may flip
        assert (torch.as_tensor(on_gpu) != torch.as_tensor(on_cpu)).double().mean() < 0.01
    else:
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-9, atol=1e-10)
