"""Occlusion sensitivity (Zeiler & Fergus, 2014, section 4.2): cover part of the image with a grey
square, slide it across, and watch the class score fall where the evidence was.

Gradients say what a tiny change would do; occlusion measures what removing a whole patch does,
with nothing but forward passes, so it also works where gradients are flat or misleading.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlib import arithmetic as ar
from cnnlib.numpy._checks import as_pair

from ._common import (
    as_targets,
    check_model_and_images,
    check_scores,
    chunks,
    explaining,
    like_x,
    pick,
    positive_int,
)

__all__ = ["occlusion", "occlusion_positions"]


def occlusion_positions(size: int, patch: int, stride: int) -> list[int]:
    """Where a patch of `patch` pixels starts along an axis of `size` pixels, every `stride`.

    The positions of a convolution window (`cnnlib.arithmetic.conv_output_size`), plus one more
    when those leave the last pixels uncovered: that last patch hangs over the edge and covers
    only what is left (as a pooling layer with ceil_mode does), so every pixel is occluded at
    least once. 32 pixels, patch 8, stride 5: 0, 5, 10, 15, 20, 25 (the last covers 25-31).
    """
    count = ar.conv_output_size(size, patch, stride)
    if ar.unread_positions(size, patch, stride):
        count += 1
    return [i * stride for i in range(count)]


def _corners(h: int, w: int, patch, stride) -> list[tuple[int, int]]:
    """(row, column) of each patch position's top-left pixel, rows of positions first."""
    rows = occlusion_positions(h, patch[0], stride[0])
    cols = occlusion_positions(w, patch[1], stride[1])
    return [(r, c) for r in rows for c in cols]


def _masks(corners, h: int, w: int, patch, device) -> torch.Tensor:
    """(P, H, W) boolean masks, True under the patch at each of the P corners."""
    masks = torch.zeros(len(corners), h, w, dtype=torch.bool, device=device)
    for p, (r, c) in enumerate(corners):
        masks[p, r : r + patch[0], c : c + patch[1]] = True
    return masks


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target,
    patch=8,
    stride=4,
    fill=0.0,
    *,
    per_pixel: bool = True,
    probability: bool = False,
    max_batch: int = 256,
) -> torch.Tensor:
    """How much the target's score drops when a patch of the image is covered.

    x: (N, C, H, W), target: int or (N,). patch: the occluder's size, an int or (ph, pw); stride:
    how far it moves each time, an int or (sh, sw). fill: what covers the patch, a number (0 is
    the mean colour for normalised inputs: Zeiler & Fergus's grey square) or a tensor
    broadcasting to x, e.g. a (C, 1, 1) mean colour.
    per_pixel=False returns the paper's map, (N, H', W'): drop[p] = S_c(x) - S_c(x with the patch
    at position p covered), one value per position (see `occlusion_positions`). per_pixel=True
    returns (N, H, W): each pixel gets the mean drop over the patches that cover it, a map the
    size of the image (then stride must not exceed patch, or some pixels are never covered).
    probability: measure the softmax probability of the class instead of its raw score (the
    paper plots the probability of the correct class). max_batch: images per forward pass.
    Positive values mark evidence for the class, negative values evidence against it.
    """
    check_model_and_images(model, x)
    n, _, h, w = x.shape
    patch = as_pair("patch", patch)
    stride = as_pair("stride", stride)
    for axis, size in enumerate((h, w)):
        if patch[axis] > size:
            raise ValueError(
                f"patch must fit the image: got {patch} for images of {h}x{w} pixels"
            )
    if per_pixel and (stride[0] > patch[0] or stride[1] > patch[1]):
        raise ValueError(
            f"stride must not exceed patch when per_pixel=True (pixels between patches would "
            f"never be covered), got stride {stride} and patch {patch}"
        )
    max_batch = positive_int("max_batch", max_batch)
    targets = as_targets(target, n, x.device)
    covered = like_x("fill", fill, x)
    corners = _corners(h, w, patch, stride)

    def measure(images: torch.Tensor, image_targets: torch.Tensor) -> torch.Tensor:
        scores = model(images)
        check_scores(scores, images.shape[0])
        if probability:
            scores = scores.softmax(dim=1)
        return pick(scores, image_targets)

    drops = torch.empty(n, len(corners), dtype=x.dtype, device=x.device)  # (N, P)
    summed = torch.zeros(n, h, w, dtype=x.dtype, device=x.device)  # drops of patches over a pixel
    covers = torch.zeros(h, w, dtype=x.dtype, device=x.device)  # patches over a pixel
    per_pass = max(1, max_batch // n)  # patch positions of the whole batch per forward pass
    with explaining(model), torch.no_grad():
        clean = measure(x, targets)  # (N,)
        for part in chunks(len(corners), per_pass):
            masks = _masks(corners[part], h, w, patch, x.device)  # (P', H, W)
            occluded = torch.where(masks[:, None, None], covered[None], x[None])  # (P', N, ...)
            scores = measure(occluded.flatten(0, 1), targets.repeat(len(masks)))
            drops[:, part] = clean[:, None] - scores.reshape(len(masks), n).T
            weights = masks.to(x.dtype)
            summed += torch.einsum("np,phw->nhw", drops[:, part], weights)
            covers += weights.sum(dim=0)
    if per_pixel:
        return summed / covers
    rows = len(occlusion_positions(h, patch[0], stride[0]))
    return drops.reshape(n, rows, -1)
