"""Images made by optimisation: what a class (or a unit) responds to most, and what an image's
features at some layer still remember of it.

    class_visualisation(model, x, target)   gradient ascent on a class score, regularised
    invert_features(model, x, layer)        an image whose layer features match x's, TV prior
    total_variation(x)                      the smoothness prior of the inversion
    gaussian_blur(x, sigma)                 the blur regulariser of the class visualisation

Training changes the weights to fit the images; these change the image and keep the weights.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._common import (
    Capture,
    as_targets,
    check_bounds,
    check_images,
    check_model_and_images,
    check_scores,
    clamp,
    explaining,
    generator,
    leaf,
    number,
    pick,
    positive_int,
    randn_like,
)

__all__ = ["class_visualisation", "gaussian_blur", "invert_features", "total_variation"]


# --------------------------------------------------------------------------------------------
# Image priors


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """The total variation prior of Mahendran & Vedaldi (2015), summed per image.

    x: (N, C, H, W) -> (N,), sum over c and i < H-1, j < W-1 of
    ((x[c, i, j+1] - x[c, i, j])^2 + (x[c, i+1, j] - x[c, i, j])^2)^(beta / 2).
    Small for images made of smooth regions, large for the high-frequency noise that an
    unregularised inversion produces. beta = 2 is smooth everywhere; beta = 1 (classic TV)
    tolerates sharp edges more, and gets a tiny epsilon inside the root so its gradient at a
    flat patch is 0 instead of NaN.
    """
    check_images("x", x)
    beta = number("beta", beta, minimum=0.0, strict_minimum=True)
    right = x[..., :-1, 1:] - x[..., :-1, :-1]
    down = x[..., 1:, :-1] - x[..., :-1, :-1]
    squared = right**2 + down**2
    if beta != 2.0:
        squared = (squared + 1e-12) ** (beta / 2)
    return squared.sum(dim=(1, 2, 3))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x: (N, C, H, W) -> (N, C, H, W) blurred by a Gaussian of `sigma` pixels, each channel alone.

    The kernel reaches 3 sigma each way (at least one pixel) and the borders are reflected (the
    edge repeated when the image is smaller than the kernel), so a constant image stays constant;
    sigma = 0 returns a copy. Separable: a pass along the rows, then one along the columns.
    """
    check_images("x", x)
    sigma = number("sigma", sigma, minimum=0.0)
    if sigma == 0:
        return x.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    along_width = kernel.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1)  # (C, 1, 1, K)
    along_height = kernel.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1)  # (C, 1, K, 1)
    # reflect needs the padding below the image's size; tiny images repeat their edge instead
    mode = "reflect" if radius < min(x.shape[2:]) else "replicate"
    out = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), along_width, groups=c)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode=mode), along_height, groups=c)


# --------------------------------------------------------------------------------------------
# Class visualisation / activation maximisation


def _unit_scores(model, x, targets, capture):
    """(N,) what is being maximised: the class score, or a unit's mean activation at a layer."""
    scores = model(x)
    if capture is None:
        check_scores(scores, x.shape[0])
        return pick(scores, targets)
    out = capture.output
    if out.ndim not in (2, 4) or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"layer {capture.name!r} must output (N, K) or (N, K, h, w), got shape "
            f"{tuple(out.shape)}"
        )
    capture.clear()
    units = out if out.ndim == 2 else out.mean(dim=(2, 3))  # a channel: its mean over positions
    return pick(units, targets, what="channels")


def class_visualisation(
    model: nn.Module,
    x: torch.Tensor,
    target,
    *,
    layer=None,
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 1e-3,
    jitter: int = 2,
    blur_every: int = 10,
    blur_sigma: float = 0.5,
    bounds: tuple[float, float] | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """An image the model scores highly for a class: gradient ascent on the image.

    x: (N, C, H, W) starting images (zeros in Simonyan et al., 2014, section 2; small noise works
    as well); target: int or (N,) classes -> (N, C, H, W) the images after `steps` steps. The
    caller's x is not changed. Each step, as in Simonyan et al. with the regularisers of Yosinski
    et al. (2015, section 3) and the jitter of Mordvintsev, Olah & Tyka's DeepDream (2015):

    1. jitter: shift the image by up to `jitter` pixels (wrapping around), so that no pattern
       can rely on exact pixel positions;
    2. ascend: x += lr * g / mean|g|, g = dS_c/dx; dividing by the mean gradient makes `lr` the
       mean change of a pixel per step whatever the scale of the scores;
    3. L2 decay: x *= 1 - l2 (Simonyan's penalty lambda ||x||^2 in Yosinski's operator form),
       which keeps pixels that do not help from drifting;
    4. blur: every `blur_every` steps a Gaussian blur of `blur_sigma` pixels (0 turns it off)
       removes the high frequencies that raise the score without looking like anything;
    5. bounds: clamp to (low, high), the range of valid inputs, when given.

    layer: None maximises class scores (S_c, before any softmax); a layer name (or module)
    maximises the mean activation of channel `target` of that layer instead (activation
    maximisation of a hidden unit). seed: fixes the jitter; torch's global generator is left
    alone.
    """
    check_model_and_images(model, x)
    steps = positive_int("steps", steps)
    lr = number("lr", lr, minimum=0.0, strict_minimum=True)
    l2 = number("l2", l2, minimum=0.0, maximum=1.0)
    jitter = positive_int("jitter", jitter, minimum=0)
    blur_every = positive_int("blur_every", blur_every, minimum=0)
    blur_sigma = number("blur_sigma", blur_sigma, minimum=0.0)
    bounds = check_bounds(bounds)
    targets = as_targets(target, x.shape[0], x.device)
    gen = generator(seed)
    capture = None if layer is None else Capture(model, layer)
    image = clamp(x.detach().clone(), bounds)
    with explaining(model), contextlib.ExitStack() as hooks:
        if capture is not None:
            hooks.enter_context(capture)
        for step in range(1, steps + 1):
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist()
            shifted = leaf(torch.roll(image, (dy, dx), dims=(2, 3)))
            score = _unit_scores(model, shifted, targets, capture)
            (grad,) = torch.autograd.grad(score.sum(), shifted)
            grad = torch.roll(grad, (-dy, -dx), dims=(2, 3))  # back to the unshifted image
            scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            image = (image + lr * grad / scale) * (1 - l2)
            if blur_every and blur_sigma and step % blur_every == 0:
                image = gaussian_blur(image, blur_sigma)
            image = clamp(image, bounds)
    return image


# --------------------------------------------------------------------------------------------
# Feature inversion


def invert_features(
    model: nn.Module,
    x: torch.Tensor,
    layer,
    *,
    steps: int = 200,
    lr: float = 0.05,
    tv: float = 0.05,
    beta: float = 2.0,
    l2: float = 0.0,
    init: torch.Tensor | None = None,
    bounds: tuple[float, float] | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Reconstruct images from what a layer computes of them (Mahendran & Vedaldi, 2015).

    x: (N, C, H, W) the images whose features phi0 = phi(x) at `layer` (a name from
    model.named_modules(), or the module) are to be matched -> (N, C, H, W) images x* that
    minimise, each on its own,

        ||phi(x*) - phi0||^2 / ||phi0||^2  +  tv * TV_beta(x*) / (C (H-1) (W-1))  +  l2 * mean(x*^2)

    the feature distance relative to the features' own energy ||phi0||^2 (as the paper does, so
    one `tv` suits every layer), plus the total variation prior (`total_variation`) per pixel
    position, and an optional L2 prior. Minimised with Adam (learning rate `lr`) from `init`, or
    from faint noise (std 0.1 of x's) when None. What the result keeps is what the layer keeps:
    early layers give back the photograph, deep ones the object's parts in rearranged places.
    bounds: clamp to (low, high) after each step. seed: fixes the starting noise.
    """
    check_model_and_images(model, x)
    steps = positive_int("steps", steps)
    lr = number("lr", lr, minimum=0.0, strict_minimum=True)
    tv = number("tv", tv, minimum=0.0)
    beta = number("beta", beta, minimum=0.0, strict_minimum=True)
    l2 = number("l2", l2, minimum=0.0)
    bounds = check_bounds(bounds)
    if init is None:
        start = x.detach().std() * 0.1 * randn_like(x, generator(seed))
    else:
        check_images("init", init)
        if init.shape != x.shape:
            raise ValueError(
                f"init must have x's shape {tuple(x.shape)}, got shape {tuple(init.shape)}"
            )
        start = init.detach().to(device=x.device, dtype=x.dtype)
    image = leaf(clamp(start, bounds))
    positions = x.shape[1] * max(1, x.shape[2] - 1) * max(1, x.shape[3] - 1)
    capture = Capture(model, layer)
    with explaining(model), capture:
        with torch.no_grad():
            model(x.detach())
            wanted = capture.output.detach()
        capture.clear()
        norm = wanted.flatten(1).pow(2).sum(dim=1).clamp_min(1e-12)  # ||phi0||^2, (N,)
        optimiser = torch.optim.Adam([image], lr=lr)
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            model(image)
            features = capture.output
            capture.clear()
            loss = (features - wanted).flatten(1).pow(2).sum(dim=1) / norm
            if tv:
                loss = loss + tv * total_variation(image, beta) / positions
            if l2:
                loss = loss + l2 * image.pow(2).flatten(1).mean(dim=1)
            loss.sum().backward()
            optimiser.step()
            if bounds is not None:
                with torch.no_grad():
                    image.clamp_(*bounds)
    return image.detach()
