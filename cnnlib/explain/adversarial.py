"""Fooling a network: small, deliberate changes to an image that change its prediction.

    fgsm(model, x, target, epsilon)            one signed-gradient step (Goodfellow et al., 2015)
    pgd(model, x, target, epsilon)             many small steps kept in the budget (Kurakin et
                                               al., 2017; Madry et al., 2018, with random_start)
    fooling_images(model, x, target)           climb a class's score until the model agrees

Untargeted attacks (targeted=False) take the true labels as `target` and push the loss of those
labels up; targeted attacks take the wanted classes and push their loss down. The budget is an
L-infinity ball: no pixel moves by more than epsilon, ||x_adv - x||_inf <= epsilon (up to float
rounding, about 1e-7 relative in float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import (
    as_targets,
    check_bounds,
    check_model_and_images,
    check_scores,
    clamp,
    explaining,
    generator,
    input_gradient,
    leaf,
    number,
    pick,
    positive_int,
)

__all__ = ["fgsm", "fooling_images", "pgd"]


def _loss_gradient(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) gradient of each image's cross-entropy loss for its target."""
    x = leaf(x)
    scores = model(x)
    check_scores(scores, x.shape[0])
    pick(scores, targets)  # a target out of range gets the library's message, not torch's
    losses = F.cross_entropy(scores, targets, reduction="none")
    return input_gradient(losses, x)


def _signed_step(grad: torch.Tensor, size: float, targeted: bool) -> torch.Tensor:
    """Up the loss for an untargeted attack, down the target's loss for a targeted one."""
    return (-size if targeted else size) * grad.sign()


def _project(x_adv: torch.Tensor, x: torch.Tensor, epsilon: float, bounds) -> torch.Tensor:
    """Back into the L-infinity ball of radius epsilon around x, then into the valid range."""
    x_adv = torch.minimum(torch.maximum(x_adv, x - epsilon), x + epsilon)
    return clamp(x_adv, bounds)


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    target,
    epsilon: float,
    *,
    targeted: bool = False,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow, Shlens & Szegedy, 2015).

    x: (N, C, H, W), target: int or (N,) -> (N, C, H, W)
    x_adv = x + epsilon * sign(dL/dx) with L the cross-entropy for the true labels (untargeted),
    or x_adv = x - epsilon * sign(dL/dx) with L the cross-entropy for the wanted classes
    (targeted, Kurakin et al., 2017). One gradient, every pixel moved by exactly epsilon: for a
    model that is nearly linear in its input, the best first-order attack in the L-infinity ball.
    bounds: clamp to (low, high), the range of valid inputs, afterwards.
    """
    check_model_and_images(model, x)
    epsilon = number("epsilon", epsilon, minimum=0.0)
    bounds = check_bounds(bounds)
    targets = as_targets(target, x.shape[0], x.device)
    with explaining(model):
        grad = _loss_gradient(model, x, targets)
    return clamp(x.detach() + _signed_step(grad, epsilon, targeted), bounds)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    target,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    *,
    targeted: bool = False,
    random_start: bool = False,
    bounds: tuple[float, float] | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """Iterative FGSM, projected into the budget after each step.

    x: (N, C, H, W), target: int or (N,) -> (N, C, H, W). Repeats x_adv <- clip_{x, epsilon}(x_adv
    + step_size * sign(dL/dx_adv)) `steps` times (the basic iterative method of Kurakin,
    Goodfellow & Bengio, 2017); random_start=True begins at a uniformly random point of the ball
    (projected gradient descent, Madry et al., 2018). step_size defaults to 2.5 epsilon / steps,
    a common rule of thumb: together the steps can cross the ball and come back.
    targeted, bounds: as in `fgsm`. seed: fixes the random start; torch's global generator is
    left alone.
    """
    check_model_and_images(model, x)
    epsilon = number("epsilon", epsilon, minimum=0.0)
    steps = positive_int("steps", steps)
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    step_size = number("step_size", step_size, minimum=0.0)
    bounds = check_bounds(bounds)
    targets = as_targets(target, x.shape[0], x.device)
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        gen = generator(seed)
        uniform = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        x_adv = x + epsilon * (2 * uniform - 1)
    x_adv = _project(x_adv, x, epsilon, bounds)
    with explaining(model):
        for _ in range(steps):
            grad = _loss_gradient(model, x_adv, targets)
            x_adv = _project(x_adv + _signed_step(grad, step_size, targeted), x, epsilon, bounds)
    return x_adv


def fooling_images(
    model: nn.Module,
    x: torch.Tensor,
    target,
    *,
    step_size: float = 0.5,
    max_steps: int = 100,
    confidence: float = 0.0,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Change each image until the model calls it `target`: gradient ascent on the class score.

    x: (N, C, H, W), target: int or (N,) the classes to be fooled into -> (N, C, H, W).
    Each step moves an image by `step_size` in L2 norm along the gradient of the target's score,
    x += step_size * g / ||g||_2 (Szegedy et al., 2014, found that imperceptible changes suffice).
    An image stops changing as soon as the model predicts its target with a softmax probability
    of at least `confidence` (0: as soon as the target is the top class), so what comes back is
    close to the smallest change the method finds; images still not fooled after `max_steps` are
    returned as far as they got (check `model(x_fool).argmax(1) == target`). Starting from noise
    instead of a photograph gives Nguyen et al.'s (2015) unrecognisable images that the model
    classifies with high confidence.
    """
    check_model_and_images(model, x)
    step_size = number("step_size", step_size, minimum=0.0, strict_minimum=True)
    max_steps = positive_int("max_steps", max_steps)
    confidence = number("confidence", confidence, minimum=0.0, maximum=1.0)
    bounds = check_bounds(bounds)
    targets = as_targets(target, x.shape[0], x.device)
    image = clamp(x.detach().clone(), bounds)
    with explaining(model):
        for step in range(max_steps + 1):  # check after each of max_steps steps
            image = leaf(image)
            scores = model(image)
            check_scores(scores, image.shape[0])
            chosen = pick(scores, targets)
            probability = pick(scores.softmax(dim=1), targets)
            fooled = (scores.argmax(dim=1) == targets) & (probability >= confidence)
            if bool(fooled.all()) or step == max_steps:
                break
            grad = input_gradient(chosen, image)
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1, 1)
            still = (~fooled).to(image.dtype).reshape(-1, 1, 1, 1)  # fooled images stay put
            image = clamp(image.detach() + still * step_size * grad / norm, bounds)
    return image.detach()
