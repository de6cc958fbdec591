"""Explanations read off gradients: which input pixels, or which places in a layer, the score of
one class is most sensitive to.

    gradient(model, x, target)              d S_c / d x                      (N, C, H, W)
    saliency(model, x, target)              max over channels of |d S_c/d x|  (N, H, W)
    smoothgrad(model, x, target)            saliency of the gradient averaged over noisy copies
    integrated_gradients(model, x, target)  (x - x') times the gradient averaged along x' -> x
    guided_backprop(model, x, target)       the gradient with negative signals stopped at ReLUs
    grad_cam(model, x, target, layer)       a layer's maps weighted by their mean gradient

x: (N, C, H, W) images; target: an int (one class for every image) or an (N,) integer tensor.
S_c is the model's score for class c before any softmax. The model is borrowed in eval mode with
its parameters frozen and given back as it was (see `cnnlib.explain._common.explaining`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._common import (
    Capture,
    as_targets,
    check_model_and_images,
    check_scores,
    chunks,
    explaining,
    generator,
    input_gradient,
    leaf,
    like_x,
    number,
    pick,
    positive_int,
    randn_like,
    target_scores,
)

__all__ = [
    "grad_cam",
    "gradient",
    "guided_backprop",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
]


def _gradient(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) gradient of each image's target score, for a model already borrowed."""
    x = leaf(x)
    return input_gradient(target_scores(model, x, targets), x)


def gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """The gradient of the target class's score with respect to the input pixels.

    x: (N, C, H, W), target: int or (N,) -> (N, C, H, W), dS_c/dx at x: how much the score of
    class c changes per unit change of each pixel and channel (the first-order Taylor weights
    of Simonyan et al., 2014, section 3).
    """
    check_model_and_images(model, x)
    targets = as_targets(target, x.shape[0], x.device)
    with explaining(model):
        return _gradient(model, x, targets)


def _channel_max(grad: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W): the largest magnitude over the channels (Simonyan et al.)."""
    return grad.abs().amax(dim=1)


def saliency(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Image-specific class saliency (Simonyan, Vedaldi & Zisserman, 2014, section 3.1).

    x: (N, C, H, W), target: int or (N,) -> (N, H, W), M[i, j] = max over channels c of
    |dS_c/dx[c, i, j]|: the pixels whose change would move the class score most.
    """
    return _channel_max(gradient(model, x, target))


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target,
    samples: int = 50,
    noise: float = 0.15,
    *,
    max_batch: int = 256,
    seed: int | None = None,
) -> torch.Tensor:
    """SmoothGrad (Smilkov et al., 2017): the saliency of the gradient averaged over noisy copies.

    x: (N, C, H, W), target: int or (N,) -> (N, H, W), max over channels of
    |mean over k of dS_c/dx at x + e_k|, e_k ~ Normal(0, sigma^2) with sigma = noise times the
    image's own range (max - min), as the paper sets it (they found 10-20% and 50 samples to
    work well). Averaging smooths away the gradient's pixel-to-pixel flicker, which comes from the
    network's kinks, not from the image.

    samples: noisy copies per image. noise: sigma as a fraction of each image's range.
    max_batch: images per forward pass. seed: fixes the noise (drawn on the CPU, so the same seed
    gives the same noise on any device); torch's global generator is not touched.
    """
    check_model_and_images(model, x)
    samples = positive_int("samples", samples)
    noise = number("noise", noise, minimum=0.0)
    max_batch = positive_int("max_batch", max_batch)
    n = x.shape[0]
    targets = as_targets(target, n, x.device)
    gen = generator(seed)
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).reshape(n, 1, 1, 1)
    sigma = noise * spread
    total = torch.zeros_like(x)
    per_pass = max(1, max_batch // n)  # noisy copies of the whole batch per forward pass
    with explaining(model):
        for part in chunks(samples, per_pass):
            copies = part.stop - part.start
            x_rep = x.repeat(copies, 1, 1, 1)  # copy k of image i at row k * n + i
            x_noisy = x_rep + sigma.repeat(copies, 1, 1, 1) * randn_like(x_rep, gen)
            grad = _gradient(model, x_noisy, targets.repeat(copies))
            total += grad.reshape(copies, *x.shape).sum(dim=0)
    return _channel_max(total / samples)


# --------------------------------------------------------------------------------------------
# Integrated gradients


def _quadrature(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points alpha_k in [0, 1] and weights w_k with sum_k w_k f(alpha_k) ~ integral_0^1 f."""
    if method == "riemann_right":  # the paper's sum: alpha = k/m, k = 1..m
        return np.arange(1, steps + 1) / steps, np.full(steps, 1.0 / steps)
    if method == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if method == "gausslegendre":  # Legendre nodes on [-1, 1], mapped to [0, 1]
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    raise ValueError(
        f"method must be 'gausslegendre', 'riemann_middle' or 'riemann_right', got {method!r}"
    )


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target,
    baseline=0.0,
    steps: int = 50,
    method: str = "gausslegendre",
    *,
    max_batch: int = 256,
    return_delta: bool = False,
):
    """Integrated gradients (Sundararajan, Taly & Yan, 2017).

    x: (N, C, H, W), target: int or (N,) -> attributions (N, C, H, W),
    A = (x - x') * integral over a in [0, 1] of dS_c/dx at x' + a (x - x'),
    the path integral of the gradient along the straight line from the baseline x' to x. By the
    fundamental theorem of calculus the attributions add up to S_c(x) - S_c(x') (completeness,
    the paper's proposition 1); the integral is a finite sum here, so they do up to an error.

    baseline: x', a number (default 0: a black image, or the mean image when inputs are
    normalised) or a tensor broadcasting to x. steps: gradient evaluations per image.
    method: the quadrature rule, "riemann_right" (the paper's sum, alpha = k/steps),
    "riemann_middle" (midpoints) or "gausslegendre" (Legendre nodes: the most accurate per
    gradient for smooth paths). max_batch: images per forward pass.
    return_delta: also return delta (N,) = sum(A) - (S_c(x) - S_c(x')), the completeness error;
    more steps shrink it (Sundararajan et al. suggest 20-300 steps until it is within 5%).
    returns: A, or (A, delta).
    """
    check_model_and_images(model, x)
    steps = positive_int("steps", steps)
    max_batch = positive_int("max_batch", max_batch)
    alphas, weights = _quadrature(method, steps)
    n = x.shape[0]
    targets = as_targets(target, n, x.device)
    x_base = like_x("baseline", baseline, x)
    path = x - x_base
    integral = torch.zeros_like(x)
    per_pass = max(1, max_batch // n)  # path points of the whole batch per forward pass
    with explaining(model):
        for part in chunks(steps, per_pass):
            a = torch.as_tensor(alphas[part], dtype=x.dtype, device=x.device)
            w = torch.as_tensor(weights[part], dtype=x.dtype, device=x.device)
            points = x_base[None] + a.reshape(-1, 1, 1, 1, 1) * path[None]  # (K, N, C, H, W)
            grad = _gradient(model, points.flatten(0, 1), targets.repeat(len(a)))
            integral += (w.reshape(-1, 1, 1, 1, 1) * grad.reshape(points.shape)).sum(dim=0)
        attributions = path * integral
        if not return_delta:
            return attributions
        with torch.no_grad():
            ends = target_scores(model, torch.cat([x, x_base]), targets.repeat(2))
    delta = attributions.sum(dim=(1, 2, 3)) - (ends[:n] - ends[n:])
    return attributions, delta


# --------------------------------------------------------------------------------------------
# Guided backpropagation


class _PositiveSignal(torch.autograd.Function):
    """Identity forward; backward lets only the positive part of the signal through."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()  # a fresh tensor: later in-place layers may change it freely

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def _is_relu(module: nn.Module) -> bool:
    from cnnlib.torch.modules import ReLU as CourseReLU  # our drop-in ReLU (ct.swap_layers)

    return isinstance(module, nn.ReLU | CourseReLU)


def guided_backprop(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al., 2015, figure 1).

    x: (N, C, H, W), target: int or (N,) -> (N, C, H, W), the gradient of S_c with the backward
    rule of every ReLU changed: a plain ReLU passes the signal R back where its input was
    positive; guided backprop also drops the negative part of R, R_in = (x > 0) * max(R, 0). Only
    what increases the score gets through, so the map shows sharp, image-like structure.

    Applied to every nn.ReLU module (and cnnlib.torch's ReLU), each call separately, so shared
    and in-place ReLUs are handled; a ReLU written as a function call (F.relu, torch.relu) in a
    forward method is not seen: use modules. ValueError if the model has no ReLU module.
    """
    check_model_and_images(model, x)
    targets = as_targets(target, x.shape[0], x.device)
    relus = [m for m in model.modules() if _is_relu(m)]
    if not relus:
        raise ValueError(
            f"model must contain nn.ReLU modules for guided backprop, found none in "
            f"{type(model).__name__}"
        )

    def guide(module, inputs, output):
        # runs after the ReLU: the ReLU's own backward then applies (x > 0) to what we pass
        return _PositiveSignal.apply(output)

    handles = [m.register_forward_hook(guide) for m in relus]
    try:
        with explaining(model):
            return _gradient(model, x, targets)
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------------------------
# Grad-CAM


def grad_cam(
    model: nn.Module, x: torch.Tensor, target, layer, upsample: bool = True
) -> torch.Tensor:
    """Gradient-weighted class activation mapping (Selvaraju et al., 2017, equations 1-2).

    x: (N, C, H, W), target: int or (N,), layer: a name from model.named_modules() (e.g.
    "layer3" of a CIFAR ResNet) or the module itself, whose output A is (N, K, h, w).
    Each of the K maps is weighted by the mean gradient of the class score over its positions,
    alpha_k = mean_ij dS_c/dA_k[i, j], and L = ReLU(sum_k alpha_k A_k) keeps the places that
    speak for the class. The last conv stage gives the best trade-off between meaning and
    resolution (the paper's choice).
    returns: (N, H, W) upsampled bilinearly to the input's size, or (N, h, w) at the layer's own
    resolution with upsample=False.
    """
    check_model_and_images(model, x)
    targets = as_targets(target, x.shape[0], x.device)
    capture = Capture(model, layer)
    with explaining(model), capture:
        scores = model(leaf(x))  # x records gradients, so the graph through the layer is built
        check_scores(scores, x.shape[0])
        maps = capture.output
        if maps.ndim != 4:
            raise ValueError(
                f"layer {capture.name!r} must output (N, K, h, w) feature maps for Grad-CAM, "
                f"got shape {tuple(maps.shape)}"
            )
        (grad,) = torch.autograd.grad(pick(scores, targets).sum(), maps, allow_unused=True)
    if grad is None:  # the score does not depend on this layer (a branch the output ignores)
        grad = torch.zeros_like(maps)
    alpha = grad.mean(dim=(2, 3), keepdim=True)  # (N, K, 1, 1)
    cam = F.relu((alpha * maps.detach()).sum(dim=1))  # (N, h, w)
    if not upsample:
        return cam
    return F.interpolate(cam[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[
        :, 0
    ]
